"""The contract's field types: what a UUID, an affiliate, an amount, a timestamp, a currency and a
refusal reason look like on the wire, as pydantic types that carry their JSON Schema."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, get_args

from pydantic import Field, StringConstraints, WithJsonSchema

LONGITUD_MAXIMA_AFILIADO = 128
LONGITUD_MAXIMA_DETALLE = 1000
LONGITUD_MAXIMA_DESCRIPCION = 200

PATRON_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
PATRON_AFILIADO = r"^[^\x00-\x1f\x7f]+$"
PATRON_MONTO_TEXTO = r"^-?[0-9]{1,30}(\.[0-9]{1,30})?$"
PATRON_MONTO_EVENTO = r"^[0-9]{1,10}\.[0-9]{2}$"
PATRON_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
# W3C Trace Context, version 00: a trace id and a parent id, neither all zeros, and the flags.
PATRON_TRACEPARENT = r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$"
LONGITUD_MAXIMA_TRACESTATE = 512

Moneda = Literal["USD", "EUR", "COP"]  # pagos_worker.domain.Moneda's values (a test keeps them equal)

# Why a command was refused: the dead letter's `motivo`. The decoder's reasons, then the worker's
# (a conflicting id_pago, a poison message).
MotivoRechazo = Literal[
    "mensaje_demasiado_grande",
    "no_utf8",
    "json_invalido",
    "no_es_objeto",
    "campo_faltante",
    "campo_desconocido",
    "id_pago_invalido",
    "id_afiliado_invalido",
    "moneda_no_soportada",
    "monto_invalido",
    "monto_no_positivo",
    "demasiados_decimales",
    "monto_demasiado_grande",
    # a `ReversarPago`'s own (it is told apart by its message property `tipo_comando`)
    "tipo_comando_desconocido",
    "id_reverso_invalido",
    "motivo_invalido",
    "descripcion_invalida",
]
Motivo = Literal[MotivoRechazo, "conflicto_con_pago_existente", "conflicto_con_reverso_existente", "error_repetido"]
MOTIVOS_RECHAZO: tuple[str, ...] = get_args(MotivoRechazo)
MOTIVOS_DLQ: tuple[str, ...] = get_args(Motivo)

IdPago = Annotated[
    str,
    StringConstraints(pattern=PATRON_UUID),
    Field(
        json_schema_extra={"format": "uuid"},
        description="The payment's UUID, chosen by the publisher: its identity and idempotency key",
        examples=["550e8400-e29b-41d4-a716-446655440000"],
    ),
]
IdReverso = Annotated[
    str,
    StringConstraints(pattern=PATRON_UUID),
    Field(
        json_schema_extra={"format": "uuid"},
        description="The reversal's UUID, chosen by the publisher: its identity and idempotency key",
        examples=["3f1c2b7a-9d4e-4f5a-8b6c-7d8e9f0a1b2c"],
    ),
]
MotivoReverso = Literal[
    "duplicado", "monto_incorrecto", "cuenta_incorrecta", "fraude", "solicitud_del_afiliado", "compensacion"
]  # pagos_worker.domain.reverso.MotivoReverso's values (a test keeps them equal)
CodigoReversoFallido = Literal[
    "saldo_insuficiente", "excede_lo_pagado", "pago_no_exitoso", "monto_invalido", "rechazado_por_la_pasarela"
]  # pagos_worker.domain.reverso.CodigoReversoFallido's values (a test keeps them equal)
Descripcion = Annotated[
    str,
    StringConstraints(min_length=1, max_length=LONGITUD_MAXIMA_DESCRIPCION, pattern=PATRON_AFILIADO),
    Field(description="Free text for people, 1 to 200 characters, no control characters"),
]
IdEvento = Annotated[
    str,
    StringConstraints(pattern=PATRON_UUID),
    Field(
        json_schema_extra={"format": "uuid"},
        description="Unique per event: consumers de-duplicate by it",
        examples=["7d4f6c0e-1a52-4c8e-9b1f-2f0a3c5d6e7f"],
    ),
]
IdAfiliado = Annotated[
    str,
    StringConstraints(min_length=1, max_length=LONGITUD_MAXIMA_AFILIADO, pattern=PATRON_AFILIADO),
    Field(description="Who is paid: 1 to 128 characters, no control characters", examples=["afiliado_123"]),
]
MontoComando = Annotated[
    Decimal | int | Annotated[str, StringConstraints(pattern=PATRON_MONTO_TEXTO)],
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": PATRON_MONTO_TEXTO, "examples": ["100.50"]},
                {"type": "number", "examples": [100.5]},
            ],
        }
    ),
    Field(
        description=(
            "The amount, as a decimal string or a JSON number, read exactly (never through a float): "
            "above zero, at most 2 decimals, at most 1000000.00 USD or EUR and 4000000000.00 COP"
        )
    ),
]
MontoEvento = Annotated[
    str,
    StringConstraints(pattern=PATRON_MONTO_EVENTO),
    Field(description="The amount as a decimal string with the currency's 2 decimals", examples=["100.50"]),
]
Timestamp = Annotated[
    str,
    StringConstraints(pattern=PATRON_TIMESTAMP),
    Field(
        json_schema_extra={"format": "date-time"},
        description="When it happened: ISO-8601 UTC with milliseconds and a Z",
        examples=["2026-11-28T10:00:05.123Z"],
    ),
]
Traceparent = Annotated[
    str,
    StringConstraints(pattern=PATRON_TRACEPARENT),
    Field(
        description=(
            "W3C Trace Context (https://www.w3.org/TR/trace-context/): version-trace_id-parent_id-flags, lowercase hex"
        ),
        examples=["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
    ),
]
Tracestate = Annotated[
    str,
    StringConstraints(max_length=LONGITUD_MAXIMA_TRACESTATE),
    Field(
        description="W3C Trace Context's vendor list (key=value, comma-separated), with a traceparent only",
        examples=["congo=t61rcWkgMzE"],
    ),
]
