"""One entry for every command the worker takes: each to its own handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pagos_worker.application.commands import Comando, ProcesarPago, ReversarPago
from pagos_worker.application.handlers import Desenlace


class Despacho:
    def __init__(
        self,
        pagar: Callable[[ProcesarPago], Awaitable[Desenlace]],
        reversar: Callable[[ReversarPago], Awaitable[Desenlace]],
    ) -> None:
        self._pagar = pagar
        self._reversar = reversar

    def __call__(self, comando: Comando) -> Awaitable[Desenlace]:
        # The handler's own coroutine, returned and not awaited here: no frame of this call is held
        # through a payment (thousands are in flight at once with a slow gateway).
        if isinstance(comando, ReversarPago):
            return self._reversar(comando)
        return self._pagar(comando)
