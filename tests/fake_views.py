"""`PagoViews` in memory, read from the fake repository as the PostgreSQL views read the tables."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from pagos_worker.application.queries import (
    CausaAtencion,
    EstadisticasOutbox,
    FiltroAtencion,
    VistaComandoVenenoso,
    VistaPago,
)
from pagos_worker.clock import utcnow
from pagos_worker.domain import EstadoPago, Pago
from tests.fakes import FakePagoRepository


class FakePagoViews:
    """No poison records (the fake failure log keeps no times): those cases say so in the suite."""

    def __init__(self, repo: FakePagoRepository, *, atencion_tras: timedelta = timedelta(hours=1)) -> None:
        self._repo = repo
        self._edad = atencion_tras

    def _necesita(self, pago: Pago, ahora: datetime) -> bool:
        return pago.estado is EstadoPago.PROCESANDO and (
            pago.requiere_atencion or pago.fecha_creacion < ahora - self._edad
        )

    def _vista(self, pago: Pago, ahora: datetime) -> VistaPago:
        return VistaPago(
            id=pago.id_pago,
            id_afiliado=pago.id_afiliado,
            monto=pago.importe.monto,
            moneda=pago.importe.moneda.value,
            estado=pago.estado.value,
            referencia_pago=pago.referencia_pago,
            fecha_creacion=pago.fecha_creacion,
            fecha_procesamiento=pago.fecha_procesamiento,
            mensaje_error=pago.mensaje_error,
            intentos=pago.intentos,
            requiere_atencion=self._necesita(pago, ahora),
            ultimo_error=pago.ultimo_error,
            marcado=pago.requiere_atencion,
        )

    async def estado_pago(self, id_pago: UUID) -> VistaPago | None:
        pago = self._repo.pagos.get(id_pago)
        return None if pago is None else self._vista(pago, utcnow())

    async def estadisticas_outbox(self) -> EstadisticasOutbox:
        total = len(self._repo.outbox)
        antiguedad = None
        if self._repo.outbox:
            antiguedad = max(0.0, (utcnow() - min(e.timestamp for e in self._repo.outbox)).total_seconds())
        return EstadisticasOutbox(total, 0, total, antiguedad)  # the fake publishes nothing

    async def requieren_atencion(self, limite: int, filtro: FiltroAtencion | None = None) -> list[VistaPago]:
        ahora = utcnow()
        filtro = filtro or FiltroAtencion()
        suyos = sorted(
            (
                p
                for p in self._repo.pagos.values()
                if self._necesita(p, ahora)
                and (filtro.creado_antes is None or p.fecha_creacion < filtro.creado_antes)
                and (filtro.causa is None or p.requiere_atencion == (filtro.causa is CausaAtencion.MARCADO))
            ),
            key=lambda p: p.fecha_creacion,
        )
        return [self._vista(p, ahora) for p in suyos[:limite]]

    async def contar_requieren_atencion(self) -> int:
        ahora = utcnow()
        return sum(1 for p in self._repo.pagos.values() if self._necesita(p, ahora))

    async def comandos_venenosos(self, limite: int) -> list[VistaComandoVenenoso]:
        return []

    async def comando_venenoso(self, id_pago: UUID) -> VistaComandoVenenoso | None:
        return None

    async def ping(self) -> None:
        return None
