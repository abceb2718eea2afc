"""Queries (the read side of CQS) and their read-model port."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True, slots=True)
class VistaPago:
    """What an operator sees of a payment."""

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

    async def requieren_atencion(self, limite: int) -> list[VistaPago]:
        """Payments whose outcome is unknown for too long, oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class ObtenerEstadoPago:
    id_pago: UUID


class PagoNoEncontradoError(LookupError):
    """No payment with that id."""


class ObtenerEstadoPagoHandler:
    def __init__(self, views: PagoViews) -> None:
        self._views = views

    async def __call__(self, query: ObtenerEstadoPago) -> VistaPago:
        vista = await self._views.estado_pago(query.id_pago)
        if vista is None:
            raise PagoNoEncontradoError(f"no existe el pago {query.id_pago}")
        return vista


class ListarPagosQueRequierenAtencionHandler:
    def __init__(self, views: PagoViews) -> None:
        self._views = views

    async def __call__(self, limite: int = 100) -> list[VistaPago]:
        return await self._views.requieren_atencion(limite)


class ObtenerEstadisticasOutboxHandler:
    def __init__(self, views: PagoViews) -> None:
        self._views = views

    async def __call__(self) -> EstadisticasOutbox:
        return await self._views.estadisticas_outbox()
