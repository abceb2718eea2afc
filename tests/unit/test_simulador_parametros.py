"""The simulator's reading of Stripe's parameters, amounts and keys: pure functions, no I/O."""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pagos_dev.simulador import acceso, formularios, montos, parametros
from pagos_dev.simulador.consultas import Filtro, Pagina, consulta_de_pagina
from pagos_dev.simulador.errores import ErrorStripeError
from pagos_dev.simulador.parametros import Tipo

ESQUEMA = {"amount": Tipo.ENTERO, "metadata": Tipo.HASH, "expand": Tipo.LISTA, "created": Tipo.RANGO}


@given(st.text(alphabet="ab=&%+2C5B[]é ", max_size=40))
def test_urlencoded_es_parse_qsl(texto):
    assert formularios.urlencoded(texto) == parse_qsl(texto, keep_blank_values=True)


def test_nombres_con_corchetes_como_los_lee_stripe():
    pares = [("amount", "5"), ("metadata[id_pago]", "p"), ("metadata[vacia]", ""), ("expand[0]", "b"),
             ("expand[1]", "a"), ("created[gte]", "7")]  # fmt: skip
    assert parametros.leer(pares, ESQUEMA) == {
        "amount": 5, "metadata": {"id_pago": "p"}, "expand": ["b", "a"], "created": {"gte": 7},
    }  # fmt: skip
    assert parametros.leer([("expand[]", "x"), ("expand[]", "y"), ("created", "9")], ESQUEMA) == {
        "expand": ["x", "y"], "created": 9,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("pares", "param", "code"),
    [
        ([("amout", "1")], "amout", "parameter_unknown"),
        ([("created[after]", "1")], "created[after]", "parameter_unknown"),
        ([("amount", "1.5")], "amount", "parameter_invalid_integer"),
        ([("amount", "١")], "amount", "parameter_invalid_integer"),  # a digit, but not ASCII
        ([("metadata", "x")], "metadata", None),
        ([("metadata[a]", "1"), ("metadata[b][c]", "2")], "metadata[b]", None),
        ([("expand", "x")], "expand", None),
    ],
)
def test_lo_que_no_se_acepta_nombra_el_parametro(pares, param, code):
    with pytest.raises(ErrorStripeError) as info:
        parametros.leer(pares, ESQUEMA)
    assert (info.value.status, info.value.param, info.value.code) == (400, param, code)


def test_un_nombre_mal_escrito_sugiere_el_bueno():
    with pytest.raises(ErrorStripeError, match="Did you mean amount"):
        parametros.leer([("ammount", "1")], ESQUEMA)


@pytest.mark.parametrize(("amount", "currency"), [(1, "usd"), (100_000_000, "eur"), (400_000_000_000, "cop")])
def test_los_montos_del_contrato_del_servicio_se_aceptan(amount, currency):
    montos.comprobar(amount, currency)


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [(0, "usd", "parameter_invalid_integer"), (10**12, "cop", "amount_too_large"), (5, "gbp", None)],
)
def test_montos_fuera_de_limites(amount, currency, code):
    with pytest.raises(ErrorStripeError) as info:
        montos.comprobar(amount, currency)
    assert info.value.code == code


def test_claves_bearer_y_basic():
    assert acceso.clave_api("Bearer sk_test_1") == "sk_test_1"
    assert acceso.clave_api("Basic " + base64.b64encode(b"rk_test_2:").decode()) == "rk_test_2"
    for mala in (None, "", "Bearer sk_live_1", "Token sk_test_1", "Basic !!", "Bearer pk_test_1"):
        with pytest.raises(ErrorStripeError) as info:
            acceso.clave_api(mala)
        assert info.value.status == 401
        assert "sk_live_1" not in info.value.mensaje


def test_el_limite_de_la_cuenta_da_retry_after():
    limite = acceso.LimiteDeCuenta(2)
    limite.tomar()
    limite.tomar()
    with pytest.raises(ErrorStripeError) as info:
        limite.tomar()
    assert (info.value.status, info.value.cabeceras["Retry-After"]) == (429, "1")
    acceso.LimiteDeCuenta(0).tomar()  # off


def test_una_pagina_hacia_atras_pide_los_mas_nuevos_y_en_orden_ascendente():
    pagina = Pagina(3, antes_de=(7, 10))
    sql, argumentos = consulta_de_pagina(Filtro(destination="acct_1", created={"gte": 5}), pagina)
    assert "t.destination = ?" in sql
    assert "(t.created, t.seq) > (?, ?)" in sql
    assert sql.endswith("ORDER BY t.created ASC, t.seq ASC LIMIT ?")
    assert "t.created >= ?" in sql
    assert argumentos == ["acct_1", 7, 7, 10, 4]  # created >= 5 folded with the cursor's: one bound, 7


def test_una_pagina_tras_un_cursor_tiene_una_sola_cota_de_created_para_el_indice():
    # SQLite walks the index from one bound and ignores the row value (created, seq): with the
    # window's bound alone, a page deep in a million walked every newer transfer first.
    pagina = Pagina(100, despues_de=(50, 9))
    sql, argumentos = consulta_de_pagina(Filtro(created={"gte": 10, "lt": 100}), pagina)
    assert sql.count("t.created >= ?") == sql.count("t.created <= ?") == 1
    assert "t.created <" + " ?" not in sql.replace("t.created <= ?", "")
    assert argumentos == [10, 50, 50, 9, 101]
    _, argumentos = consulta_de_pagina(Filtro(created={"gt": 10, "lte": 40}), Pagina(5, despues_de=(50, 9)))
    assert argumentos == [11, 40, 50, 9, 6]
