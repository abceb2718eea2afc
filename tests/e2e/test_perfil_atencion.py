"""The attention path as a newcomer meets it: `pagos-dev run --fallas atencion` (what `make run
FALLAS=atencion` runs, its own PostgreSQL, broker and simulator), the operator's settings from
`pagos-dev env`, and nothing else set up. Two payments are flagged, one with a transfer the
gateway lists only later; `pagos atencion` shows both, `pagos resolver` settles the paid one once
it is listed and refuses the other, `pagos-worker eventos` shows the event, and Ctrl-C stops it all."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.e2e


@dataclass
class MakeRun:
    env: dict[str, str]
    operador: dict[str, str]
    base_url: str
    banner: str
    log: Path

    async def cli(self, *args: str) -> tuple[int, str, str]:
        proceso = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pagos_worker", *args, env=self.operador,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proceso.communicate(), 120)
        assert proceso.returncode is not None
        return proceso.returncode, out.decode(), err.decode()

    async def pago(self, id_pago: str) -> dict[str, Any]:
        async with aiohttp.ClientSession() as s, s.get(f"{self.base_url}/pagos/{id_pago}") as resp:
            return {"status": resp.status, **(await resp.json())}


async def _esperar(condicion: Any, que: str, segundos: float = 120) -> Any:
    deadline = time.monotonic() + segundos
    while time.monotonic() < deadline:
        if valor := await condicion():
            return valor
        await asyncio.sleep(0.5)
    pytest.fail(f"never: {que}")


def _abierto(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
async def make_run(tmp_path: Path) -> AsyncIterator[MakeRun]:
    puertos = {n: free_port() for n in ("postgres", "pulsar", "simulador", "http")}
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PAGOS_", "OTEL_"))}
    env = {
        **base,
        "PAGOS_DATA_DIR": str(tmp_path / "data"),
        "PAGOS_EMBEDDED_POSTGRES_PORT": str(puertos["postgres"]),
        "PAGOS_EMBEDDED_PULSAR_PORT": str(puertos["pulsar"]),
        "PAGOS_SIMULADOR_PORT": str(puertos["simulador"]),
        "PAGOS_HTTP_PORT": str(puertos["http"]),
        "PAGOS_SIMULADOR_LATENCY": "fixed:5",
        "PAGOS_SIMULADOR_UNLISTED_SECONDS": "5",  # the profile's lag, shorter for a test
        "PAGOS_SIMULADOR_LIST_LAG_SECONDS": "5",
        "PAGOS_LOG_FORMAT": "json",
    }
    log = tmp_path / "make-run.log"
    with log.open("wb") as errores:
        proceso = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pagos_dev", "run", "--fallas", "atencion", env=env,
            stdout=subprocess.PIPE, stderr=errores,
        )  # fmt: skip
    assert proceso.stdout is not None
    try:
        lineas: list[str] = []
        deadline = time.monotonic() + 180
        while not lineas or "stop with Ctrl-C" not in lineas[-1]:
            assert time.monotonic() < deadline, "".join(lineas) + log.read_text()[-3000:]
            linea = await asyncio.wait_for(proceso.stdout.readline(), 180)
            assert linea, "".join(lineas) + log.read_text()[-3000:]
            lineas.append(linea.decode())
        env_cmd = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pagos_dev", "env", env=env, stdout=subprocess.PIPE
        )
        salida, _ = await env_cmd.communicate()
        operador = {**base, "USER": "ana"}
        for linea in salida.decode().splitlines():
            if linea.startswith("export "):
                nombre, _, valor = shlex.split(linea)[1].partition("=")
                operador[nombre] = valor
        yield MakeRun(env, operador, f"http://127.0.0.1:{puertos['http']}", "".join(lineas), log)
    finally:
        if proceso.returncode is None:
            proceso.send_signal(signal.SIGINT)  # Ctrl-C, as an operator stops make run
            await asyncio.wait_for(proceso.wait(), 60)
    assert proceso.returncode in {0, 130}, log.read_text()[-3000:]
    for nombre, port in puertos.items():
        assert not _abierto(port), f"{nombre} still listening on {port} after Ctrl-C"
    assert "Traceback" not in log.read_text()


async def test_el_perfil_atencion_marca_pagos_y_el_operador_los_resuelve(make_run: MakeRun):
    assert "profile atencion" in make_run.banner
    assert 'eval "$(.venv/bin/pagos-dev env)"' in make_run.banner
    ids = {}
    for afiliado in ("test_error_500_saved_created_unlisted", "test_error_500_saved"):
        rc, out, err = await make_run.cli("publicar", "--id-afiliado", afiliado, "--monto", "42.00")
        assert rc == 0, err
        ids[afiliado] = out.strip()
    pagado, sin_pagar = ids["test_error_500_saved_created_unlisted"], ids["test_error_500_saved"]

    async def marcados() -> bool:
        pagos = [await make_run.pago(i) for i in ids.values()]
        return all(p["status"] == 200 and p["requiere_atencion"] for p in pagos)

    await _esperar(marcados, "both payments flagged for attention")
    rc, out, err = await make_run.cli("pagos", "atencion", "--json")
    assert rc == 0, err
    assert {p["id"] for p in json.loads(out)["pagos"]} == set(ids.values())

    async def resuelto() -> str | None:
        rc, out, _ = await make_run.cli("pagos", "resolver", pagado, "--motivo", "visto en Stripe", "--json")
        return out if rc == 0 else None

    assert json.loads(await _esperar(resuelto, "resolver settles the paid one once listed"))["estado"] == "EXITOSO"
    rc, out, err = await make_run.cli("pagos", "resolver", sin_pagar)
    assert rc == 1
    assert sin_pagar not in out
    assert err.strip()

    async def evento() -> list[dict[str, Any]]:
        rc, out, _ = await make_run.cli("eventos", "--id-pago", pagado, "--json")
        return [json.loads(linea) for linea in out.splitlines()] if rc == 0 else []

    eventos = await _esperar(evento, "the PagoExitoso event on the topic", 60)
    assert [e["event_type"] for e in eventos] == ["PagoExitoso"]
    assert (await make_run.pago(pagado))["estado"] == "EXITOSO"
