"""The scheduled reconciliation: every interval, the look-back window that ends the settle margin
ago, on whichever replica takes the lock first; the others skip that pass, and so does any replica
whose timer comes round less than an interval after the last completed one began."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Protocol

import structlog

from pagos_worker.application.conciliacion import (
    ConciliacionAlDiaError,
    ConciliacionEnCursoError,
    ResultadoConciliacion,
)

log = structlog.get_logger(__name__)


class Conciliar(Protocol):
    def __call__(
        self, *, origen: str, retroceso: timedelta | None, cada: timedelta | None
    ) -> Awaitable[ResultadoConciliacion]: ...


class ConciliacionProgramada:
    def __init__(
        self,
        conciliar: Conciliar,
        *,
        intervalo: float,
        retroceso: timedelta,
        al_completar: Callable[[ResultadoConciliacion], None] | None = None,
    ) -> None:
        self._conciliar = conciliar
        self._intervalo = intervalo
        self._retroceso = retroceso
        self._al_completar = al_completar

    async def pasada(self) -> ResultadoConciliacion | None:
        """One run; None when another replica (or an operator) holds the lock, or another replica's
        pass completed less than an interval ago (one pass an interval, whatever the replicas)."""
        try:
            r = await self._conciliar(
                origen="programada", retroceso=self._retroceso, cada=timedelta(seconds=self._intervalo)
            )
        except ConciliacionEnCursoError:
            log.info("conciliacion.en_curso_en_otra_replica")
            return None
        except ConciliacionAlDiaError as exc:
            log.info("conciliacion.al_dia", motivo=str(exc))
            return None
        diferencias = {str(c): n for c, n in r.conteos.items() if n}
        evento = log.info if r.coincide_todo else log.warning
        evento("conciliacion.completa", conciliacion=r.id, peticiones=r.peticiones, **diferencias)
        if self._al_completar is not None:
            self._al_completar(r)
        return r

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.pasada()
            except Exception as exc:  # noqa: BLE001 - the run is FALLIDA; the next pass starts over
                log.warning("conciliacion.error", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._intervalo)
