"""`ReversarPago` on the wire: told apart by its property, as strict as `ProcesarPago`, and whatever
arrives is accepted or rejected with a reason, never a crash."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pagos_worker.application.commands import ProcesarPago, ReversarPago
from pagos_worker.contract.wire import (
    ComandoInvalidoError,
    decode,
    decode_reversal,
    encode_command,
    encode_reversal,
)
from pagos_worker.domain import Dinero, Moneda
from pagos_worker.domain.reverso import MotivoReverso
from pagos_worker.entrypoints.worker import decodificar
from tests.unit.test_wire_propiedades import json_values

MOTIVOS_REVERSO = {"tipo_comando_desconocido", "id_reverso_invalido", "motivo_invalido", "descripcion_invalida"}
# A reversal's refusals: the shape and amount reasons it shares with a payment, and its own.
_SUS_MOTIVOS = MOTIVOS_REVERSO | {
    "mensaje_demasiado_grande", "no_utf8", "json_invalido", "no_es_objeto", "campo_faltante", "campo_desconocido",
    "id_pago_invalido", "monto_invalido", "monto_no_positivo", "demasiados_decimales", "monto_demasiado_grande",
}  # fmt: skip
_TIPO = {"tipo_comando": "ReversarPago"}
_BASE = {"id_reverso": str(uuid.uuid4()), "id_pago": str(uuid.uuid4()), "motivo": "fraude"}


def _motivo(cuerpo: object, properties: dict[str, str] | None = None) -> str:
    with pytest.raises(ComandoInvalidoError) as exc:
        decode(json.dumps(cuerpo).encode(), _TIPO if properties is None else properties)
    return exc.value.motivo


def test_sin_la_propiedad_es_un_procesar_pago_como_siempre():
    pago = ProcesarPago(uuid.uuid4(), "afiliado_1", Dinero(Decimal("10.00"), Moneda.USD))
    assert decode(encode_command(pago)) == pago
    assert decode(encode_command(pago), {"tipo_comando": "ProcesarPago", "traceparent": "x"}) == pago
    # A reversal's body without the property is a malformed ProcesarPago: never taken for a payment.
    assert _motivo(_BASE, {}) == "campo_faltante"


def test_un_reverso_completo_y_uno_de_todo_lo_pendiente():
    completo = decode(json.dumps({**_BASE, "monto": "40.5", "descripcion": "venta anulada"}).encode(), _TIPO)
    assert completo == ReversarPago(
        uuid.UUID(_BASE["id_reverso"]),
        uuid.UUID(_BASE["id_pago"]),
        Decimal("40.50"),
        MotivoReverso.FRAUDE,
        "venta anulada",
    )
    todo = decode_reversal(json.dumps(_BASE).encode())
    assert todo.monto is None
    assert todo.descripcion is None
    assert decode_reversal(encode_reversal(completo)) == completo
    assert decode_reversal(encode_reversal(todo)) == todo


@pytest.mark.parametrize(
    ("cambio", "motivo"),
    [
        ({"monto": 10.5}, None),  # a JSON number is read exactly, as ProcesarPago's
        ({"monto": "0"}, "monto_no_positivo"),
        ({"monto": "-1"}, "monto_no_positivo"),
        ({"monto": "1.001"}, "demasiados_decimales"),
        ({"monto": "9999999999.00"}, "monto_demasiado_grande"),
        ({"monto": "diez"}, "monto_invalido"),
        ({"monto": None}, "monto_invalido"),  # absent, never null
        ({"motivo": "capricho"}, "motivo_invalido"),
        ({"motivo": "FRAUDE"}, "motivo_invalido"),
        ({"id_reverso": "no-uuid"}, "id_reverso_invalido"),
        ({"id_pago": 12}, "id_pago_invalido"),
        ({"descripcion": "x" * 201}, "descripcion_invalida"),
        ({"descripcion": "línea\nnueva"}, "descripcion_invalida"),
        ({"descripcion": ""}, "descripcion_invalida"),
        ({"id_afiliado": "a"}, "campo_desconocido"),
    ],
)
def test_estricto_como_procesar_pago(cambio, motivo):
    cuerpo = {**_BASE, **cambio}
    if motivo is None:
        assert decode(json.dumps(cuerpo).encode(), _TIPO).monto == Decimal("10.50")
    else:
        assert _motivo(cuerpo) == motivo


def test_un_tipo_de_comando_desconocido_va_a_la_dlq_con_su_motivo():
    assert _motivo(_BASE, {"tipo_comando": "BorrarPago"}) == "tipo_comando_desconocido"
    assert _motivo({k: v for k, v in _BASE.items() if k != "motivo"}) == "campo_faltante"


def test_el_worker_lee_el_operador_de_las_propiedades():
    comando = decodificar(json.dumps(_BASE).encode(), {**_TIPO, "operador": "ana"})
    assert isinstance(comando, ReversarPago)
    assert comando.operador == "ana"


@given(st.one_of(json_values, st.fixed_dictionaries({}, optional=dict.fromkeys([*_BASE, "monto"], json_values))))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_cualquier_cosa_se_acepta_o_se_rechaza_con_un_motivo(valor):
    try:
        comando = decode(json.dumps(valor).encode(), _TIPO)
    except ComandoInvalidoError as exc:
        rechazo = exc
    else:
        assert isinstance(comando, ReversarPago)
        assert comando.monto is None or comando.monto > 0
        return
    assert rechazo.motivo in _SUS_MOTIVOS
    assert rechazo.detalle
