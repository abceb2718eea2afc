"""Property-based: whatever arrives on the commands topic is accepted or rejected with a reason,
never a crash."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pagos_worker.application.commands import ProcesarPago
from pagos_worker.contract.wire import ComandoInvalidoError, decode_command, encode_command

MOTIVOS = {
    "mensaje_demasiado_grande", "no_utf8", "json_invalido", "no_es_objeto", "campo_faltante", "campo_desconocido",
    "id_pago_invalido", "id_afiliado_invalido", "moneda_no_soportada", "monto_invalido", "monto_no_positivo",
    "demasiados_decimales", "monto_demasiado_grande",
}  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def decodifica_o_rechaza(data: bytes) -> None:
    try:
        comando = decode_command(data)
    except ComandoInvalidoError as exc:
        rechazo = exc
    else:
        assert isinstance(comando, ProcesarPago)
        assert comando.importe.monto > 0
        return
    assert rechazo.motivo in MOTIVOS
    assert rechazo.detalle


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_bytes_cualesquiera(data):
    decodifica_o_rechaza(data)


@settings(max_examples=500)
@given(json_values)
def test_json_cualquiera(valor):
    decodifica_o_rechaza(json.dumps(valor).encode())


campos = st.fixed_dictionaries(
    {},
    optional={
        "id_pago": st.uuids().map(str) | json_values,
        "id_afiliado": st.text(max_size=140) | json_values,
        "monto": st.decimals(allow_nan=True, allow_infinity=True).map(str) | st.integers() | st.floats() | json_values,
        "moneda": st.sampled_from(["USD", "EUR", "COP", "usd", "GBP", ""]) | json_values,
        "extra": json_values,
    },
)


@settings(max_examples=500)
@given(campos)
def test_objetos_casi_validos(objeto):
    decodifica_o_rechaza(json.dumps(objeto).encode())


comandos_validos = st.builds(
    lambda id_pago, afiliado, centimos, moneda: {
        "id_pago": str(id_pago),
        "id_afiliado": afiliado,
        "monto": str(Decimal(centimos).scaleb(-2)),
        "moneda": moneda,
    },
    st.uuids(),
    st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=128),
    st.integers(min_value=1, max_value=100_000_000),
    st.sampled_from(["USD", "EUR", "COP"]),
)


@settings(max_examples=300)
@given(comandos_validos)
def test_todo_comando_valido_se_acepta_y_vuelve_igual(objeto):
    comando = decode_command(json.dumps(objeto).encode())
    assert comando.id_pago == uuid.UUID(objeto["id_pago"])
    assert comando.importe.monto == Decimal(objeto["monto"])
    assert decode_command(encode_command(comando)) == comando
