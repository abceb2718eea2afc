"""The HTTP API's OpenAPI 3.1 description, served at /openapi.json."""

from typing import Any

_ERROR = {
    "type": "object",
    "required": ["error", "mensaje"],
    "properties": {"error": {"type": "string"}, "mensaje": {"type": "string"}},
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_COMANDO_VENENOSO = {
    "type": "object",
    "description": "A command dead-lettered after failing again and again for a reason of its own (not an outage)",
    "required": ["id_pago", "message_id", "motivo", "fallos", "ultimo_error", "primer_fallo", "en_dlq_desde"],
    "properties": {
        "id_pago": {"type": ["string", "null"], "format": "uuid"},
        "message_id": {"type": "string"},
        "motivo": {"type": "string", "enum": ["error_repetido"]},
        "fallos": {"type": "integer", "minimum": 1},
        "ultimo_error": {"type": "string"},
        "primer_fallo": {"type": "string", "format": "date-time"},
        "en_dlq_desde": {"type": "string", "format": "date-time"},
    },
}

_PAGO = {
    "type": "object",
    "required": [
        "id",
        "id_afiliado",
        "monto",
        "moneda",
        "estado",
        "referencia_pago",
        "fecha_creacion",
        "fecha_procesamiento",
        "mensaje_error",
    ],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "id_afiliado": {"type": "string"},
        "monto": {"type": "string", "pattern": "^[0-9]+\\.[0-9]{2}$", "examples": ["100.50"]},
        "moneda": {"type": "string", "enum": ["USD", "EUR", "COP"]},
        "estado": {"type": "string", "enum": ["PENDIENTE", "PROCESANDO", "EXITOSO", "FALLIDO"]},
        "referencia_pago": {"type": ["string", "null"]},
        "fecha_creacion": {"type": "string", "format": "date-time"},
        "fecha_procesamiento": {"type": ["string", "null"], "format": "date-time"},
        "mensaje_error": {"type": ["string", "null"]},
        "intentos": {"type": "integer", "minimum": 0},
        "requiere_atencion": {
            "type": "boolean",
            "description": "its outcome unknown too often, or still PROCESANDO past the attention age",
        },
        "ultimo_error": {"type": ["string", "null"]},
        "comando_venenoso": {"oneOf": [{"type": "null"}, _COMANDO_VENENOSO]},
    },
}

_NO_ENCONTRADO = {
    **_ERROR,
    "properties": {**_ERROR["properties"], "comando_venenoso": _COMANDO_VENENOSO},  # type: ignore[dict-item]
}

_ESTADISTICAS = {
    "type": "object",
    "required": ["total_eventos", "eventos_procesados", "eventos_pendientes"],
    "properties": {
        "total_eventos": {"type": "integer", "minimum": 0},
        "eventos_procesados": {"type": "integer", "minimum": 0},
        "eventos_pendientes": {"type": "integer", "minimum": 0},
        "antiguedad_pendiente_mas_antiguo_s": {"type": ["number", "null"], "minimum": 0},
    },
}

_STATUS = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "pagos_worker status API", "version": "1.0.0"},
    "paths": {
        "/pagos/{id_pago}": {
            "get": {
                "operationId": "obtenerEstadoPago",
                "parameters": [
                    {"name": "id_pago", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
                ],
                "responses": {
                    "200": _json(_PAGO, "The payment"),
                    "400": _json(_ERROR, "id_pago is not a UUID"),
                    "404": _json(
                        _NO_ENCONTRADO, "No such payment (with its command, if it was dead-lettered as poison)"
                    ),
                    "503": _json(_ERROR, "Storage unavailable"),
                },
            }
        },
        "/pagos/atencion": {
            "get": {
                "operationId": "listarPagosQueRequierenAtencion",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["pagos"],
                            "properties": {
                                "pagos": {"type": "array", "items": _PAGO},
                                "comandos_venenosos": {"type": "array", "items": _COMANDO_VENENOSO},
                                "limite": {"type": "integer"},
                            },
                        },
                        "Payments whose outcome is unknown (flagged, or PROCESANDO past the attention age), oldest"
                        " first; commands dead-lettered as poison, newest first",
                    ),
                    "503": _json(_ERROR, "Storage unavailable"),
                },
            }
        },
        "/pagos/outbox/estadisticas": {
            "get": {
                "operationId": "obtenerEstadisticasOutbox",
                "responses": {"200": _json(_ESTADISTICAS, "Outbox counters"), "503": _json(_ERROR, "Unavailable")},
            }
        },
        "/healthz": {"get": {"operationId": "healthz", "responses": {"200": _json(_STATUS, "Alive")}}},
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "responses": {"200": _json(_STATUS, "Ready"), "503": _json(_STATUS, "Not ready")},
            }
        },
    },
}
