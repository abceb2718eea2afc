"""The messages of the contract as pydantic models: the `ProcesarPago` command, the `PagoExitoso` and
`PagoFallido` events, and the properties of events and dead letters. They are the contract's single
description: `wire.decode_command` validates commands with `ComandoProcesarPago`, and the JSON
Schemas and the AsyncAPI document are generated from them (`pagos-dev contract`).

Fields are the wire's own text (a UUID as its string, an amount as its decimal string): what a
consumer in any language sees. The rules that need arithmetic (an amount above zero, at most two
decimals, under the currency's maximum) are the domain's (`Dinero`); the schemas state them in words.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.json_schema import SkipJsonSchema

from pagos_worker.contract.campos import (
    LONGITUD_MAXIMA_DETALLE,
    CodigoReversoFallido,
    Descripcion,
    IdAfiliado,
    IdEvento,
    IdPago,
    IdReverso,
    Moneda,
    MontoComando,
    MontoEvento,
    Motivo,
    MotivoReverso,
    Timestamp,
    Traceparent,
    Tracestate,
)

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
    # A decline's reference is Stripe's request id; it is null when no request was sent (no destination).
    "data": {**_PAGO_EJEMPLO, "referencia_pago": "req_8Yh2Kq0Zx7", "mensaje_error": "Fondos insuficientes"},
}
_REVERSO_EJEMPLO: dict[str, JsonValue] = {
    "id_reverso": "3f1c2b7a-9d4e-4f5a-8b6c-7d8e9f0a1b2c",
    "id_pago": "550e8400-e29b-41d4-a716-446655440000",
}
EJEMPLO_REVERSAR: dict[str, JsonValue] = {
    **_REVERSO_EJEMPLO,
    "monto": "40.00",
    "motivo": "fraude",
    "descripcion": "venta 8812 anulada por contracargo",
}
EJEMPLO_REVERSADO: dict[str, JsonValue] = {
    "event_type": "PagoReversado",
    "event_id": "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
    "timestamp": "2026-11-29T09:30:00.456Z",
    "data": {
        **_REVERSO_EJEMPLO,
        "monto": "40.00",
        "moneda": "USD",
        "monto_reversado_total": "40.00",
        "referencia_reverso": "trr_1Q3e5T",
        "motivo": "fraude",
    },
}
EJEMPLO_REVERSO_FALLIDO: dict[str, JsonValue] = {
    "event_type": "ReversoFallido",
    "event_id": "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e",
    "timestamp": "2026-11-29T09:30:00.456Z",
    "data": {
        **_REVERSO_EJEMPLO,
        "motivo": "fraude",
        "codigo": "saldo_insuficiente",
        "mensaje_error": "El saldo de la cuenta del afiliado no cubre el reverso",
    },
}
EJEMPLO_ANULADO: dict[str, JsonValue] = {
    "event_type": "PagoAnulado",
    "event_id": "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f",
    "timestamp": "2026-11-29T09:30:00.456Z",
    "data": {**_REVERSO_EJEMPLO, "motivo": "duplicado"},
}
EJEMPLO_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
EJEMPLO_PROPIEDADES_COMANDO: dict[str, JsonValue] = {"traceparent": EJEMPLO_TRACEPARENT}
EJEMPLO_DLQ: dict[str, JsonValue] = {
    "motivo": "monto_no_positivo",
    "detalle": "el monto debe ser mayor que cero: 0",
    "topic_origen": "persistent://public/default/pagos-comandos",
    "message_id_origen": "(12,3,-1,0)",
}


def _sin_default(esquema: dict[str, Any]) -> None:
    """An optional property is absent, never null: its schema has no `default`."""
    esquema.pop("default", None)


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


class ComandoReversarPago(_Estricto):
    """Take a payout back (the saga's compensation), once per `id_reverso`: `monto` of it, or without
    `monto` everything not reversed yet. Sent on the commands topic with the message property
    `tipo_comando` = `ReversarPago` (a message without it is a `ProcesarPago`). A UTF-8 JSON object
    of at most 16 KiB with these fields (`monto` and `descripcion` may be absent, never null)."""

    model_config = ConfigDict(title="ReversarPago", json_schema_extra={"examples": [EJEMPLO_REVERSAR]})

    id_reverso: IdReverso
    id_pago: IdPago
    monto: MontoComando | SkipJsonSchema[None] = Field(
        None, description="How much to reverse; absent: everything not yet reversed", json_schema_extra=_sin_default
    )
    motivo: Annotated[MotivoReverso, Field(description="Why it is reversed")]
    descripcion: Descripcion | SkipJsonSchema[None] = Field(None, json_schema_extra=_sin_default)


class _DatosReverso(_Estricto):
    id_pago: IdPago
    id_reverso: IdReverso
    motivo: MotivoReverso


class DatosPagoReversado(_DatosReverso):
    """The reversal that brought money back."""

    monto: MontoEvento = Field(description="What this reversal brought back")
    moneda: Moneda
    monto_reversado_total: MontoEvento = Field(description="What came back of the payment so far, this included")
    referencia_reverso: str = Field(description="The gateway's reference of the reversal (a Stripe `trr_…`)")


class DatosReversoFallido(_DatosReverso):
    """The reversal that could not be made."""

    codigo: CodigoReversoFallido = Field(
        description=(
            "Why: `saldo_insuficiente` (the affiliate's balance cannot cover it; an operator is told), "
            "`excede_lo_pagado` (more than is left to reverse; no gateway call), `pago_no_exitoso`, "
            "`monto_invalido`, `rechazado_por_la_pasarela`"
        )
    )
    mensaje_error: str = Field(description="Why, in Spanish, for people")


class DatosPagoAnulado(_DatosReverso):
    """The payment that was not, and will not be, paid."""


class EventoPagoReversado(_Estricto):
    """Money came back from the affiliate. Exactly one reversal outcome per `id_reverso`
    (`PagoReversado`, `ReversoFallido` or `PagoAnulado`)."""

    model_config = ConfigDict(title="PagoReversado", json_schema_extra={"examples": [EJEMPLO_REVERSADO]})

    event_type: Literal["PagoReversado"]
    event_id: IdEvento
    timestamp: Timestamp
    data: DatosPagoReversado


class EventoReversoFallido(_Estricto):
    """The reversal could not be made: the money is still with the affiliate."""

    model_config = ConfigDict(title="ReversoFallido", json_schema_extra={"examples": [EJEMPLO_REVERSO_FALLIDO]})

    event_type: Literal["ReversoFallido"]
    event_id: IdEvento
    timestamp: Timestamp
    data: DatosReversoFallido


class EventoPagoAnulado(_Estricto):
    """Nothing was paid, and nothing will be (the payment failed, or is failed without a gateway
    call when it comes): the compensation is complete."""

    model_config = ConfigDict(title="PagoAnulado", json_schema_extra={"examples": [EJEMPLO_ANULADO]})

    event_type: Literal["PagoAnulado"]
    event_id: IdEvento
    timestamp: Timestamp
    data: DatosPagoAnulado


TIPOS_EVENTO = ("PagoExitoso", "PagoFallido", "PagoReversado", "ReversoFallido", "PagoAnulado")
TipoEvento = Literal["PagoExitoso", "PagoFallido", "PagoReversado", "ReversoFallido", "PagoAnulado"]


_TRACESTATE_CON_TRACEPARENT: dict[str, JsonValue] = {"tracestate": ["traceparent"]}
_TRACEPARENT_COMANDO = (
    "W3C Trace Context of the command: its events carry it on. Read as the specification says (a later "
    "version as far as version 00 goes); one that is not valid is ignored: the command is processed without it"
)
_TRACEPARENT_EVENTO = (
    "W3C Trace Context of the event, when its command had one or the service traces: the same trace_id as the "
    "command's, with the parent_id of the command's traceparent, or of the service's publication span when it "
    "exports spans"
)


class PropiedadesComando(BaseModel):
    """The message properties of a command: none is required. `traceparent` and `tracestate` (W3C
    Trace Context) are read; any other travels on with the command only if it is dead-lettered."""

    model_config = ConfigDict(
        title="PropiedadesComando",
        extra="allow",
        strict=True,
        frozen=True,
        regex_engine="python-re",
        json_schema_extra={
            "additionalProperties": {"type": "string"},
            "dependentRequired": _TRACESTATE_CON_TRACEPARENT,
            "examples": [EJEMPLO_PROPIEDADES_COMANDO],
        },
    )

    __pydantic_extra__: dict[str, str] = Field(init=False)  # any other property

    tipo_comando: Literal["ProcesarPago", "ReversarPago"] | SkipJsonSchema[None] = Field(
        None,
        description="Which command the payload is; absent: `ProcesarPago` (its publishers never set it)",
        json_schema_extra=_sin_default,
    )
    operador: str | SkipJsonSchema[None] = Field(
        None,
        description="Who asked for it by hand (`pagos-worker pagos reversar`): recorded with the reversal",
        json_schema_extra=_sin_default,
    )
    traceparent: Traceparent | SkipJsonSchema[None] = Field(
        None, description=_TRACEPARENT_COMANDO, json_schema_extra=_sin_default
    )
    tracestate: Tracestate | SkipJsonSchema[None] = Field(None, json_schema_extra=_sin_default)


class PropiedadesEvento(_Estricto):
    """The message properties of every event: its type and id, without reading the payload, and its
    W3C trace context when there is one."""

    model_config = ConfigDict(
        title="PropiedadesEvento",
        regex_engine="python-re",
        json_schema_extra={"dependentRequired": _TRACESTATE_CON_TRACEPARENT},
    )

    event_type: TipoEvento = Field(description="The payload's `event_type`")
    event_id: IdEvento
    traceparent: Traceparent | SkipJsonSchema[None] = Field(
        None, description=_TRACEPARENT_EVENTO, json_schema_extra=_sin_default
    )
    tracestate: Tracestate | SkipJsonSchema[None] = Field(None, json_schema_extra=_sin_default)


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
