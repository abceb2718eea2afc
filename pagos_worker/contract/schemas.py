"""JSON Schemas from the contract's models, named by their titles (`ProcesarPago`, `ReversarPago`, `PagoExitoso`…,
not the Python class names), alone or as a set of definitions for an OpenAPI or AsyncAPI document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from pagos_worker.contract.models import (
    ComandoProcesarPago,
    ComandoReversarPago,
    EventoPagoAnulado,
    EventoPagoExitoso,
    EventoPagoFallido,
    EventoPagoReversado,
    EventoReversoFallido,
    PropiedadesComando,
    PropiedadesDLQ,
    PropiedadesEvento,
)

DIALECTO = "https://json-schema.org/draft/2020-12/schema"
MENSAJES: tuple[type[BaseModel], ...] = (
    ComandoProcesarPago,
    ComandoReversarPago,
    EventoPagoExitoso,
    EventoPagoFallido,
    EventoPagoReversado,
    EventoReversoFallido,
    EventoPagoAnulado,
    PropiedadesComando,
    PropiedadesEvento,
    PropiedadesDLQ,
)


def nombre(modelo: type[BaseModel]) -> str:
    return str(modelo.model_config.get("title") or modelo.__name__)


def definiciones(modelos: Sequence[type[BaseModel]], prefijo: str) -> dict[str, Any]:
    """Every model's schema and those of the models inside them, by name, referring to each other
    as `{prefijo}{name}` (`#/components/schemas/` in OpenAPI and AsyncAPI)."""
    _, todas = models_json_schema([(m, "validation") for m in modelos], ref_template=prefijo + "{model}")
    defs: dict[str, Any] = todas.get("$defs", {})
    nombres = {clave: str(schema.get("title", clave)) for clave, schema in defs.items()}
    cambios = {prefijo + viejo: prefijo + nuevo for viejo, nuevo in nombres.items()}
    return {nombres[clave]: _con_referencias(schema, cambios) for clave, schema in defs.items()}


def esquema(modelo: type[BaseModel]) -> dict[str, Any]:
    """One model's schema as a document of its own (JSON Schema 2020-12, nested models in `$defs`)."""
    defs = definiciones([modelo], "#/$defs/")
    propio = defs.pop(nombre(modelo))
    return {"$schema": DIALECTO, **propio, **({"$defs": defs} if defs else {})}


def esquemas_de_mensajes() -> dict[str, dict[str, Any]]:
    return {nombre(m): esquema(m) for m in MENSAJES}


def _con_referencias(valor: Any, cambios: Mapping[str, str]) -> Any:  # noqa: ANN401 - any JSON value
    if isinstance(valor, dict):
        return {k: cambios.get(v, v) if k == "$ref" else _con_referencias(v, cambios) for k, v in valor.items()}
    if isinstance(valor, list):
        return [_con_referencias(v, cambios) for v in valor]
    return valor
