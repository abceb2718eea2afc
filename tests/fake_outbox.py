"""A fake `OutboxStore` that keeps the PostgreSQL store's rules, checked by the outbox contract suite
(tests/integration/test_outbox_contract.py)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta

from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.clock import utcnow


@dataclasses.dataclass
class _Fila:
    """An outbox row: the event, who publishes it itself (if anyone), when it was committed and
    published."""

    evento: OutboxEvent
    publicador: str | None
    creado_en: datetime
    publicado_en: datetime | None = None


class _FakeOutboxBatch:
    def __init__(self, eventos: list[OutboxEvent]) -> None:
        self._eventos = eventos
        self.cuando: datetime | None = None

    @property
    def eventos(self) -> Sequence[OutboxEvent]:
        return self._eventos

    async def marcar_publicados(self, cuando: datetime) -> None:
        self.cuando = cuando  # written when the lot ends cleanly, as a transaction would


class FakeOutboxStore:
    """The outbox in memory: lots oldest first that no two share, marks that take effect only when
    their lot ends cleanly, events left to the process that publishes them itself for the grace
    period, and a wake-up for every commit of the others."""

    def __init__(self, eventos: Sequence[OutboxEvent] = (), *, reloj: Callable[[], datetime] = utcnow) -> None:
        self._filas: dict[int, _Fila] = {}
        self._reservados: set[int] = set()
        self._nuevos = asyncio.Event()
        self._reloj = reloj
        self.fallos_al_marcar = 0  # the next marks outside a lot that fail (the database away)
        self.agregar(eventos)

    def agregar(self, eventos: Sequence[OutboxEvent], *, publicador: str | None = None) -> None:
        """Events committed, at their `creado_en` (now if None), by `publicador` if the committing
        process publishes them itself. As in PostgreSQL, only the others wake the relays."""
        for evento in eventos:
            if evento.id in self._filas:
                raise ValueError(f"evento {evento.id} ya está en el outbox")
            self._filas[evento.id] = _Fila(evento, publicador, evento.creado_en or self._reloj())
        if eventos and publicador is None:
            self._nuevos.set()

    @property
    def pendientes(self) -> list[OutboxEvent]:
        return [f.evento for f in self._ordenadas() if f.publicado_en is None]

    @property
    def publicados(self) -> list[OutboxEvent]:
        return [f.evento for f in self._ordenadas() if f.publicado_en is not None]

    def marcas(self) -> dict[int, datetime | None]:
        """Every stored event's id and when it was published (None: pending)."""
        return {f.evento.id: f.publicado_en for f in self._ordenadas()}

    def _ordenadas(self) -> list[_Fila]:
        return [self._filas[i] for i in sorted(self._filas)]

    @contextlib.asynccontextmanager
    async def reservar_pendientes(
        self, limite: int, *, gracia: timedelta = timedelta(0), propio: str | None = None
    ) -> AsyncIterator[_FakeOutboxBatch]:
        creados_antes_de = self._reloj() - gracia
        filas = [
            f
            for f in self._ordenadas()
            if f.publicado_en is None
            and f.evento.id not in self._reservados
            and (f.publicador is None or f.publicador == propio or f.creado_en < creados_antes_de)
        ][:limite]
        ids = {f.evento.id for f in filas}
        self._reservados |= ids
        lote = _FakeOutboxBatch([f.evento for f in filas])
        try:
            yield lote
        finally:
            self._reservados -= ids
        if lote.cuando is not None:
            self._marcar(ids, lote.cuando)

    async def marcar_publicados(self, eventos: Sequence[OutboxEvent], cuando: datetime) -> None:
        if self.fallos_al_marcar:
            self.fallos_al_marcar -= 1
            raise ConnectionError("database unavailable")
        self._marcar({e.id for e in eventos}, cuando)

    def _marcar(self, ids: set[int], cuando: datetime) -> None:
        for i in ids:
            fila = self._filas.get(i)
            if fila is not None and fila.publicado_en is None:  # a mark never moves an earlier one
                fila.publicado_en = cuando

    async def esperar_nuevos(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._nuevos.wait(), timeout)
        self._nuevos.clear()

    async def borrar_publicados(self, antes_de: datetime, limite: int) -> int:
        viejas = sorted(
            (f for f in self._filas.values() if f.publicado_en is not None and f.publicado_en < antes_de),
            key=lambda f: f.publicado_en or antes_de,
        )[:limite]
        for fila in viejas:
            del self._filas[fila.evento.id]
        return len(viejas)
