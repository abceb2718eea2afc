import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pagos_worker.contract.wire import ComandoInvalidoError, decode_command, encode_command, encode_event
from pagos_worker.domain import Dinero, Moneda, PagoExitoso, PagoFallido

ID = "550e8400-e29b-41d4-a716-446655440000"


def comando(**cambios: object) -> bytes:
    base: dict[str, object] = {"id_pago": ID, "id_afiliado": "afiliado_123", "monto": "100.50", "moneda": "USD"}
    base.update(cambios)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def test_comando_valido():
    cmd = decode_command(comando())
    assert cmd.id_pago == uuid.UUID(ID)
    assert cmd.id_afiliado == "afiliado_123"
    assert cmd.importe == Dinero(Decimal("100.50"), Moneda.USD)


@pytest.mark.parametrize(
    ("monto_json", "esperado"),
    [('"100.50"', "100.50"), ("100.50", "100.50"), ("7", "7.00"), ("0.1", "0.10"), ("1e2", "100.00")],
)
def test_monto_como_texto_o_numero_se_lee_exacto(monto_json, esperado):
    data = f'{{"id_pago": "{ID}", "id_afiliado": "a", "monto": {monto_json}, "moneda": "EUR"}}'.encode()
    assert decode_command(data).importe.monto == Decimal(esperado)


@pytest.mark.parametrize(
    ("data", "motivo"),
    [
        (b"\xff\xfe{}", "no_utf8"),
        (b"{not json", "json_invalido"),
        (b'{"monto": NaN}', "json_invalido"),
        (b"", "json_invalido"),
        (b'{"id_pago": "a", "id_pago": "b"}', "json_invalido"),
        (b"[1, 2]", "no_es_objeto"),
        (b'"texto"', "no_es_objeto"),
        (b"null", "no_es_objeto"),
        (comando(moneda=...), "campo_faltante"),
        (comando(id_pago=...), "campo_faltante"),
        (comando(extra=1), "campo_desconocido"),
        (comando(id_pago="no-es-uuid"), "id_pago_invalido"),
        (comando(id_pago=12345), "id_pago_invalido"),
        (comando(id_pago="{" + ID + "}"), "id_pago_invalido"),
        (comando(id_afiliado=""), "id_afiliado_invalido"),
        (comando(id_afiliado="a" * 129), "id_afiliado_invalido"),
        (comando(id_afiliado="a\nb"), "id_afiliado_invalido"),
        (comando(id_afiliado="\ud800"), "id_afiliado_invalido"),
        (comando(id_afiliado=7), "id_afiliado_invalido"),
        (comando(moneda="GBP"), "moneda_no_soportada"),
        (comando(moneda="usd"), "moneda_no_soportada"),
        (comando(moneda=None), "moneda_no_soportada"),
        (comando(monto="0"), "monto_no_positivo"),
        (comando(monto="-5"), "monto_no_positivo"),
        (comando(monto=0), "monto_no_positivo"),
        (comando(monto="100.505"), "demasiados_decimales"),
        (comando(monto=100.505), "demasiados_decimales"),
        (comando(monto="1e3"), "monto_invalido"),
        (comando(monto="abc"), "monto_invalido"),
        (comando(monto=None), "monto_invalido"),
        (comando(monto=True), "monto_invalido"),
        (comando(monto=[1]), "monto_invalido"),
        (comando(monto="99999999999999999999"), "monto_demasiado_grande"),
        (comando(monto=10**30), "monto_demasiado_grande"),
        (
            b'{"id_pago": "' + ID.encode() + b'", "id_afiliado": "a", "monto": 1e999, "moneda": "USD"}',
            "monto_demasiado_grande",
        ),
        (b" " * 20000, "mensaje_demasiado_grande"),
    ],
)
def test_cada_rechazo_tiene_su_motivo(data, motivo):
    with pytest.raises(ComandoInvalidoError) as info:
        decode_command(data)
    assert info.value.motivo == motivo
    assert info.value.detalle


def test_comando_ida_y_vuelta():
    cmd = decode_command(comando(monto="12.30", moneda="COP"))
    assert decode_command(encode_command(cmd)) == cmd


def test_evento_exitoso_con_el_formato_del_contrato():
    evento = PagoExitoso(
        event_id=uuid.UUID(int=1),
        timestamp=datetime(2026, 1, 1, 10, 0, 0, 123456, tzinfo=UTC),
        id_pago=uuid.UUID(ID),
        id_afiliado="afiliado_123",
        importe=Dinero(Decimal("100.5"), Moneda.USD),
        referencia_pago="tr_1",
    )
    assert json.loads(encode_event(evento)) == {
        "event_type": "PagoExitoso",
        "event_id": "00000000-0000-0000-0000-000000000001",
        "timestamp": "2026-01-01T10:00:00.123Z",
        "data": {
            "id_pago": ID,
            "id_afiliado": "afiliado_123",
            "monto": "100.50",
            "moneda": "USD",
            "referencia_pago": "tr_1",
        },
    }


def test_evento_fallido_lleva_mensaje_error_y_referencia_nula():
    evento = PagoFallido(
        event_id=uuid.uuid4(),
        timestamp=datetime.now(UTC),
        id_pago=uuid.UUID(ID),
        id_afiliado="a",
        importe=Dinero(Decimal(3), Moneda.EUR),
        referencia_pago=None,
        mensaje_error="Fondos insuficientes",
    )
    data = json.loads(encode_event(evento))
    assert data["event_type"] == "PagoFallido"
    assert data["data"]["mensaje_error"] == "Fondos insuficientes"
    assert data["data"]["referencia_pago"] is None
    assert data["data"]["monto"] == "3.00"
    assert data["timestamp"].endswith("Z")
