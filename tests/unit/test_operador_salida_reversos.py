"""What `pagos ver`, `pagos atencion` and `pagos reversar` print of reversals, piped (as scripts and
transcripts see it), and how `pagos reversar` reads its arguments: Spanish, exit status 2 for what
does not parse."""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from decimal import Decimal

import pytest

from pagos_worker.application.commands import ReversarPago
from pagos_worker.application.pedir_reverso import ReversoPedido
from pagos_worker.application.queries import Atencion
from pagos_worker.domain.reverso import MotivoReverso
from pagos_worker.entrypoints import cli
from pagos_worker.entrypoints import operador_salida as salida
from tests.unit.test_http_reversos import HECHO, HECHO_JSON, NUEVO, SIN_SALDO
from tests.unit.test_operador_salida import _vista


def test_ver_un_pago_muestra_lo_reversado_y_una_linea_por_reverso(capsys):
    vista = _vista(id=HECHO.id_pago, estado="EXITOSO", monto=Decimal("100.00"), monto_reversado=Decimal("30.00"),
                   reversos=(NUEVO, HECHO), requiere_atencion=False, marcado=False)  # fmt: skip
    salida.pago(vista, como_json=False)
    out = capsys.readouterr().out
    assert "monto_reversado" in out
    assert "30.00" in out
    [linea_nuevo] = [linea for linea in out.splitlines() if str(NUEVO.id_reverso) in linea]
    [linea_hecho] = [linea for linea in out.splitlines() if str(HECHO.id_reverso) in linea]
    for esperado in ("30.00 USD", "EXITOSO", "trr_1", "duplicado", "2026-01-02T08:00:00.000Z", "08:00:01.000Z", "ana"):
        assert esperado in linea_hecho, esperado
    # Not claimed yet, asked for everything not yet reversed: said so, in the payment's currency.
    for esperado in ("todo lo que quede", "PENDIENTE", "fraude"):
        assert esperado in linea_nuevo, esperado
    assert out.index(str(NUEVO.id_reverso)) < out.index(str(HECHO.id_reverso))  # newest first, as given
    assert "VistaReverso" not in out  # no dataclass dumped


def test_ver_un_pago_en_json_es_el_del_http(capsys):
    vista = _vista(id=HECHO.id_pago, estado="EXITOSO", monto_reversado=Decimal("30.00"), reversos=(HECHO,))
    salida.pago(vista, como_json=True)
    cuerpo = json.loads(capsys.readouterr().out)
    assert (cuerpo["monto_reversado"], cuerpo["reversos"]) == ("30.00", [HECHO_JSON])


def test_atencion_muestra_los_reversos_con_su_causa(capsys):
    salida.atencion(Atencion([], [], [SIN_SALDO]), como_json=False)
    out = capsys.readouterr().out
    assert "pagos que requieren atención: 0" in out
    assert "reversos que requieren atención: 1" in out
    [linea] = [linea for linea in out.splitlines() if str(SIN_SALDO.id_reverso) in linea]
    for esperado in (str(SIN_SALDO.id_pago), "saldo_insuficiente", "50.00 USD", "FALLIDO", "no tiene saldo"):
        assert esperado in linea, esperado
    salida.atencion(Atencion([], [], [SIN_SALDO]), como_json=True)
    cuerpo = json.loads(capsys.readouterr().out)
    [reverso] = cuerpo["reversos"]
    assert (reverso["id_reverso"], reverso["id_pago"], reverso["causa"]) == (
        str(SIN_SALDO.id_reverso), str(SIN_SALDO.id_pago), "saldo_insuficiente"
    )  # fmt: skip
    salida.atencion(Atencion([], []), como_json=False)
    assert "reversos" not in capsys.readouterr().out  # none: nothing said of them


ID_PAGO = uuid.UUID("550e8400-e29b-41d4-a716-446655440000")
ID_REVERSO = uuid.UUID("3f1c2b7a-9d4e-4f5a-8b6c-7d8e9f0a1b2c")
COMANDO = ReversarPago(ID_REVERSO, ID_PAGO, Decimal("30.00"), MotivoReverso.DUPLICADO, "cobrado dos veces", "ana")


def test_reversar_dice_el_id_y_como_seguirlo(capsys):
    salida.reverso_pedido(ReversoPedido(COMANDO, "USD", Decimal("100.00"), publicado=True), como_json=False)
    out = capsys.readouterr().out
    for esperado in (str(ID_REVERSO), "30.00 USD", "duplicado", "ana", f"pagos-worker pagos ver {ID_PAGO}",
                     f"--id-reverso {ID_REVERSO}"):  # fmt: skip
        assert esperado in out, esperado
    todo = dataclasses.replace(COMANDO, monto=None)
    salida.reverso_pedido(ReversoPedido(todo, "USD", Decimal("70.00"), publicado=True), como_json=False)
    assert "todo lo que quede (70.00 USD ahora)" in capsys.readouterr().out


def test_reversar_en_json(capsys):
    salida.reverso_pedido(ReversoPedido(COMANDO, "USD", Decimal("100.00"), publicado=True), como_json=True)
    assert json.loads(capsys.readouterr().out) == {
        "id_reverso": str(ID_REVERSO),
        "id_pago": str(ID_PAGO),
        "monto": "30.00",
        "moneda": "USD",
        "motivo": "duplicado",
        "descripcion": "cobrado dos veces",
        "operador": "ana",
        "publicado": True,
        "estado": None,
    }


def test_reversar_otra_vez_el_mismo_no_publica_y_lo_dice(capsys):
    registrado = dataclasses.replace(HECHO, id_reverso=ID_REVERSO, id_pago=ID_PAGO)
    pedido = ReversoPedido(COMANDO, "USD", Decimal("70.00"), publicado=False, registrado=registrado)
    salida.reverso_pedido(pedido, como_json=False)
    out = capsys.readouterr().out
    assert f"reverso {ID_REVERSO}: ya registrado (EXITOSO): no se publicó nada" in out
    assert f"pagos-worker pagos ver {ID_PAGO}" in out
    salida.reverso_pedido(pedido, como_json=True)
    assert json.loads(capsys.readouterr().out)["estado"] == "EXITOSO"


@pytest.mark.parametrize(
    ("argumentos", "esperado"),
    [
        (["--motivo", "porque_si"], "no es un motivo de reverso: 'porque_si' (duplicado, monto_incorrecto"),
        (["--motivo", "duplicado", "--monto", "0"], "no es un monto positivo"),
        (["--motivo", "duplicado", "--monto", "diez"], "no es un monto positivo"),
        (["--motivo", "duplicado", "--monto", "NaN"], "no es un monto positivo"),
        (["--motivo", "duplicado", "--id-reverso", "123"], "no es un UUID"),
        (["--motivo", "duplicado", "--descripcion", " "], "no puede estar vacío"),
        (["--motivo", "duplicado", "--descripcion", "a\x1bb"], "caracteres de control"),
        (["--motivo", "duplicado", "--descripcion", "x" * 201], "200 caracteres como máximo"),
    ],
)
def test_reversar_rechaza_lo_que_no_se_puede_leer(capsys, argumentos, esperado):
    with pytest.raises(SystemExit) as fin:
        cli.main(["pagos", "reversar", str(ID_PAGO), *argumentos])
    assert fin.value.code == 2
    assert esperado in capsys.readouterr().err


def test_reversar_sin_ajustes_sale_con_2_y_los_nombra(monkeypatch, capsys):
    for nombre in [n for n in os.environ if n.startswith("PAGOS_")]:
        monkeypatch.delenv(nombre)
    assert cli.main(["pagos", "reversar", str(ID_PAGO), "--motivo", "duplicado"]) == 2
    assert "faltan ajustes: PAGOS_DATABASE_URL, PAGOS_PULSAR_URL" in capsys.readouterr().err


def test_la_ayuda_de_reversar_es_en_espanol(capsys):
    with pytest.raises(SystemExit):
        cli.main(["pagos", "reversar", "--help"])
    out = capsys.readouterr().out
    for palabra in ("--motivo", "--monto", "--id-reverso", "--operador", "--descripcion", "duplicado"):
        assert palabra in out, palabra
    for ingles in ("payment", "reversal", "amount", "the "):
        assert ingles not in out, ingles
