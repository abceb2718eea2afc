"""The Stripe adapter's own cost per call, against the simulator with no latency and no faults.

Runs the simulator as a separate process (so its CPU is not counted), then makes N payouts through
`StripePasarelaDePagos` and, for comparison, N bare POSTs of the same form with aiohttp's client
(which the adapter speaks through). Reports calls/s and this process's CPU per call; the adapter's
row minus the bare one is what the adapter adds over raw HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from pagos_dev.embedded.process import port_is_open
from pagos_worker.adapters.stripe.adapter import Destinos, StripeConfig, StripePasarelaDePagos
from pagos_worker.domain import Dinero, Moneda, Pago
from pagos_worker.entrypoints.runner import run_with_uvloop


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _medir(nombre: str, n: int, concurrencia: int, llamada: Any) -> dict[str, Any]:  # noqa: ANN401
    limite = asyncio.Semaphore(concurrencia)

    async def una(i: int) -> None:
        async with limite:
            await llamada(i)

    await asyncio.gather(*(una(i) for i in range(min(n, 200))))  # warm-up: connections, caches
    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(una(i) for i in range(n)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    return {"caso": nombre, "llamadas": n, "llamadas_s": round(n / wall), "cpu_us_por_llamada": round(cpu / n * 1e6)}


async def _run(n: int, concurrencia: int, url: str) -> list[dict[str, Any]]:
    config = StripeConfig(api_base=url, secret_key=SecretStr("sk_test_bench"), rate=1e9, burst=10**6,
                          concurrencia=concurrencia)  # fmt: skip
    headers = {"Authorization": "Bearer sk_test_bench", "Stripe-Version": "2024-06-20"}
    form = {"amount": "1000", "currency": "usd", "destination": "acct_1", "metadata[id_pago]": "x"}
    connector = aiohttp.TCPConnector(limit=concurrencia)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        StripePasarelaDePagos(config, Destinos(template="acct_{id_afiliado}")) as pasarela,
    ):

        async def via_adaptador(_: int) -> None:
            pago = Pago.crear(id_pago=uuid.uuid4(), id_afiliado="afiliado_1",
                              importe=Dinero(Decimal("10.00"), Moneda.USD), ahora=datetime.now(UTC))  # fmt: skip
            assert (await pasarela.procesar_pago(pago)).exitoso  # noqa: S101

        async def aiohttp_a_pelo(_: int) -> None:
            async with session.post(f"{url}/v1/transfers", data=form,
                                    headers={**headers, "Idempotency-Key": uuid.uuid4().hex}) as resp:  # fmt: skip
                await resp.json()

        return [
            await _medir("aiohttp a pelo", n, concurrencia, aiohttp_a_pelo),
            await _medir("StripePasarelaDePagos", n, concurrencia, via_adaptador),
        ]


def main(n: int = 5000, concurrencia: int = 50) -> list[dict[str, Any]]:
    port = _free_port()
    env = {**os.environ, "PAGOS_SIMULADOR_LATENCY": "fixed:0", "PAGOS_SIMULADOR_DECLINE_RATE": "0"}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp, "simulador.log").open("wb")  # noqa: SIM115
        sim = subprocess.Popen([sys.executable, "-m", "pagos_dev", "simulador", "--port", str(port)],  # noqa: S603
                               env=env, stdout=log, stderr=log)  # fmt: skip
        try:
            while not port_is_open("127.0.0.1", port):
                time.sleep(0.05)
            filas = run_with_uvloop(_run(n, concurrencia, f"http://127.0.0.1:{port}"))
        finally:
            sim.terminate()
            sim.wait()
            log.close()
    extra = filas[1]["cpu_us_por_llamada"] - filas[0]["cpu_us_por_llamada"]
    for fila in filas:
        print(f"{fila['caso']:<24} {fila['llamadas_s']:>7} llamadas/s  {fila['cpu_us_por_llamada']:>5} µs CPU/llamada")
    print(f"el adaptador añade {extra} µs de CPU por llamada sobre su cliente HTTP a pelo")
    print(json.dumps({"resultados": filas, "adaptador_extra_cpu_us": extra}))
    return filas
