"""Messages held to the AsyncAPI document that the service ships: payload, properties and key of a
command, an event or a dead letter, each against its message's own schemas in the document."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from pagos_worker.contract.asyncapi import documento_publicado

URI = "urn:pagos-worker:asyncapi"


@cache
def asyncapi() -> dict[str, Any]:
    return json.loads(documento_publicado())


@cache
def _registro() -> Registry:
    return Registry().with_resource(URI, Resource.from_contents(asyncapi(), default_specification=DRAFT202012))


@cache
def validador(puntero: str) -> Draft202012Validator:
    """A validator for the schema at `puntero` in the document (its $refs resolved in the document)."""
    return Draft202012Validator(
        {"$ref": f"{URI}#{puntero}"}, registry=_registro(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def errores(mensaje: str, payload: Any, properties: Mapping[str, str], key: str | None) -> list[str]:
    """What is wrong with a message of `mensaje` (ProcesarPago, ReversarPago, an event,
    ComandoRechazado): every violation of its payload, headers and key schemas, or nothing."""
    base = f"/components/messages/{mensaje}"
    definicion = asyncapi()["components"]["messages"][mensaje]
    malos = [f"payload {e.json_path}: {e.message}" for e in validador(f"{base}/payload").iter_errors(payload)]
    malos += [
        f"properties {e.json_path}: {e.message}" for e in validador(f"{base}/headers").iter_errors(dict(properties))
    ]
    if key or definicion["x-pulsar-key"]["required"]:  # Pulsar gives "" for no key
        malos += [f"key: {e.message}" for e in validador(f"{base}/x-pulsar-key/schema").iter_errors(key)]
    return malos


def evento(data: bytes, properties: Mapping[str, str], key: str | None) -> dict[str, Any]:
    """An event read off the events topic, once it is shown to be one: the JSON payload."""
    payload = json.loads(data)
    tipo = payload.get("event_type")
    assert tipo in {"PagoExitoso", "PagoFallido", "PagoReversado", "ReversoFallido", "PagoAnulado"}, payload
    malos = errores(tipo, payload, properties, key)
    assert not malos, (malos, payload, properties, key)
    return payload


def comando(data: bytes, properties: Mapping[str, str], key: str | None) -> None:
    tipo = properties.get("tipo_comando", "ProcesarPago")
    malos = errores(tipo, json.loads(data), properties, key)
    assert not malos, (malos, data, properties, key)


def carta_muerta(data: bytes, properties: Mapping[str, str], key: str | None) -> None:
    """A dead letter: its payload is the command's bytes, whatever they are (a string of bytes)."""
    malos = errores("ComandoRechazado", data.decode("latin-1"), properties, key)
    assert not malos, (malos, data, properties, key)
