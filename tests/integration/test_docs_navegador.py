"""GET /docs in a real browser: headless Chromium opens the page that the HTTP API serves (Swagger UI
from the installed package, the description from /openapi.json, nothing from elsewhere: the browser
runs with its background networking off), and the rendered page lists every route of the OpenAPI
document, read-only (an operation opened by its link offers no "Try it out")."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from pagos_worker.entrypoints.openapi import openapi
from tests.unit.test_http_api import FakeViews, app_con, ready

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None, reason="no headless browser: Debian's `chromium` is not installed (.ci/run installs it)"
    ),
]


async def dom(url: str, perfil: Path, *, tiempo_virtual_ms: int | None = None) -> str:
    """The page's DOM at its load event: what a headless screenshot shows, and what a browser shows
    without waiting on anything more (no `--virtual-time-budget`: the page must be drawn by then,
    not be Swagger UI's spinner while it fetches the description). With `tiempo_virtual_ms`, after
    that much of the page's own (virtual) time: its timers run, however busy this machine is."""
    assert CHROMIUM is not None
    virtual = [] if tiempo_virtual_ms is None else [f"--virtual-time-budget={tiempo_virtual_ms}"]
    proceso = await asyncio.create_subprocess_exec(
        CHROMIUM,
        *virtual,
        "--headless",
        "--no-sandbox",  # as root, in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={perfil}",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        salida, errores = await asyncio.wait_for(proceso.communicate(), timeout=120)
    finally:
        if proceso.returncode is None:
            proceso.kill()
            await proceso.wait()
    assert proceso.returncode == 0, errores.decode(errors="replace")[-2000:]
    return salida.decode()


@pytest.fixture
async def base_url():
    async with TestServer(app_con(FakeViews(), ready), host="127.0.0.1") as servidor:
        yield f"http://127.0.0.1:{servidor.port}"


async def test_la_pagina_lista_cada_ruta(base_url, tmp_path):
    pagina = await dom(f"{base_url}/docs", tmp_path)
    rutas = set(re.findall(r'data-path="([^"]+)"', pagina))
    assert rutas == set(openapi()["paths"]), pagina[-3000:]
    assert "pagos_worker status API" in pagina
    assert "Unable to render" not in pagina
    assert "loading-container" not in pagina  # Swagger UI's spinner


async def test_una_operacion_abierta_no_ofrece_probarla(base_url, tmp_path):
    # Opening the operation the link names is Swagger UI's work after the page is drawn (a timer):
    # read once the page's own clock has run 10 s, not after however long this machine takes.
    pagina = await dom(f"{base_url}/docs#/default/obtenerEstadoPago", tmp_path, tiempo_virtual_ms=10_000)
    assert "Parameters" in pagina  # the operation is open (and would offer "Try it out" if it could)
    assert "Try it out" not in pagina
    assert "Execute" not in pagina
