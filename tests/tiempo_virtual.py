"""An event loop on virtual time, for unit tests that assert what happens when (a linger, a hold, a
schedule of turns), not how fast this machine is right now.

The loop's clock (`loop.time()`, which `asyncio.sleep`, `wait_for` and `call_later` use) stands
still while anything is ready to run, and jumps to the next timer when nothing is: a test's
`asyncio.sleep(0.05)` lets every ready callback run, then 50 ms pass at once. So the figures a
test reads from `loop.time()` are the code's own (its sleeps and timeouts), the same on an idle
laptop and on a shared machine under `stress-ng`, and a test of a 30 s timeout takes no 30 s.

Code under test must take its clock from the loop (`asyncio.get_running_loop().time`, passed as
its `clock=`): `time.monotonic()` keeps real time. Real I/O does not belong here — a socket waited
on with a timeout would see the timeout come at once."""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Callable, Coroutine
from typing import Any

_SIN_NADA_QUE_HACER_S = 30.0  # real seconds with no timer and no I/O before the test is called stuck


class _SelectorVirtual(selectors.DefaultSelector):
    """Polls for I/O without waiting; a wait the loop asks for (until its next timer) is taken from
    the virtual clock instead."""

    def __init__(self) -> None:
        super().__init__()
        self.ahora = 1000.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        listos = super().select(0)
        if listos or timeout == 0:
            return listos
        if timeout is None:  # no timer: only I/O (a thread's call_soon_threadsafe) can wake it
            listos = super().select(_SIN_NADA_QUE_HACER_S)
            if not listos:
                raise RuntimeError(f"nothing to run, no timer and no I/O for {_SIN_NADA_QUE_HACER_S:.0f} s")
            return listos
        self.ahora += timeout
        return listos


class BucleVirtual(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._virtual = _SelectorVirtual()
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.ahora


def tiempo_virtual(prueba: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run the async test `prueba` on a `BucleVirtual` of its own (fixtures are passed through)."""

    @functools.wraps(prueba)
    def correr(*args: Any, **kwargs: Any) -> None:
        with asyncio.Runner(loop_factory=BucleVirtual) as runner:
            runner.run(prueba(*args, **kwargs))

    return correr


def reloj() -> Callable[[], float]:
    """The running loop's clock, for code under test that takes a `clock`."""
    return asyncio.get_running_loop().time
