"""The messages of the contract as pydantic models: the `ProcesarPago` command, the `PagoExitoso` and
`PagoFallido` events, and the properties of events and dead letters. They are the contract's single
description: `wire.decode_command` validates commands with `ComandoProcesarPago`, and the JSON
Schemas and the AsyncAPI document are generated from them (`pagos-dev contract`).

Fields are the wire's own text (a UUID as its string, an amount as its decimal string): what a
consumer in any language sees. The rules that need arithmetic (an amount above zero, at most two
decimals, under the currency's maximum) are the domain's (`Dinero`); the schemas state them in words.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, WithJsonSchema

LONGITUD_MAXIMA_AFILIADO = 128
LONGITUD_MAXIMA_DETALLE = 1000

PATRON_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
PATRON_AFILIADO = r"^[^\x00-\x1f\x7f]+$"
PATRON_MONTO_TEXTO = r"^-?[0-9]{1,30}(\.[0-9]{1,30})?$"
PATRON_MONTO_EVENTO = r"^[0-9]{1,10}\.[0-9]{2}$"
PATRON_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"

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
]
Motivo = Literal[MotivoRechazo, "conflicto_con_pago_existente", "error_repetido"]
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


# The examples in the schemas and in the AsyncAPI document (a test validates them against both).
_PAGO_EJEMPLO: dict[str, JsonValue] = {
    "id_pago": "550e8400-e29b-41d4-a716-446655440000",
    "id_afiliado": "afiliado_123",
    "monto": "100.50",
    "moneda": "USD",
}
EJEMPLO_COMANDO: dict[str, JsonValue] = dict(_PAGO_EJEMPLO)
EJEMPLO_EXITOSO: dict[str, JsonValue] = {
    "event_type": "PagoExitoso",
    "event_id": "7d4f6c0e-1a52-4c8e-9b1f-2f0a3c5d6e7f",
    "timestamp": "2026-11-28T10:00:05.123Z",
    "data": {**_PAGO_EJEMPLO, "referencia_pago": "tr_1Q2w3E"},
}
EJEMPLO_FALLIDO: dict[str, JsonValue] = {
    "event_type": "PagoFallido",
    "event_id": "0b8e2a44-5f1d-4c3a-8e6b-9d7c1a2b3c4d",
    "timestamp": "2026-11-28T10:00:05.123Z",
    "data": {**_PAGO_EJEMPLO, "referencia_pago": None, "mensaje_error": "Fondos insuficientes"},
}
EJEMPLO_DLQ: dict[str, JsonValue] = {
    "motivo": "monto_no_positivo",
    "detalle": "el monto debe ser mayor que cero: 0",
    "topic_origen": "persistent://public/default/pagos-comandos",
    "message_id_origen": "(12,3,-1,0)",
}


class _Estricto(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ComandoProcesarPago(_Estricto):
    """Pay `monto` `moneda` out to `id_afiliado`, once per `id_pago`. A UTF-8 JSON object of at most
    16 KiB with exactly these four fields, no key repeated, no NaN or Infinity."""

    model_config = ConfigDict(title="ProcesarPago", json_schema_extra={"examples": [EJEMPLO_COMANDO]})

    id_pago: IdPago
    id_afiliado: IdAfiliado
    monto: MontoComando
    moneda: Annotated[Moneda, Field(description="The currency (ISO 4217)")]


class DatosPagoExitoso(_Estricto):
    """The payment that was paid."""

    id_pago: IdPago
    id_afiliado: IdAfiliado
    monto: MontoEvento
    moneda: Moneda
    referencia_pago: str = Field(description="The gateway's reference of the payout (a Stripe transfer id)")


class DatosPagoFallido(_Estricto):
    """The payment that the gateway refused for good."""

    id_pago: IdPago
    id_afiliado: IdAfiliado
    monto: MontoEvento
    moneda: Moneda
    referencia_pago: str | None = Field(description="The gateway's reference, when it gave one")
    mensaje_error: str = Field(description="Why, in Spanish, for people")


class EventoPagoExitoso(_Estricto):
    """The affiliate was paid. Exactly one event per payment (`PagoExitoso` or `PagoFallido`)."""

    model_config = ConfigDict(title="PagoExitoso", json_schema_extra={"examples": [EJEMPLO_EXITOSO]})

    event_type: Literal["PagoExitoso"]
    event_id: IdEvento
    timestamp: Timestamp
    data: DatosPagoExitoso


class EventoPagoFallido(_Estricto):
    """The gateway refused the payment for good: nothing was paid."""

    model_config = ConfigDict(title="PagoFallido", json_schema_extra={"examples": [EJEMPLO_FALLIDO]})

    event_type: Literal["PagoFallido"]
    event_id: IdEvento
    timestamp: Timestamp
    data: DatosPagoFallido


class PropiedadesEvento(_Estricto):
    """The message properties of every event: its type and id, without reading the payload."""

    model_config = ConfigDict(title="PropiedadesEvento")

    event_type: Literal["PagoExitoso", "PagoFallido"] = Field(description="The payload's `event_type`")
    event_id: IdEvento


class PropiedadesDLQ(BaseModel):
    """The message properties of a dead letter: the refused command's own properties, as they came,
    plus why it was refused and where it came from."""

    model_config = ConfigDict(
        title="PropiedadesDLQ",
        extra="allow",
        strict=True,
        frozen=True,
        json_schema_extra={
            "additionalProperties": {"type": "string"},
            "examples": [EJEMPLO_DLQ],
        },
    )

    __pydantic_extra__: dict[str, str] = Field(init=False)  # the command's own properties

    motivo: Motivo = Field(description="Why it was refused: a stable code")
    detalle: str = Field(max_length=LONGITUD_MAXIMA_DETALLE, description="What is wrong, for people")
    topic_origen: str = Field(description="The topic the command came from")
    message_id_origen: str = Field(description="The command's message id there")
