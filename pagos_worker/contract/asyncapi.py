"""The AsyncAPI 3.0 description of the messaging contract, generated from the models: three channels
(commands, events, dead letters) with their topics, message keys, properties, payload schemas and
examples. `pagos-dev contract` writes it to `asyncapi.json` beside this module, which the HTTP API
serves at /asyncapi.json; a test keeps the file equal to what this module generates.

Pulsar has no AsyncAPI message binding, so a message's key (its partition key) is described by the
extension `x-pulsar-key`: its schema, whether every message has one, and what it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from pydantic import JsonValue

from pagos_worker.contract.campos import PATRON_UUID
from pagos_worker.contract.models import (
    EJEMPLO_ANULADO,
    EJEMPLO_COMANDO,
    EJEMPLO_DLQ,
    EJEMPLO_EXITOSO,
    EJEMPLO_FALLIDO,
    EJEMPLO_PROPIEDADES_COMANDO,
    EJEMPLO_REVERSADO,
    EJEMPLO_REVERSAR,
    EJEMPLO_REVERSO_FALLIDO,
    ComandoProcesarPago,
    ComandoReversarPago,
)
from pagos_worker.contract.schemas import MENSAJES, definiciones, nombre

ARCHIVO = "asyncapi.json"
# 1.1.0: W3C trace context on commands and events (optional properties). 1.2.0: `ReversarPago` on the
# commands topic (property `tipo_comando`) and its events `PagoReversado`, `ReversoFallido`, `PagoAnulado`;
# `ProcesarPago` and the payments' events unchanged.
VERSION_CONTRATO = "1.2.0"
_REF = "#/components/schemas/"
_ID_PAGO = {"type": "string", "format": "uuid", "pattern": PATRON_UUID, "description": "The payment's id_pago"}


@dataclass(frozen=True)
class Topics:
    commands: str
    events: str
    dlq: str
    subscription: str


def documento_publicado() -> bytes:
    """The committed document, as the package ships it."""
    return resources.files(__package__).joinpath(ARCHIVO).read_bytes()


def asyncapi(topics: Topics) -> dict[str, Any]:
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "pagos_worker messaging contract",
            "version": VERSION_CONTRATO,
            "description": (
                "Upstream services publish `ProcesarPago` commands; the service pays each one once and "
                "publishes exactly one `PagoExitoso` or `PagoFallido` event per payment (at least once: "
                "consumers de-duplicate by `event_id`). A saga compensates a payment with `ReversarPago` "
                "(same topic, message property `tipo_comando` = `ReversarPago`): reversed at most once per "
                "`id_reverso`, with exactly one `PagoReversado`, `ReversoFallido` or `PagoAnulado` event "
                "each. A command that cannot be accepted goes, byte for byte, to the dead-letter topic with "
                "the reason in its properties. These names and shapes do not change."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "pulsar": {
                "host": "{broker}",
                "protocol": "pulsar",
                "description": "The Apache Pulsar cluster named by PAGOS_PULSAR_URL (pulsar+ssl with TLS).",
                "variables": {"broker": {"description": "host:port", "examples": ["127.0.0.1:6650"]}},
                "bindings": {"pulsar": {"tenant": _tenant(topics.commands), "bindingVersion": "0.1.0"}},
            }
        },
        "channels": {
            "comandos": _canal(
                topics.commands,
                "Commands to pay, and to reverse a payment",
                ["ProcesarPago", "ReversarPago"],
                f"Consumed by subscription `{topics.subscription}` (Shared). A message is a `ReversarPago` when "
                "its property `tipo_comando` says so, else a `ProcesarPago`.",
            ),
            "eventos": _canal(topics.events, "What became of each payment and reversal", list(_EVENTOS)),
            "dlq": _canal(topics.dlq, "Commands refused, as they came", ["ComandoRechazado"]),
        },
        "operations": {
            "recibirProcesarPago": {
                "action": "receive",
                "channel": {"$ref": "#/channels/comandos"},
                "summary": "Pay a command's amount once per id_pago",
                "messages": [{"$ref": "#/channels/comandos/messages/ProcesarPago"}],
                "x-pulsar-subscription": {"name": topics.subscription, "type": "Shared"},
            },
            "recibirReversarPago": {
                "action": "receive",
                "channel": {"$ref": "#/channels/comandos"},
                "summary": "Reverse (part of) a payment once per id_reverso: the saga's compensation",
                "messages": [{"$ref": "#/channels/comandos/messages/ReversarPago"}],
                "x-pulsar-subscription": {"name": topics.subscription, "type": "Shared"},
            },
            "publicarEventoPago": {
                "action": "send",
                "channel": {"$ref": "#/channels/eventos"},
                "summary": "One event per payment, once its outcome is committed",
                "messages": [
                    {"$ref": "#/channels/eventos/messages/PagoExitoso"},
                    {"$ref": "#/channels/eventos/messages/PagoFallido"},
                ],
            },
            "publicarEventoReverso": {
                "action": "send",
                "channel": {"$ref": "#/channels/eventos"},
                "summary": "One event per reversal (id_reverso in its data), once its outcome is committed",
                "messages": [{"$ref": f"#/channels/eventos/messages/{m}"} for m in _EVENTOS if m not in _PAGO],
            },
            "publicarComandoRechazado": {
                "action": "send",
                "channel": {"$ref": "#/channels/dlq"},
                "summary": "A command that cannot be accepted, with the reason",
                "messages": [{"$ref": "#/channels/dlq/messages/ComandoRechazado"}],
            },
        },
        "components": {"messages": _mensajes(topics), "schemas": definiciones(MENSAJES, _REF)},
    }


_PAGO = ("PagoExitoso", "PagoFallido")
_EVENTOS: dict[str, tuple[str, dict[str, JsonValue]]] = {
    "PagoExitoso": ("The affiliate was paid", EJEMPLO_EXITOSO),
    "PagoFallido": ("The gateway refused the payment for good", EJEMPLO_FALLIDO),
    "PagoReversado": ("Money came back from the affiliate (a transfer reversal)", EJEMPLO_REVERSADO),
    "ReversoFallido": ("The reversal could not be made", EJEMPLO_REVERSO_FALLIDO),
    "PagoAnulado": ("Nothing was or will be paid: the compensation is complete", EJEMPLO_ANULADO),
}


def _tenant(topic: str) -> str:
    return topic.removeprefix("persistent://").split("/")[0]


def _canal(topic: str, titulo: str, mensajes: list[str], descripcion: str = "") -> dict[str, Any]:
    tenant_namespace = topic.removeprefix("persistent://").rsplit("/", 1)[0]
    canal: dict[str, Any] = {
        "address": topic,
        "title": titulo,
        "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in mensajes},
        "bindings": {
            "pulsar": {
                "namespace": tenant_namespace.split("/", 1)[1],
                "persistence": "persistent",
                "bindingVersion": "0.1.0",
            }
        },
    }
    if descripcion:
        canal["description"] = descripcion
    return canal


def _mensajes(topics: Topics) -> dict[str, Any]:
    return {
        "ProcesarPago": {
            "name": "ProcesarPago",
            "title": "Pay an affiliate",
            "summary": "UTF-8 JSON, at most 16 KiB; the same id_pago is paid at most once, however often it comes",
            "contentType": "application/json",
            "payload": {"$ref": _REF + nombre(ComandoProcesarPago)},
            "headers": {"$ref": _REF + "PropiedadesComando"},
            "x-pulsar-key": {"schema": _ID_PAGO, "required": False, "description": "Should be the command's id_pago."},
            "examples": [
                {"name": "usd", "payload": EJEMPLO_COMANDO},
                {"name": "con_traza", "headers": EJEMPLO_PROPIEDADES_COMANDO, "payload": EJEMPLO_COMANDO},
            ],
        },
        "ReversarPago": {
            "name": "ReversarPago",
            "title": "Reverse a payment (the saga's compensation)",
            "summary": "UTF-8 JSON, at most 16 KiB, property tipo_comando=ReversarPago; the same id_reverso is "
            "reversed at most once, however often it comes",
            "contentType": "application/json",
            "payload": {"$ref": _REF + nombre(ComandoReversarPago)},
            "headers": {"$ref": _REF + "PropiedadesComando"},
            "x-pulsar-key": {"schema": _ID_PAGO, "required": False, "description": "Should be the id_pago reversed."},
            "examples": [
                {"name": "parcial", "headers": {"tipo_comando": "ReversarPago"}, "payload": EJEMPLO_REVERSAR},
            ],
        },
        **{tipo: _evento(tipo, titulo, ejemplo) for tipo, (titulo, ejemplo) in _EVENTOS.items()},
        "ComandoRechazado": {
            "name": "ComandoRechazado",
            "title": "A refused command",
            "summary": "The command's own bytes, key and properties, plus why it was refused",
            "contentType": "application/octet-stream",
            "payload": {
                "type": "string",
                "format": "binary",
                "description": "Exactly the bytes that came: they may not be JSON, or not even UTF-8.",
            },
            "headers": {"$ref": _REF + "PropiedadesDLQ"},
            "x-pulsar-key": {
                "schema": {"type": "string", "minLength": 1},
                "required": False,
                "description": "The command's own key; none when it had none.",
            },
            "examples": [
                {
                    "name": "monto_cero",
                    "headers": {**EJEMPLO_DLQ, "topic_origen": topics.commands},
                    "payload": '{"id_pago": "550e8400-e29b-41d4-a716-446655440000", "id_afiliado": "a", '
                    '"monto": "0", "moneda": "USD"}',
                }
            ],
        },
    }


def _evento(tipo: str, titulo: str, ejemplo: dict[str, JsonValue]) -> dict[str, Any]:
    return {
        "name": tipo,
        "title": titulo,
        "summary": f"event_type {tipo}; consumers de-duplicate by event_id",
        "contentType": "application/json",
        "payload": {"$ref": _REF + tipo},
        "headers": {"$ref": _REF + "PropiedadesEvento"},
        "x-pulsar-key": {"schema": _ID_PAGO, "required": True, "description": "The payment's id_pago (data.id_pago)."},
        "examples": [
            {
                "name": tipo,
                "headers": {"event_type": tipo, "event_id": ejemplo["event_id"]},
                "payload": ejemplo,
            }
        ],
    }
