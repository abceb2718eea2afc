"""The answers of the operators' HTTP API as pydantic models: the OpenAPI document's schemas are
generated from them (`entrypoints.openapi`), and the tests hold the API's answers to them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from pagos_worker.contract.campos import CodigoReversoFallido, IdAfiliado, IdPago, IdReverso, Moneda, MotivoReverso

# The domain's values (pagos_worker.domain's EstadoPago and EstadoReverso; the application's
# CausaAtencion but `venenoso`, a command's): tests keep them equal.
EstadoPago = Literal["PENDIENTE", "PROCESANDO", "EXITOSO", "FALLIDO", "REVERSADO"]
EstadoReverso = Literal["PENDIENTE", "PROCESANDO", "EXITOSO", "FALLIDO", "ANULADO"]
CausaAtencionReverso = Literal["marcado", "antiguo", "saldo_insuficiente"]
Monto = Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]{2}$"), Field(examples=["100.50"])]
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


ClaseDiferencia = Literal[
    "exitoso_sin_transferencia", "transferencia_sin_exito", "transferencias_multiples", "importe_distinto",
    "destino_distinto", "reverso_externo", "reverso_sin_registro", "reverso_faltante",
]  # fmt: skip  # pagos_worker.domain.conciliacion's, but `coincide` (never recorded): tests keep them equal


class Diferencia(_Respuesta):
    """A difference a reconciliation (`pagos-worker conciliar`, or the scheduled pass) recorded between
    the service's books and Stripe's, listed until an operator resolves it. It never changed a payment
    or moved money on its own."""

    id: int = Field(ge=1, description="Its id: `pagos-worker conciliacion resolver ID` closes it")
    conciliacion: int = Field(ge=1, description="The run that found it")
    clase: ClaseDiferencia
    critica: bool = Field(
        description="Money moved that the service did not report, or reported money that did not move "
        "(exitoso_sin_transferencia, transferencia_sin_exito, transferencias_multiples)"
    )
    id_pago: IdPago | None = Field(description="The payment, when the difference is one's (a transfer_group of ours)")
    id_reverso: IdReverso | None = Field(description="The reversal, when the difference is one's")
    referencia: str | None = Field(description="Stripe's id of the transfer or reversal (`tr_…`, `trr_…`), if any")
    creada: FechaHora = Field(description="When the run recorded it")
    servicio: dict[str, Any] = Field(
        description="The service's side as the run saw it (the payment or reversal; `{}`: none)"
    )
    pasarela: dict[str, Any] = Field(
        description="Stripe's side as the run saw it (the transfer or reversal, amounts in minor units; `{}`: none)"
    )


class Reverso(_Respuesta):
    """A reversal of the payment (`ReversarPago`): taking (part of) its payout back."""

    id_reverso: IdReverso
    monto: Monto | None = Field(description="What it takes back, fixed when a worker claims it (null until then)")
    moneda: Moneda | None = Field(description="The payment's, fixed with `monto`")
    monto_pedido: Monto | None = Field(description="As asked for; null: everything not yet reversed")
    estado: EstadoReverso = Field(
        description="PENDIENTE (waiting for its payment to be final, or for another reversal of it), PROCESANDO, "
        "EXITOSO (the money came back), FALLIDO, ANULADO (nothing was paid: nothing to take back)"
    )
    referencia_reverso: str | None = Field(description="The gateway's reference (a Stripe `trr_…`)")
    motivo: MotivoReverso
    descripcion: str | None
    codigo: CodigoReversoFallido | None = Field(description="Why it failed (FALLIDO only)")
    mensaje_error: str | None = Field(description="Why it failed, for people")
    operador: str | None = Field(description="Who asked for it by hand (`pagos-worker pagos reversar`), if anyone")
    fecha_creacion: FechaHora
    fecha_procesamiento: FechaHora | None = Field(description="When it reached its final state")
    requiere_atencion: bool = Field(
        description="An operator should look: refused for the affiliate's balance (`saldo_insuficiente`: the money "
        "is still out), or its outcome unknown for too long"
    )
    ultimo_error: str | None = Field(description="The last indeterminate answer from the gateway")


class ReversoQueRequiereAtencion(Reverso):
    """A reversal an operator must look at, with its payment and why."""

    id_pago: IdPago
    causa: CausaAtencionReverso = Field(
        description="`saldo_insuficiente`: the affiliate's balance could not cover it; `marcado`: its outcome stayed "
        "unknown too often or too long (retries stopped); `antiguo`: still PROCESANDO past the attention age"
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
    monto_reversado: Monto = Field(description="What came back of it so far; all of it makes it REVERSADO")
    reversos: list[Reverso] = Field(description="Its reversals, newest first")
    diferencias: list[Diferencia] = Field(
        description="What reconciliations found wrong with it that no operator has resolved yet, oldest first"
    )


class PagosQueRequierenAtencion(_Respuesta):
    """Payments whose outcome is unknown (flagged, or PROCESANDO past the attention age), oldest first;
    commands dead-lettered as poison, newest first; reversals that need attention, oldest first; the
    reconciliation's differences no operator has resolved yet, oldest first."""

    pagos: list[Pago]
    comandos_venenosos: list[ComandoVenenoso]
    reversos: list[ReversoQueRequiereAtencion] = Field(
        description="Reversals refused for the affiliate's balance, or whose outcome is unknown for too long (their "
        "payments are listed in `pagos` only if they need attention themselves)"
    )
    diferencias: list[Diferencia] = Field(
        description="Differences between the service's books and Stripe's that reconciliations recorded and no "
        "operator has resolved yet (`pagos-worker conciliacion resolver`, or `pagos resolver` for the payment)"
    )
    limite: int = Field(ge=1, description="At most this many are listed in each list")


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
    """404 for a payment never stored; with its command when that was dead-lettered as poison, and
    the reversal that annulled it when one came before it (it fails unpaid when it comes)."""

    comando_venenoso: ComandoVenenoso | None = None
    anulado_por: IdReverso | None = Field(
        None, description="The reversal that annulled it before its ProcesarPago came: when that comes, it is FALLIDO"
    )


class Salud(_Respuesta):
    """The process is alive."""

    status: Literal["ok"]


class Preparacion(_Respuesta):
    """Whether PostgreSQL and the broker answer; each check is `ok` or what went wrong."""

    status: Literal["ok", "no_disponible"]
    checks: dict[str, str] = Field(examples=[{"postgres": "ok", "pulsar": "ok"}])
