"""`PagoViews` in memory, read from the fake repository as the PostgreSQL views read the tables;
reversals from `reversos` (the aggregates as the worker stores them) and `anulados` (the rows a
reversal leaves for a payment not known yet), which tests fill."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from pagos_worker.application.queries import (
    CausaAtencion,
    EstadisticasOutbox,
    FiltroAtencion,
    VistaComandoVenenoso,
    VistaDiferencia,
    VistaPago,
    VistaReverso,
)
from pagos_worker.clock import utcnow
from pagos_worker.domain import EstadoPago, Pago
from pagos_worker.domain.reverso import EstadoReverso, Reverso
from tests.fakes import FakePagoRepository


class FakePagoViews:
    """No poison records (the fake failure log keeps no times): those cases say so in the suite."""

    def __init__(self, repo: FakePagoRepository, *, atencion_tras: timedelta = timedelta(hours=1)) -> None:
        self._repo = repo
        self._edad = atencion_tras
        self.reversos: dict[UUID, Reverso] = {}
        self.anulados: dict[UUID, UUID] = {}  # id_pago → the id_reverso that annulled it before it came
        self.diferencias: list[VistaDiferencia] = []  # as a reconciliation recorded them

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
            monto_reversado=pago.monto_reversado,
            reversos=tuple(
                self._vista_reverso(r, ahora)
                for r in sorted(self.reversos.values(), key=lambda r: r.fecha_creacion, reverse=True)
                if r.id_pago == pago.id_pago
            ),
            diferencias=tuple(d for d in self._sin_resolver() if d.id_pago == pago.id_pago),
        )

    def _sin_resolver(self) -> list[VistaDiferencia]:
        return sorted((d for d in self.diferencias if d.resuelta_en is None), key=lambda d: (d.creada, d.id))

    def _necesita_reverso(self, reverso: Reverso, ahora: datetime) -> bool:
        return reverso.requiere_atencion or (
            reverso.estado is EstadoReverso.PROCESANDO
            and reverso.lease is not None
            and reverso.fecha_creacion < ahora - self._edad
        )

    def _vista_reverso(self, r: Reverso, ahora: datetime) -> VistaReverso:
        return VistaReverso(
            id_reverso=r.id_reverso,
            id_pago=r.id_pago,
            monto_pedido=r.monto_pedido,
            motivo=r.motivo.value,
            estado=r.estado.value,
            fecha_creacion=r.fecha_creacion,
            monto=r.importe.monto if r.importe else None,
            moneda=r.importe.moneda.value if r.importe else None,
            descripcion=r.descripcion,
            operador=r.operador,
            referencia_reverso=r.referencia_reverso,
            codigo=r.codigo.value if r.codigo else None,
            mensaje_error=r.mensaje_error,
            fecha_procesamiento=r.fecha_procesamiento,
            requiere_atencion=self._necesita_reverso(r, ahora),
            ultimo_error=r.ultimo_error,
            marcado=r.requiere_atencion,
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
        pagos = sum(1 for p in self._repo.pagos.values() if self._necesita(p, ahora))
        reversos = sum(1 for r in self.reversos.values() if self._necesita_reverso(r, ahora))
        return pagos + reversos + len(self._sin_resolver())

    async def diferencias_sin_resolver(
        self, limite: int, creadas_antes: datetime | None = None
    ) -> list[VistaDiferencia]:
        return [d for d in self._sin_resolver() if creadas_antes is None or d.creada < creadas_antes][:limite]

    async def reversos_requieren_atencion(
        self, limite: int, filtro: FiltroAtencion | None = None
    ) -> list[VistaReverso]:
        ahora = utcnow()
        filtro = filtro or FiltroAtencion()
        vistas = [self._vista_reverso(r, ahora) for r in self.reversos.values() if self._necesita_reverso(r, ahora)]
        suyas = sorted(
            (
                v
                for v in vistas
                if (filtro.creado_antes is None or v.fecha_creacion < filtro.creado_antes)
                and (filtro.causa is None or v.causa is filtro.causa)
            ),
            key=lambda v: v.fecha_creacion,
        )
        return suyas[:limite]

    async def reverso(self, id_reverso: UUID) -> VistaReverso | None:
        reverso = self.reversos.get(id_reverso)
        return None if reverso is None else self._vista_reverso(reverso, utcnow())

    async def anulado_por(self, id_pago: UUID) -> UUID | None:
        return None if id_pago in self._repo.pagos else self.anulados.get(id_pago)

    async def comandos_venenosos(self, limite: int) -> list[VistaComandoVenenoso]:
        return []

    async def comando_venenoso(self, id_pago: UUID) -> VistaComandoVenenoso | None:
        return None

    async def ping(self) -> None:
        return None
