"""The contract's documents: the AsyncAPI document is valid AsyncAPI 3.0, every committed document is
the one the models generate, and what the service writes on the wire (commands, events, dead-letter
properties) fits them."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import get_args

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pagos_dev.tools import contrato
from pagos_worker.application.handlers import Accion, Desenlace
from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.contract import campos, http, models
from pagos_worker.contract.asyncapi import documento_publicado
from pagos_worker.contract.wire import decode_command, encode_command, encode_event
from pagos_worker.domain import Dinero, Moneda, PagoExitoso, PagoFallido
from pagos_worker.domain.conciliacion import DIFERENCIAS
from pagos_worker.domain.pago import EstadoPago
from pagos_worker.domain.reverso import CodigoReversoFallido, MotivoReverso
from pagos_worker.entrypoints.worker import mensaje_dlq
from tests import contrato_helpers
from tests.fake_command_source import FakeDelivery
from tests.unit.test_wire_propiedades import MOTIVOS
from tests.unit.test_wire_reverso import MOTIVOS_REVERSO

# AsyncAPI 3.0.0's JSON Schema, as published in @asyncapi/specs 6.11.1 (npm; Apache-2.0),
# schemas/3.0.0.json, unchanged.
ESQUEMA_ASYNCAPI = Path(__file__).parents[1] / "data" / "asyncapi-3.0.0.schema.json"


@pytest.fixture(scope="module")
def validador_asyncapi() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(ESQUEMA_ASYNCAPI.read_text()))


def test_el_documento_asyncapi_es_asyncapi_3_0_valido(validador_asyncapi):
    documento = json.loads(documento_publicado())
    assert documento["asyncapi"] == "3.0.0"
    assert [f"{e.json_path}: {e.message}" for e in validador_asyncapi.iter_errors(documento)] == []


@pytest.mark.parametrize(
    ("ruta", "valor"),
    [
        (("operations", "recibirProcesarPago", "action"), "take"),
        (("channels", "dlq", "bindings", "pulsar", "persistence"), "a veces"),
        (("components", "schemas", "ProcesarPago", "required"), "id_pago"),
        (("info",), None),
    ],
)
def test_el_esquema_de_asyncapi_si_rechaza_un_documento_roto(validador_asyncapi, ruta, valor):
    roto = copy.deepcopy(json.loads(documento_publicado()))
    destino = roto
    for clave in ruta[:-1]:
        destino = destino[clave]
    if valor is None:
        del destino[ruta[-1]]
    else:
        destino[ruta[-1]] = valor
    assert not validador_asyncapi.is_valid(roto)


def test_los_documentos_comprometidos_son_los_que_dan_los_modelos(repo_root):
    assert contrato.desfasados(repo_root) == [], "make contract, and commit what it writes"


def test_los_tres_canales_con_sus_topics_y_mensajes():
    documento = json.loads(documento_publicado())
    canales = {n: (c["address"], sorted(c["messages"])) for n, c in documento["channels"].items()}
    assert canales == {
        "comandos": ("persistent://public/default/pagos-comandos", ["ProcesarPago", "ReversarPago"]),
        "eventos": (
            "persistent://public/default/pagos-events",
            ["PagoAnulado", "PagoExitoso", "PagoFallido", "PagoReversado", "ReversoFallido"],
        ),
        "dlq": ("persistent://public/default/pagos-comandos-DLQ", ["ComandoRechazado"]),
    }
    assert documento["operations"]["recibirProcesarPago"]["x-pulsar-subscription"]["name"] == "pagos-worker"


def test_los_ejemplos_del_documento_cumplen_sus_esquemas():
    for nombre, mensaje in contrato_helpers.asyncapi()["components"]["messages"].items():
        for ejemplo in mensaje["examples"]:
            payload = ejemplo["payload"]
            key = payload["data"]["id_pago"] if "event_type" in payload else None
            assert contrato_helpers.errores(nombre, payload, ejemplo.get("headers", {}), key) == [], nombre


def test_los_ejemplos_de_los_modelos_se_validan_con_los_modelos():
    assert decode_command(json.dumps(models.EJEMPLO_COMANDO).encode()).id_afiliado == "afiliado_123"
    models.EventoPagoExitoso.model_validate(models.EJEMPLO_EXITOSO)
    models.EventoPagoFallido.model_validate(models.EJEMPLO_FALLIDO)
    models.PropiedadesDLQ.model_validate(models.EJEMPLO_DLQ)


def test_los_valores_cerrados_son_los_del_dominio_y_de_los_tests():
    assert set(get_args(campos.Moneda)) == {m.value for m in Moneda}
    assert set(get_args(http.EstadoPago)) == {e.value for e in EstadoPago}
    assert set(campos.MOTIVOS_RECHAZO) == MOTIVOS | MOTIVOS_REVERSO
    propios = {"conflicto_con_pago_existente", "conflicto_con_reverso_existente", "error_repetido"}
    assert set(campos.MOTIVOS_DLQ) == MOTIVOS | MOTIVOS_REVERSO | propios
    assert set(get_args(campos.MotivoReverso)) == {m.value for m in MotivoReverso}
    assert set(get_args(campos.CodigoReversoFallido)) == {c.value for c in CodigoReversoFallido}
    assert set(get_args(http.ClaseDiferencia)) == {c.value for c in DIFERENCIAS}


def test_el_esquema_del_comando_pide_exactamente_los_cuatro_campos():
    esquema = json.loads((Path(__file__).parents[2] / "docs/contract/schemas/ProcesarPago.json").read_text())
    assert esquema["required"] == ["id_pago", "id_afiliado", "monto", "moneda"]
    assert esquema["additionalProperties"] is False
    jsonschema.Draft202012Validator.check_schema(esquema)


afiliados = st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=128)
importes = st.builds(
    lambda centimos, moneda: Dinero(Decimal(centimos).scaleb(-2), moneda),
    st.integers(1, 100_000_000),
    st.sampled_from(list(Moneda)),
)
momentos = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))  # noqa: DTZ001
referencias = st.text(max_size=40)


comunes = st.fixed_dictionaries(
    {
        "event_id": st.uuids(),
        "timestamp": momentos,
        "id_pago": st.uuids(),
        "id_afiliado": afiliados,
        "importe": importes,
    }
)


@settings(max_examples=200)
@given(comunes, st.one_of(st.none(), referencias), st.text(min_size=1))
def test_todo_evento_codificado_cumple_su_esquema(comunes, referencia, error):
    eventos = [
        PagoExitoso(**comunes, referencia_pago=referencia or "tr_1"),
        PagoFallido(**comunes, referencia_pago=referencia, mensaje_error=error),
    ]
    for evento in eventos:
        mensaje = OutboxEvent(1, evento.event_id, evento.tipo, evento.id_pago, encode_event(evento))
        contrato_helpers.evento(mensaje.payload, mensaje.properties, mensaje.key)
        modelo = models.EventoPagoExitoso if evento.tipo == "PagoExitoso" else models.EventoPagoFallido
        modelo.model_validate_json(mensaje.payload)
        models.PropiedadesEvento.model_validate(dict(mensaje.properties))


@settings(max_examples=200)
@given(st.uuids(), afiliados, importes)
def test_todo_comando_codificado_cumple_su_esquema(id_pago, afiliado, importe):
    from pagos_worker.application.commands import ProcesarPago  # noqa: PLC0415

    data = encode_command(ProcesarPago(id_pago, afiliado, importe))
    contrato_helpers.comando(data, {}, str(id_pago))


@pytest.mark.parametrize(
    ("data", "key", "properties"),
    [
        (b"\xff\xfe", None, {}),
        (b'{"id_pago": 1}', "k1", {"origen": "test", "motivo": "lo que dijera el publicador"}),
        (b"x" * 20_000, "", {"traceparent": "00-abc-def-01"}),
    ],
)
async def test_las_propiedades_de_una_carta_muerta_cumplen_su_esquema(data, key, properties):
    from pagos_worker.entrypoints.worker import manejar  # noqa: PLC0415

    async def procesar(_):
        raise AssertionError

    desenlace = await manejar(data, procesar)
    assert desenlace.accion is Accion.DLQ
    entrega = FakeDelivery(data, properties, key, "(1,2,-1,0)", 0, "persistent://public/default/pagos-comandos")
    mensaje = mensaje_dlq(entrega, desenlace)
    contrato_helpers.carta_muerta(mensaje.payload, mensaje.properties, mensaje.key)
    models.PropiedadesDLQ.model_validate(dict(mensaje.properties))


def test_una_carta_muerta_del_trabajador_tambien():
    entrega = FakeDelivery(b"{}", {}, str(uuid.uuid4()), "(1,2,-1,0)", 4, "persistent://t/comandos")
    for motivo, detalle in (("conflicto_con_pago_existente", "otro importe"), ("error_repetido", "x" * 5000)):
        mensaje = mensaje_dlq(entrega, Desenlace(Accion.DLQ, motivo, detalle))
        contrato_helpers.carta_muerta(mensaje.payload, mensaje.properties, mensaje.key)


ID = "550e8400-e29b-41d4-a716-446655440000"
PROPIEDADES = {"event_type": "PagoExitoso", "event_id": str(uuid.uuid4())}
DLQ = {"motivo": "no_utf8", "detalle": "d", "topic_origen": "t", "message_id_origen": "m"}


@pytest.mark.parametrize(
    ("mensaje", "payload", "properties", "key"),
    [
        ("PagoExitoso", {**models.EJEMPLO_EXITOSO, "extra": 1}, PROPIEDADES, ID),
        ("PagoExitoso", models.EJEMPLO_EXITOSO, {"event_type": "PagoExitoso"}, ID),
        ("PagoExitoso", models.EJEMPLO_EXITOSO, PROPIEDADES, ""),
        ("PagoFallido", models.EJEMPLO_EXITOSO, {**PROPIEDADES, "event_type": "PagoFallido"}, ID),
        ("ProcesarPago", {**models.EJEMPLO_COMANDO, "moneda": "GBP"}, {}, None),
        ("ProcesarPago", models.EJEMPLO_COMANDO, {}, "no-es-un-uuid"),
        ("ComandoRechazado", "x", {**DLQ, "motivo": "otro"}, None),
        ("ComandoRechazado", "x", {**DLQ, "detalle": "d" * 1001}, None),
        ("ComandoRechazado", "x", {**DLQ, "origen": 7}, None),
    ],
)
def test_los_esquemas_si_rechazan_un_mensaje_que_no_cumple(mensaje, payload, properties, key):
    assert contrato_helpers.errores(mensaje, payload, properties, key) != []
