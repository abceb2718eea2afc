"""The HTTP API's OpenAPI 3.1 description, served at /openapi.json and shown at /docs. The routes are
written here; the schemas of their answers are generated from `contract.http`'s models."""

from __future__ import annotations

import functools
from typing import Any

from pagos_worker.contract import http
from pagos_worker.contract.schemas import definiciones

MODELOS = (
    http.Pago,
    http.PagoNoEncontrado,
    http.ComandoVenenoso,
    http.PagosQueRequierenAtencion,
    http.EstadisticasOutbox,
    http.Error,
    http.Salud,
    http.Preparacion,
)
_REF = "#/components/schemas/"


def _json(modelo: str | dict[str, Any], description: str) -> dict[str, Any]:
    schema = {"$ref": _REF + modelo} if isinstance(modelo, str) else modelo
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _get(operation_id: str, summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:  # noqa: ANN401
    return {"get": {"operationId": operation_id, "summary": summary, "responses": responses, **extra}}


_DOCUMENTO = {"type": "object", "description": "A JSON document"}

_PATHS: dict[str, Any] = {
    "/pagos/{id_pago}": _get(
        "obtenerEstadoPago",
        "A payment's state",
        {
            "200": _json("Pago", "The payment"),
            "400": _json("Error", "id_pago is not a UUID"),
            "404": _json(
                "PagoNoEncontrado",
                "No such payment (with its command, if that was dead-lettered; with the reversal that annulled it, if "
                "one came before it)",
            ),
            "503": _json("Error", "Storage unavailable"),
        },
        parameters=[
            {"name": "id_pago", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
        ],
    ),
    "/pagos/atencion": _get(
        "listarPagosQueRequierenAtencion",
        "Payments, poison commands, reversals and reconciliation differences that need an operator",
        {
            "200": _json("PagosQueRequierenAtencion", "At most 100 of each"),
            "503": _json("Error", "Storage unavailable"),
        },
    ),
    "/pagos/outbox/estadisticas": _get(
        "obtenerEstadisticasOutbox",
        "The outbox's counters",
        {"200": _json("EstadisticasOutbox", "Outbox counters"), "503": _json("Error", "Unavailable")},
    ),
    "/healthz": _get("healthz", "Liveness", {"200": _json("Salud", "Alive")}),
    "/readyz": _get(
        "readyz", "Readiness", {"200": _json("Preparacion", "Ready"), "503": _json("Preparacion", "Not ready")}
    ),
    "/metrics": _get(
        "metrics",
        "Prometheus metrics",
        {
            "200": {
                "description": "Prometheus text exposition",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    ),
    "/openapi.json": _get("openapi", "This description", {"200": _json(_DOCUMENTO, "OpenAPI 3.1")}),
    "/asyncapi.json": _get(
        "asyncapi",
        "The messaging contract: commands, events and dead letters",
        {"200": _json(_DOCUMENTO, "AsyncAPI 3.0")},
    ),
    "/docs": _get(
        "docs",
        "This description, read-only, as a page (Swagger UI)",
        {"200": {"description": "An HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}},
    ),
}


@functools.cache
def openapi() -> dict[str, Any]:
    """Built once, on first use (schema generation takes some milliseconds: not at import)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pagos_worker status API",
            "version": "1.0.0",
            "description": (
                "Read-only. Every error is a JSON body `{error, mensaje}`. Bound beyond loopback, every "
                "route but /healthz and /readyz wants `Authorization: Bearer <token>` (401 without, 403 "
                "with an unknown one)."
            ),
        },
        "paths": _PATHS,
        "components": {"schemas": definiciones(MODELOS, _REF)},
    }
