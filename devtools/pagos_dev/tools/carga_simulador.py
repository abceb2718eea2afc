"""The simulator under a steady load of transfers (`pagos-dev bench simulador`): its resident
memory as the ledger grows, its CPU per request, and how its reads answer at the end.

It starts the simulator as a child process (ledger in a temporary SQLite file, the bench's 5 ms
latency and 10 % declines), sends the service's form (with `transfer_group`) at a fixed rate over
kept connections, samples the child's RSS every second, then times a list, a lookup, a
`transfer_group` filter and a replay."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import psutil

from pagos_dev.embedded.process import port_is_open, spawn, terminate, wait_until

AUTH = {"Authorization": "Bearer sk_test_carga", "Content-Type": "application/x-www-form-urlencoded"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _form(i: int) -> bytes:
    """What the service sends (its adapter's form, with the `transfer_group` it is adding): a
    payment id as a UUID, an affiliate out of 5,000."""
    id_pago = uuid.UUID(int=_PAGOS.getrandbits(128) | 1 << 126)
    return urlencode({
        "amount": 10_000 + i % 1000, "currency": "usd", "destination": f"acct_afiliado_{i * 7919 % 5000}",
        "description": f"Pago a afiliado {i * 7919 % 5000}", "metadata[id_pago]": str(id_pago),
        "metadata[id_afiliado]": f"afiliado_{i * 7919 % 5000}", "transfer_group": str(id_pago),
    }).encode()  # fmt: skip


_PAGOS = random.Random(14)  # noqa: S311 - test data


async def correr(transfers: int, rate: float, conexiones: int, http: str, data_dir: Path) -> dict[str, Any]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PAGOS_SIMULADOR_LATENCY": "fixed:5", "PAGOS_SIMULADOR_DECLINE_RATE": "0.1"}
    comando = [sys.executable, "-m", "pagos_dev", "simulador", "--port", str(port),
               "--state-file", str(data_dir / "ledger.sqlite3")]  # fmt: skip
    if http != "propio":
        comando += ["--http", http]
    log = data_dir / "simulador.log"
    proceso = spawn(comando, log_path=log, env=env)
    try:
        await wait_until(lambda: port_is_open("127.0.0.1", port), process=proceso, timeout=30, what="simulador",
                         log_path=log)  # fmt: skip
        return await _medir(psutil.Process(proceso.pid), url, transfers, rate, conexiones)
    finally:
        await terminate(proceso.pid, signal.SIGTERM, timeout=10, process=proceso)


async def _medir(hijo: psutil.Process, url: str, n: int, rate: float, conexiones: int) -> dict[str, Any]:
    conector = aiohttp.TCPConnector(limit=conexiones)
    async with aiohttp.ClientSession(url, headers=AUTH, connector=conector) as http:
        rss_inicio = hijo.memory_info().rss
        cpu0, t0 = sum(hijo.cpu_times()[:2]), time.monotonic()
        muestras: list[float] = []
        muestreo = asyncio.create_task(_muestrear(hijo, muestras))
        enviados = await _enviar(http, n, rate, conexiones, t0)
        cpu, duracion = sum(hijo.cpu_times()[:2]) - cpu0, time.monotonic() - t0
        muestreo.cancel()
        rss_final = hijo.memory_info().rss
        lecturas = await _lecturas(http)
    mb = 1024 * 1024
    return {
        "transfers_pedidos": n, "respuestas": enviados, "duracion_s": round(duracion, 1),
        "peticiones_s": round(n / duracion), "cpu_us_por_peticion": round(cpu / n * 1e6, 1),
        "rss_mb": {"inicio": round(rss_inicio / mb, 1), "max": round(max(muestras, default=0) / mb, 1),
                   "final": round(rss_final / mb, 1)},
        "lecturas_ms": lecturas,
    }  # fmt: skip


async def _enviar(http: aiohttp.ClientSession, n: int, rate: float, conexiones: int, t0: float) -> dict[str, int]:
    cola: asyncio.Queue[int] = asyncio.Queue(maxsize=conexiones * 2)
    respuestas: dict[str, int] = {}

    async def trabajador() -> None:
        while (i := await cola.get()) >= 0:
            cuerpo = _form(i)
            cabeceras = {"Idempotency-Key": f"pagos-worker-transfer-{hashlib.blake2b(cuerpo).hexdigest()[:32]}"}
            async with http.post("/v1/transfers", data=cuerpo, headers=cabeceras) as resp:
                await resp.read()
                respuestas[str(resp.status)] = respuestas.get(str(resp.status), 0) + 1

    trabajadores = [asyncio.create_task(trabajador()) for _ in range(conexiones)]
    for i in range(n):
        if (retraso := t0 + i / rate - time.monotonic()) > 0:
            await asyncio.sleep(retraso)
        await cola.put(i)
        if i % 50_000 == 0 and i:
            print(f"  {i}/{n} enviados", file=sys.stderr, flush=True)
    for _ in trabajadores:
        await cola.put(-1)
    await asyncio.gather(*trabajadores)
    return respuestas


async def _muestrear(hijo: psutil.Process, muestras: list[float]) -> None:
    while True:
        muestras.append(hijo.memory_info().rss)
        await asyncio.sleep(1)


async def _lecturas(http: aiohttp.ClientSession) -> dict[str, float]:
    async def medir(metodo: str, ruta: str, **kwargs: Any) -> tuple[float, Any]:  # noqa: ANN401
        inicio = time.perf_counter()
        async with http.request(metodo, ruta, **kwargs) as resp:
            cuerpo = orjson.loads(await resp.read())
            if resp.status != 200 and resp.headers.get("Idempotent-Replayed") != "true":  # noqa: PLR2004
                raise RuntimeError(f"{metodo} {ruta}: {resp.status} {cuerpo}")
        return round((time.perf_counter() - inicio) * 1000, 2), cuerpo

    lista_ms, lista = await medir("GET", "/v1/transfers", params={"limit": "100"})
    mas_antiguo = lista["data"][-1]["id"]
    grupo = lista["data"][len(lista["data"]) // 2]["transfer_group"]
    grupo_ms, _ = await medir("GET", "/v1/transfers", params={"transfer_group": grupo})
    uno_ms, _ = await medir("GET", f"/v1/transfers/{mas_antiguo}")
    pagina_ms, _ = await medir("GET", "/v1/transfers", params={"limit": "100", "ending_before": mas_antiguo})
    destino_ms, _ = await medir("GET", "/v1/transfers", params={"destination": "acct_afiliado_7", "limit": "100"})
    cuerpo, clave = _form(1), {"Idempotency-Key": "carga-fija"}
    async with http.post("/v1/transfers", data=cuerpo, headers=clave) as resp:
        await resp.read()  # a transfer or a decline: the replay must give the same
    replay_ms, _ = await medir("POST", "/v1/transfers", data=cuerpo, headers=clave)
    return {"listar_100": lista_ms, "por_transfer_group": grupo_ms, "obtener": uno_ms,
            "pagina_ending_before": pagina_ms, "por_destination_100": destino_ms, "replay": replay_ms}  # fmt: skip


def main(transfers: int, rate: float, conexiones: int, http: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pagos-carga-") as base:
        return asyncio.run(correr(transfers, rate, conexiones, http, Path(base)))
