"""The deadlines of a shutdown: once SIGTERM arrives the process ends within `shutdown_timeout`
plus `MARGEN_S`, whatever any role is doing (a reconciler half-way through a pass, a relay or a
flush waiting on a database that stopped answering).

In-flight payments get `shutdown_timeout`; the relay's last flush may take until `RELAY_S` after
that; the connections are closed by `CIERRE_S`; and at `VIGILANTE_S` a watchdog thread ends the
process whatever is still waiting (something the bounds above did not foresee).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

MARGEN_S = 5.0
RELAY_S = 2.5
CIERRE_S = 4.0
VIGILANTE_S = 4.6
EXIT_FORZADO = 70  # EX_SOFTWARE: the orderly shutdown did not finish in time


@dataclass(frozen=True, slots=True)
class Plazos:
    """Loop-time deadlines, counted from the moment the shutdown began."""

    inicio: float
    drenaje_s: float

    @classmethod
    def desde_ahora(cls, drenaje_s: float) -> Plazos:
        return cls(asyncio.get_running_loop().time(), drenaje_s)

    @property
    def drenaje(self) -> float:
        return self.inicio + self.drenaje_s

    @property
    def relay(self) -> float:
        return self.drenaje + RELAY_S

    @property
    def cierre(self) -> float:
        return self.drenaje + CIERRE_S

    @staticmethod
    def restante(hasta: float) -> float:
        return max(0.0, hasta - asyncio.get_running_loop().time())


def vigilar(segundos: float) -> threading.Timer:
    """A thread that ends the process after `segundos` unless it has exited by then: it does not
    depend on the event loop, which may be what is stuck."""

    def terminar() -> None:
        log.error("servicio.apagado_forzado", tras_s=round(segundos, 1))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_FORZADO)

    timer = threading.Timer(segundos, terminar)
    timer.daemon = True
    timer.start()
    return timer


async def esperar_o_cancelar(tareas: list[asyncio.Task[None]], timeout: float) -> None:
    """Wait up to `timeout` for `tareas`; cancel what is left and give it a moment to unwind (not
    more: a task cancelled while waiting on a dead connection may keep waiting)."""
    if not tareas:
        return
    _, pendientes = await asyncio.wait(tareas, timeout=timeout)
    for tarea in pendientes:
        tarea.cancel()
    if pendientes:
        await asyncio.wait(pendientes, timeout=0.2)
