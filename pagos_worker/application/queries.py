"""Queries (the read side of CQS) and their read-model port."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from pagos_worker.application.ports.operador import Resolucion


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


@dataclass(frozen=True, slots=True)
class FiltroAtencion:
    """`creado_antes`: only what is older than that (for poison commands, their first failure)."""

    creado_antes: datetime | None = None
    causa: CausaAtencion | None = None


@dataclass(frozen=True, slots=True)
class Atencion:
    """What operators must look at: payments whose outcome is unknown for too long, and commands
    dead-lettered as poison."""

    pagos: list[VistaPago]
    comandos_venenosos: list[VistaComandoVenenoso]


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
        """How many payments need attention (a cheap count, for a gauge)."""
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
    payment could be stored."""

    def __init__(self, mensaje: str, comando_venenoso: VistaComandoVenenoso | None = None) -> None:
        super().__init__(mensaje)
        self.comando_venenoso = comando_venenoso


class ObtenerEstadoPagoHandler:
    def __init__(self, views: PagoViews) -> None:
        self._views = views

    async def __call__(self, query: ObtenerEstadoPago) -> VistaPago:
        vista = await self._views.estado_pago(query.id_pago)
        if vista is None:
            venenoso = await self._views.comando_venenoso(query.id_pago)
            raise PagoNoEncontradoError(f"no existe el pago {query.id_pago}", venenoso)
        return vista


class ListarPagosQueRequierenAtencionHandler:
    def __init__(self, views: PagoViews) -> None:
        self._views = views

    async def __call__(self, limite: int = 100, filtro: FiltroAtencion | None = None) -> Atencion:
        if filtro is None:
            return Atencion(await self._views.requieren_atencion(limite), await self._views.comandos_venenosos(limite))
        pagos: list[VistaPago] = []
        if filtro.causa is not CausaAtencion.VENENOSO:
            pagos = await self._views.requieren_atencion(limite, filtro)
        venenosos: list[VistaComandoVenenoso] = []
        if filtro.causa in (None, CausaAtencion.VENENOSO):
            antes = filtro.creado_antes
            venenosos = [
                v for v in await self._views.comandos_venenosos(limite) if antes is None or v.primer_fallo < antes
            ]
        return Atencion(pagos, venenosos)


class ObtenerEstadisticasOutboxHandler:
    def __init__(self, views: PagoViews) -> None:
        self._views = views

    async def __call__(self) -> EstadisticasOutbox:
        return await self._views.estadisticas_outbox()
