"""The simulator behind aiohttp's low-level server instead of its own (`--http aiohttp`): what the
own server is measured against (docs/adr/0001-simulator-own-http-server.md)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from pagos_dev.simulador.http import Manejador, Peticion


class ServidorAiohttp:
    def __init__(self, manejar: Manejador) -> None:
        self.manejar = manejar
        self._servidor = web.Server(self._atender)
        self._server: asyncio.Server | None = None

    async def _atender(self, request: web.BaseRequest) -> web.StreamResponse:
        cabeceras = {k.lower(): v for k, v in request.headers.items()}
        peticion = Peticion(request.method, request.path, request.query_string, cabeceras, await request.read())
        respuesta = await self.manejar(peticion)
        return web.Response(
            status=respuesta.status, body=respuesta.cuerpo, content_type="application/json", headers=respuesta.cabeceras
        )

    async def escuchar(self, host: str, port: int) -> None:
        self._server = await asyncio.get_running_loop().create_server(self._servidor, host, port, backlog=4096)

    async def cerrar(self, espera: float = 1.0) -> None:
        if self._server is not None:
            self._server.close()
        await self._servidor.shutdown(espera)
        if self._server is not None:
            await self._server.wait_closed()
