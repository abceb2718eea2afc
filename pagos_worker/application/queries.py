"""Queries (the read side of CQS) and their read-model port."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from pagos_worker.application.ports.operador import Resolucion
from pagos_worker.domain.reverso import CodigoReversoFallido


@dataclass(frozen=True, slots=True)
class VistaComandoVenenoso:
    """A command dead-lettered after failing again and again for a reason of its own (not an
    outage): the operators' record of it, kept where its payment is looked up."""

    message_id: str
    id_pago: UUID | None
    fallos: int
    ultimo_error: str
    primer_fallo: datetime
    venenoso_desde: datetime


@dataclass(frozen=True, slots=True)
class VistaDiferencia:
    """A difference a reconciliation recorded between the service's books and Stripe's, as an
    operator sees it until one resolves it: `clase` (`ClaseDiferencia`), the run that found it
    (`conciliacion`), and both sides' evidence as the run recorded it (JSON objects)."""

    id: int
    conciliacion: int
    clase: str
    id_pago: UUID | None
    id_reverso: UUID | None
    referencia: str | None
    servicio: Mapping[str, Any]
    pasarela: Mapping[str, Any]
    creada: datetime
    resuelta_en: datetime | None = None
    resuelta_por: str | None = None
    nota: str | None = None


@dataclass(frozen=True, slots=True)
class VistaReverso:
    """What an operator sees of a reversal. `monto` and `moneda` once it is claimed (fixed in its
    payment's currency); `monto_pedido` None: everything not yet reversed. `requiere_atencion`:
    flagged (refused for the affiliate's balance, or its outcome unknown too often), or still
    PROCESANDO past the attention age."""

    id_reverso: UUID
    id_pago: UUID
    monto_pedido: Decimal | None
    motivo: str
    estado: str
    fecha_creacion: datetime
    monto: Decimal | None = None
    moneda: str | None = None
    descripcion: str | None = None
    operador: str | None = None
    referencia_reverso: str | None = None
    codigo: str | None = None
    mensaje_error: str | None = None
    fecha_procesamiento: datetime | None = None
    requiere_atencion: bool = False
    ultimo_error: str | None = None
    marcado: bool = False  # flagged by the worker (not only old)

    @property
    def en_curso(self) -> bool:
        """Not decided yet: what it asks for may still be taken from its payment."""
        return self.estado in {"PENDIENTE", "PROCESANDO"}

    @property
    def causa(self) -> CausaAtencion | None:
        """Why it is on the attention list, if it is."""
        if not self.requiere_atencion:
            return None
        if self.codigo == CodigoReversoFallido.SALDO_INSUFICIENTE.value:
            return CausaAtencion.SALDO_INSUFICIENTE
        return CausaAtencion.MARCADO if self.marcado else CausaAtencion.ANTIGUO


@dataclass(frozen=True, slots=True)
class VistaPago:
    """What an operator sees of a payment. `requiere_atencion`: flagged by the worker (its outcome
    unknown too often), or still PROCESANDO past the attention age, whatever kept it there."""

    id: UUID
    id_afiliado: str
    monto: Decimal
    moneda: str
    estado: str
    referencia_pago: str | None
    fecha_creacion: datetime
    fecha_procesamiento: datetime | None
    mensaje_error: str | None
    intentos: int
    requiere_atencion: bool = False
    ultimo_error: str | None = None
    comando_venenoso: VistaComandoVenenoso | None = None
    resolucion: Resolucion | None = None  # settled by an operator: who, when, why, what the gateway showed
    marcado: bool = False  # flagged by the worker (not only old): only an operator resumes it
    monto_reversado: Decimal = Decimal("0.00")  # what came back of it so far
    reversos: tuple[VistaReverso, ...] = ()  # newest first
    diferencias: tuple[VistaDiferencia, ...] = ()  # unresolved ones a reconciliation found, oldest first

    @property
    def causa(self) -> CausaAtencion | None:
        """Why it is on the attention list, if it is."""
        if not self.requiere_atencion:
            return None
        return CausaAtencion.MARCADO if self.marcado else CausaAtencion.ANTIGUO


class CausaAtencion(StrEnum):
    MARCADO = "marcado"  # its outcome stayed unknown too often or too long: retries stopped
    ANTIGUO = "antiguo"  # still PROCESANDO past the attention age, still retried
    VENENOSO = "venenoso"  # a command dead-lettered as poison (error_repetido)
    SALDO_INSUFICIENTE = "saldo_insuficiente"  # a reversal the affiliate's balance could not cover


@dataclass(frozen=True, slots=True)
class FiltroAtencion:
    """`creado_antes`: only what is older than that (for poison commands, their first failure)."""

    creado_antes: datetime | None = None
    causa: CausaAtencion | None = None


@dataclass(frozen=True, slots=True)
class Atencion:
    """What operators must look at: payments whose outcome is unknown for too long, commands
    dead-lettered as poison, reversals that need attention (see `VistaReverso`), and the
    differences reconciliations found that no operator has resolved yet."""

    pagos: list[VistaPago]
    comandos_venenosos: list[VistaComandoVenenoso]
    reversos: list[VistaReverso] = field(default_factory=list)
    diferencias: list[VistaDiferencia] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EstadisticasOutbox:
    total_eventos: int
    eventos_procesados: int
    eventos_pendientes: int
    antiguedad_pendiente_mas_antiguo_s: float | None


class PagoViews(Protocol):
    """Read models, served straight from storage (no aggregates on the read side)."""

    async def estado_pago(self, id_pago: UUID) -> VistaPago | None: ...

    async def estadisticas_outbox(self) -> EstadisticasOutbox: ...

    async def requieren_atencion(self, limite: int, filtro: FiltroAtencion | None = None) -> list[VistaPago]:
        """Payments that need attention (see `VistaPago.requiere_atencion`), oldest first; with
        `filtro`, only those created before `creado_antes` and of that cause (marcado, antiguo)."""
        ...

    async def contar_requieren_atencion(self) -> int:
        """How many payments, reversals and unresolved differences need attention (a cheap count,
        for a gauge)."""
        ...

    async def diferencias_sin_resolver(
        self, limite: int, creadas_antes: datetime | None = None
    ) -> list[VistaDiferencia]:
        """Differences no operator has resolved yet, oldest first; with `creadas_antes`, only
        those recorded before it."""
        ...

    async def reversos_requieren_atencion(
        self, limite: int, filtro: FiltroAtencion | None = None
    ) -> list[VistaReverso]:
        """Reversals that need attention (see `VistaReverso.requiere_atencion`), oldest first; with
        `filtro`, only those created before `creado_antes` and of that cause."""
        ...

    async def reverso(self, id_reverso: UUID) -> VistaReverso | None: ...

    async def anulado_por(self, id_pago: UUID) -> UUID | None:
        """The reversal that annulled this payment before its command came (its row holds no
        terms yet: it is no payment), if one did."""
        ...

    async def comandos_venenosos(self, limite: int) -> list[VistaComandoVenenoso]:
        """Commands recorded as poison, newest first."""
        ...

    async def comando_venenoso(self, id_pago: UUID) -> VistaComandoVenenoso | None:
        """The latest poison command for that payment, if any."""
        ...


@dataclass(frozen=True, slots=True)
class ObtenerEstadoPago:
    id_pago: UUID


class PagoNoEncontradoError(LookupError):
    """No payment with that id. `comando_venenoso`: its command was dead-lettered before the
    payment could be stored; `anulado_por`: a reversal that came first annulled it."""

    def __init__(
        self, mensaje: str, comando_venenoso: VistaComandoVenenoso | None = None, anulado_por: UUID | None = None
    ) -> None:
        super().__init__(mensaje)
        self.comando_venenoso = comando_venenoso
        self.anulado_por = anulado_por


async def pago_no_encontrado(views: PagoViews, id_pago: UUID) -> PagoNoEncontradoError:
    """Why there is no payment `id_pago`, as far as the store can say."""
    if (anulador := await views.anulado_por(id_pago)) is not None:
        mensaje = (
            f"el pago {id_pago} no ha llegado y ya lo anuló el reverso {anulador}: cuando llegue su "
            "ProcesarPago, quedará FALLIDO sin pagarse"
        )
    else:
        mensaje = f"no existe el pago {id_pago}"
    return PagoNoEncontradoError(mensaje, await views.comando_venenoso(id_pago), anulador)


class ObtenerEstadoPagoHandler:
    def __init__(self, views: PagoViews) -> None:
        self._views = views

    async def __call__(self, query: ObtenerEstadoPago) -> VistaPago:
        vista = await self._views.estado_pago(query.id_pago)
        if vista is None:
            raise await pago_no_encontrado(self._views, query.id_pago)
        return vista


class ListarPagosQueRequierenAtencionHandler:
    def __init__(self, views: PagoViews) -> None:
        self._views = views

    async def __call__(self, limite: int = 100, filtro: FiltroAtencion | None = None) -> Atencion:
        """Each list holds at most `limite`."""
        if filtro is None:
            return Atencion(
                await self._views.requieren_atencion(limite),
                await self._views.comandos_venenosos(limite),
                await self._views.reversos_requieren_atencion(limite),
                await self._views.diferencias_sin_resolver(limite),
            )
        pagos: list[VistaPago] = []
        if filtro.causa not in (CausaAtencion.VENENOSO, CausaAtencion.SALDO_INSUFICIENTE):  # no payment's cause
            pagos = await self._views.requieren_atencion(limite, filtro)
        venenosos: list[VistaComandoVenenoso] = []
        if filtro.causa in (None, CausaAtencion.VENENOSO):
            antes = filtro.creado_antes
            venenosos = [
                v for v in await self._views.comandos_venenosos(limite) if antes is None or v.primer_fallo < antes
            ]
        reversos: list[VistaReverso] = []
        if filtro.causa is not CausaAtencion.VENENOSO:
            reversos = await self._views.reversos_requieren_atencion(limite, filtro)
        diferencias: list[VistaDiferencia] = []
        if filtro.causa is None:  # a difference has no cause of those: listed only when none is asked for
            diferencias = await self._views.diferencias_sin_resolver(limite, filtro.creado_antes)
        return Atencion(pagos, venenosos, reversos, diferencias)


class ObtenerEstadisticasOutboxHandler:
    def __init__(self, views: PagoViews) -> None:
        self._views = views

    async def __call__(self) -> EstadisticasOutbox:
        return await self._views.estadisticas_outbox()
