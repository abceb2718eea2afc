"""A TCP proxy, in the event loop that starts it, that can freeze the connections it carries: they
stay open and the proxy's kernel keeps acknowledging what is sent, but nothing is forwarded either
way — what a connection through a network partition, a stateful firewall that dropped it, or a
hung host looks like to the client. New connections made while frozen are carried normally, unless
`congelar(nuevas=True)`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class _Tramo:
    """One proxied connection: the client's side, the upstream's, and whether it is frozen."""

    writers: tuple[asyncio.StreamWriter, asyncio.StreamWriter]
    congelado: asyncio.Event = field(default_factory=asyncio.Event)


class ProxyCongelable:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._server: asyncio.Server | None = None
        self._tramos: set[_Tramo] = set()
        self._tareas: set[asyncio.Task[Any]] = set()
        self._congelar_nuevas = False
        self._cerrado = asyncio.Event()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._atender, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def conexiones(self) -> int:
        return len(self._tramos)

    def congelar(self, *, nuevas: bool = False) -> int:
        """Freeze every connection open now (and, with `nuevas`, those made later); return how many."""
        self._congelar_nuevas = nuevas
        for tramo in self._tramos:
            tramo.congelado.set()
        return len(self._tramos)

    def deshelar_nuevas(self) -> None:
        """New connections are carried again; the frozen ones stay frozen (as a dropped NAT entry)."""
        self._congelar_nuevas = False

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._cerrado.set()  # what is frozen lets go
        for tramo in list(self._tramos):
            for writer in tramo.writers:
                writer.close()
        if self._tareas:
            await asyncio.wait(set(self._tareas), timeout=5)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _atender(self, cliente_r: asyncio.StreamReader, cliente_w: asyncio.StreamWriter) -> None:
        tarea = asyncio.current_task()
        assert tarea is not None  # noqa: S101 - a server callback runs in a task of its own
        self._tareas.add(tarea)
        try:
            await self._llevar(cliente_r, cliente_w)
        finally:
            self._tareas.discard(tarea)

    async def _llevar(self, cliente_r: asyncio.StreamReader, cliente_w: asyncio.StreamWriter) -> None:
        try:
            upstream_r, upstream_w = await asyncio.open_connection(*self._upstream)
        except OSError:
            cliente_w.close()
            return
        tramo = _Tramo((cliente_w, upstream_w))
        if self._congelar_nuevas:
            tramo.congelado.set()
        self._tramos.add(tramo)
        try:
            await asyncio.gather(
                _copiar(cliente_r, upstream_w, tramo, self._cerrado),
                _copiar(upstream_r, cliente_w, tramo, self._cerrado),
            )
        finally:
            self._tramos.discard(tramo)
            for writer in tramo.writers:
                writer.close()


async def _copiar(
    origen: asyncio.StreamReader, destino: asyncio.StreamWriter, tramo: _Tramo, cerrado: asyncio.Event
) -> None:
    # RuntimeError: uvloop's "handler is closed", when the other side went first (a restart).
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        while data := await origen.read(65536):
            if tramo.congelado.is_set():
                await cerrado.wait()  # swallowed: never forwarded, never answered, until the proxy closes
                return
            destino.write(data)
            await destino.drain()
        if not tramo.congelado.is_set() and not destino.is_closing():
            destino.write_eof()  # an orderly end goes through, as it would without the proxy
