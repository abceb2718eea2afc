"""The answers of the operators' HTTP API as pydantic models: the OpenAPI document's schemas are
generated from them (`entrypoints.openapi`), and the tests hold the API's answers to them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from pagos_worker.contract.campos import IdAfiliado, IdPago, Moneda

EstadoPago = Literal["PENDIENTE", "PROCESANDO", "EXITOSO", "FALLIDO"]  # pagos_worker.domain.EstadoPago's values
FechaHora = Annotated[str, Field(json_schema_extra={"format": "date-time"}, examples=["2026-11-28T10:00:05.123Z"])]


class _Respuesta(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ComandoVenenoso(_Respuesta):
    """A command dead-lettered as poison (`error_repetido`) after failing for reasons of its own."""

    id_pago: IdPago | None = Field(description="When the command could be read far enough to say")
    message_id: str = Field(description="The command's message id on the commands topic")
    motivo: Literal["error_repetido"]
    fallos: int = Field(ge=1, description="Deliveries that failed for a reason of the command's own")
    ultimo_error: str | None
    primer_fallo: FechaHora
    en_dlq_desde: FechaHora


class TransferenciaPasarela(_Respuesta):
    """A payout the gateway showed for the payment when an operator resolved it."""

    referencia: str = Field(description="The gateway's reference (a Stripe transfer id)")
    monto: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]{2}$")] | None = Field(
        description="Its amount, as the gateway gave it"
    )
    moneda: str | None = Field(description="Its currency, as the gateway gave it")
    fecha_creacion: FechaHora | None = Field(description="When the gateway made it")
    destino: str | None = Field(description="The connected account it went to")


class Resolucion(_Respuesta):
    """A payment settled by hand (`pagos-worker pagos resolver`): who, when, why, and what the
    gateway showed; its event went out through the outbox like any other."""

    operador: str = Field(description="Who resolved it")
    fecha: FechaHora
    motivo: str = Field(description="Why, in the operator's words")
    estado: Literal["EXITOSO", "FALLIDO"]
    transferencias: list[TransferenciaPasarela] = Field(
        description="What the gateway held for the payment (transfer_group = id_pago): one for EXITOSO, none "
        "for FALLIDO"
    )


class Pago(_Respuesta):
    """A payment as operators see it."""

    id: IdPago
    id_afiliado: IdAfiliado
    monto: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]{2}$"), Field(examples=["100.50"])]
    moneda: Moneda
    estado: EstadoPago
    referencia_pago: str | None = Field(description="The gateway's reference, once it gave one")
    fecha_creacion: FechaHora
    fecha_procesamiento: FechaHora | None = Field(description="When it reached EXITOSO or FALLIDO")
    mensaje_error: str | None = Field(description="Why it failed (FALLIDO only)")
    intentos: int = Field(ge=0, description="Calls to the gateway so far")
    requiere_atencion: bool = Field(description="Its outcome has been unknown for too long: an operator should look")
    ultimo_error: str | None = Field(description="The last indeterminate answer from the gateway")
    comando_venenoso: ComandoVenenoso | None = Field(description="Its command, if it was dead-lettered as poison")
    resolucion: Resolucion | None = Field(description="How an operator settled it by hand, if one did")


class PagosQueRequierenAtencion(_Respuesta):
    """Payments whose outcome is unknown (flagged, or PROCESANDO past the attention age), oldest first;
    commands dead-lettered as poison, newest first."""

    pagos: list[Pago]
    comandos_venenosos: list[ComandoVenenoso]
    limite: int = Field(ge=1, description="At most this many are listed")


class EstadisticasOutbox(_Respuesta):
    """The outbox's counters: events committed, published, and waiting to be published."""

    total_eventos: int = Field(ge=0)
    eventos_procesados: int = Field(ge=0)
    eventos_pendientes: int = Field(ge=0)
    antiguedad_pendiente_mas_antiguo_s: float | None = Field(ge=0, description="Seconds; null when none waits")


class Error(_Respuesta):
    """Every error: a stable code and a message for people. Never a stack trace."""

    error: str = Field(examples=["pago_no_encontrado"])
    mensaje: str


class PagoNoEncontrado(Error):  # noqa: N818 - a response body, not an exception
    """404 for a payment never stored; with its command when that was dead-lettered as poison."""

    comando_venenoso: ComandoVenenoso | None = None


class Salud(_Respuesta):
    """The process is alive."""

    status: Literal["ok"]


class Preparacion(_Respuesta):
    """Whether PostgreSQL and the broker answer; each check is `ok` or what went wrong."""

    status: Literal["ok", "no_disponible"]
    checks: dict[str, str] = Field(examples=[{"postgres": "ok", "pulsar": "ok"}])
