"""For the stripe-mock suite: a recording proxy in front of a Stripe-like server (stripe-mock or the
simulator), and the shape of a JSON answer, compared field by field.

The proxy passes every request on as it came and keeps it with its answer, so a test can say what the
real adapter sent and what came back. With `mas_paginas`, the first page of every list comes back
with `has_more: true`: the adapter then asks for the next page itself (`starting_after` the page's
last id), as it would on a longer list; stripe-mock's lists hold a single fixture each."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import orjson
from aiohttp import web
from yarl import URL

from tests.conftest import free_port

_SALTO = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding", "keep-alive"}
_IDS = ((re.compile(r"/trr_[^/]+"), "/{id}"), (re.compile(r"/tr_[^/]+"), "/{transfer}"),
        (re.compile(r"/txn_[^/]+"), "/{id}"))  # fmt: skip

Operacion = tuple[str, str, frozenset[str]]  # method, path template, the parameters' names


def plantilla(ruta: str) -> str:
    """`/v1/transfers/tr_1/reversals` → `/v1/transfers/{transfer}/reversals`, as Stripe's spec writes it."""
    for patron, nombre in _IDS:
        ruta = patron.sub(nombre, ruta)
    return ruta


@dataclass
class Intercambio:
    metodo: str
    ruta: str
    consulta: list[tuple[str, str]]
    formulario: list[tuple[str, str]]
    cabeceras_peticion: dict[str, str]
    status: int
    cabeceras: dict[str, str]
    cuerpo: Any

    @property
    def operacion(self) -> Operacion:
        nombres = frozenset(k for k, _ in self.consulta + self.formulario)
        return (self.metodo, plantilla(self.ruta), nombres)

    @property
    def consulta_cruda(self) -> str:
        return "&".join(f"{k}={v}" for k, v in self.consulta)


@dataclass
class Grabadora:
    url: str
    intercambios: list[Intercambio] = field(default_factory=list)

    def de(self, operacion: Operacion) -> list[Intercambio]:
        return [i for i in self.intercambios if i.operacion == operacion]


@contextlib.asynccontextmanager
async def grabadora(destino: str, *, mas_paginas: bool = False) -> AsyncIterator[Grabadora]:
    grabada = Grabadora(f"http://127.0.0.1:{free_port()}")
    async with aiohttp.ClientSession(auto_decompress=False) as http:

        async def pasar(request: web.Request) -> web.Response:
            crudo = await request.read()
            cabeceras = {k: v for k, v in request.headers.items() if k.lower() not in _SALTO}
            url = URL(destino + request.raw_path, encoded=True)
            async with http.request(request.method, url, data=crudo, headers=cabeceras, allow_redirects=False) as r:
                status, cuerpo, recibidas = r.status, await r.read(), dict(r.headers)
            valor = orjson.loads(cuerpo) if cuerpo else None
            consulta = parse_qsl(request.raw_path.partition("?")[2], keep_blank_values=True)
            formulario = parse_qsl(crudo.decode(), keep_blank_values=True) if request.method == "POST" else []
            grabada.intercambios.append(
                Intercambio(
                    request.method, request.path, consulta, formulario, dict(request.headers), status, recibidas, valor
                )
            )
            primera = request.method == "GET" and "starting_after" not in dict(consulta)
            if mas_paginas and primera and isinstance(valor, dict) and valor.get("object") == "list" and valor["data"]:
                cuerpo = orjson.dumps({**valor, "has_more": True})
            devueltas = {k: v for k, v in recibidas.items() if k.lower() not in _SALTO | {"content-encoding", "date"}}
            return web.Response(status=status, body=cuerpo, headers=devueltas)

        app = web.Application()
        app.router.add_route("*", "/{ruta:.*}", pasar)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", int(grabada.url.rsplit(":", 1)[1])).start()
        try:
            yield grabada
        finally:
            await runner.cleanup()


def forma(valor: Any) -> Any:
    """The JSON value with each scalar replaced by its JSON type's name."""
    if isinstance(valor, dict):
        return {k: forma(v) for k, v in valor.items()}
    if isinstance(valor, list):
        return [forma(v) for v in valor]
    if valor is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}[type(valor)]


def diferencias(simulador: Any, referencia: Any, camino: str = "$") -> list[str]:
    """Where the simulator's answer differs from the reference's in shape: a field one has and the
    other lacks, or another JSON type. A `null` on either side is a value, not a shape (fixtures
    have fixed values; nullability is the spec checks' business); `metadata` is free-form (string
    values); each element of a list is compared with the reference's first one."""
    if simulador is None or referencia is None:
        return []
    if camino.endswith(".metadata"):
        ok = isinstance(simulador, dict) and all(isinstance(v, str) for v in simulador.values())
        return [] if ok and isinstance(referencia, dict) else [f"{camino}: not a hash of strings"]
    if isinstance(simulador, dict) and isinstance(referencia, dict):
        salida = [f"{camino}.{k}: only in stripe-mock's" for k in sorted(set(referencia) - set(simulador))]
        salida += [f"{camino}.{k}: only in the simulator's" for k in sorted(set(simulador) - set(referencia))]
        for k in sorted(set(simulador) & set(referencia)):
            salida += diferencias(simulador[k], referencia[k], f"{camino}.{k}")
        return salida
    if isinstance(simulador, list) and isinstance(referencia, list):
        return [d for s in simulador for d in diferencias(s, referencia[0], f"{camino}[]")] if referencia else []
    if _tipo(simulador) == _tipo(referencia):
        return []
    return [f"{camino}: {_tipo(simulador)} in the simulator's, {_tipo(referencia)} in stripe-mock's"]


def _tipo(valor: Any) -> str:
    f = forma(valor)
    return f if isinstance(f, str) else ("object" if isinstance(valor, dict) else "array")


def sin_excepciones(encontradas: list[str], excepciones: dict[str, str]) -> list[str]:
    """The differences no documented exception covers (an exception names a path's ending)."""
    return [d for d in encontradas if not any(d.split(":", 1)[0].endswith(e) for e in excepciones)]
