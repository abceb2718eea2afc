"""The reconciler: drives to their outcome payments stuck in PROCESANDO whose command is not
coming back (lost on the broker, dead-lettered, a consumer reset...).

Normally a redelivered command resumes a payment whose worker died; this is the safety net for when
it does not. It re-runs the same `ProcesarPago` handling from the stored payment, so the claim is
atomic (a live worker or another reconciler wins, never both) and the gateway sees the same
idempotency key: it returns the first outcome, it never pays twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta

import structlog

from pagos_worker.application.commands import Comando, ProcesarPago, ReversarPago
from pagos_worker.application.handlers import Accion, Desenlace
from pagos_worker.application.ports.repository import PagoRepository
from pagos_worker.application.ports.reversos import ReversoRepository

log = structlog.get_logger(__name__)


class Reconciliador:
    def __init__(
        self,
        pagos: PagoRepository,
        procesar: Callable[[Comando], Awaitable[Desenlace]],
        *,
        reversos: ReversoRepository | None = None,
        gracia: timedelta,
        intervalo: float = 30.0,
        lote: int = 100,
        gate: Callable[[], Awaitable[None]] | None = None,
        al_fallar: Callable[[], None] | None = None,
        es_transitorio: Callable[[BaseException], bool] = lambda _: False,
    ) -> None:
        """`al_fallar`: called for each payment whose handling raised (the process's counter).
        `es_transitorio`: an outage (PostgreSQL away) ends the pass instead: every other payment
        would meet it too."""
        self._pagos = pagos
        self._reversos = reversos
        self._procesar = procesar
        self._gracia = gracia
        self._intervalo = intervalo
        self._lote = lote
        self._gate = gate
        self._al_fallar = al_fallar
        self._es_transitorio = es_transitorio

    async def reconciliar(self, stop: asyncio.Event | None = None) -> dict[str, int]:
        """One pass over payments whose lease expired more than `gracia` ago (the database's
        clock); counts by outcome. A payment whose handling raises is logged, counted and skipped:
        the pass goes on. Once `stop` is set, no further payment is started (the rest wait for the
        next pass)."""
        atascados: list[Comando] = [
            ProcesarPago(p.id_pago, p.id_afiliado, p.importe)
            for p in await self._pagos.atascados(self._gracia, self._lote)
        ]
        if self._reversos is not None:  # reversals too, re-run from what their command asked
            atascados += [
                ReversarPago(r.id_reverso, r.id_pago, r.monto_pedido, r.motivo, r.descripcion, r.operador)
                for r in await self._reversos.atascados(self._gracia, self._lote)
            ]
        cuenta: dict[str, int] = {}
        for comando in atascados:
            if stop is not None and stop.is_set():
                break
            if self._gate is not None:
                await self._gate()
            try:
                desenlace = await self._procesar(comando)
            except Exception as exc:
                if self._es_transitorio(exc):
                    raise  # the next pass, after the interval
                # One payment's trouble never stops the pass. Its lease, if this pass claimed it,
                # runs out by itself; the next pass tries it again.
                log.exception("reconciliador.error_en_pago", id_pago=str(comando.id_pago), error=repr(exc))
                if self._al_fallar is not None:
                    self._al_fallar()
                cuenta["error"] = cuenta.get("error", 0) + 1
                continue
            cuenta[desenlace.motivo] = cuenta.get(desenlace.motivo, 0) + 1
            if desenlace.accion is Accion.ACK:
                log.info("reconciliador.resuelto", id_pago=str(comando.id_pago), motivo=desenlace.motivo)
        return cuenta

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if cuenta := await self.reconciliar(stop):
                    log.info("reconciliador.pasada", **cuenta)
            except Exception as exc:  # noqa: BLE001 - next pass
                log.warning("reconciliador.error", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._intervalo)
