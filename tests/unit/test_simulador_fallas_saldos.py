"""The simulator's fault triggers by account name with `_sin_saldo`, its boolean parameters and
its amounts as text: pure functions, no I/O."""

from __future__ import annotations

import random

import pytest

from pagos_dev.simulador import montos, parametros
from pagos_dev.simulador.errores import ErrorStripeError
from pagos_dev.simulador.fallas import Falla, Fallas, elegir
from pagos_dev.simulador.parametros import Tipo


@pytest.mark.parametrize(
    ("destino", "falla", "codigo"),
    [
        ("acct_test_afiliado_sin_saldo", Falla.NINGUNA, None),  # a name, not a decline code
        ("acct_test_sin_saldo", Falla.NINGUNA, None),
        ("acct_test_error_500_sin_saldo", Falla.ERROR_500, None),
        ("acct_test_balance_insufficient_sin_saldo", Falla.RECHAZO, "balance_insufficient"),
        ("acct_test_unlisted_sin_saldo", Falla.NINGUNA, None),
        ("acct_test_afiliado", Falla.RECHAZO, "afiliado"),  # unchanged: any other name is a decline
        ("acct_afiliado_sin_saldo", Falla.NINGUNA, None),
    ],
)
def test_un_nombre_sin_saldo_elige_la_falla_del_resto_del_nombre(destino, falla, codigo):
    fallas = Fallas(tasa_rechazo=0)
    assert elegir(fallas, destino, 1, random.Random(1)) == (falla, codigo)


def test_sin_saldo_y_unlisted_juntos():
    fallas = Fallas(no_listado_s=60)
    assert fallas.retraso_de_listado("acct_test_unlisted_sin_saldo") == 60
    assert fallas.retraso_de_listado("acct_test_error_500_unlisted_sin_saldo") == 60
    assert fallas.retraso_de_listado("acct_test_afiliado_sin_saldo") == 0


def test_booleanos_como_los_lee_stripe():
    esquema = {"refund_application_fee": Tipo.BOOLEANO}
    assert parametros.leer([("refund_application_fee", "true")], esquema) == {"refund_application_fee": True}
    assert parametros.leer([("refund_application_fee", "false")], esquema) == {"refund_application_fee": False}
    with pytest.raises(ErrorStripeError, match="Invalid boolean: 1"):
        parametros.leer([("refund_application_fee", "1")], esquema)


def test_montos_como_texto():
    assert montos.texto(150050, "usd") == "1,500.50 usd"
    assert montos.texto(1, "eur") == "0.01 eur"
    assert montos.texto(400_000_000_000, "cop") == "4,000,000,000.00 cop"
