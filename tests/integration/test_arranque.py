"""Outside the embedded default the service fails closed: a missing setting stops the start with a
message that names it, and nothing is started in its place."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from aiohttp import web

from tests.conftest import free_port

REQUERIDOS = ["PAGOS_DATABASE_URL", "PAGOS_PULSAR_URL", "PAGOS_STRIPE_API_BASE", "PAGOS_STRIPE_SECRET_KEY"]
# Servers nobody listens on: every check here must stop the start before anything is reached.
SERVIDORES = {
    "PAGOS_DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1:1/x",
    "PAGOS_PULSAR_URL": "pulsar://127.0.0.1:1",
    "PAGOS_STRIPE_API_BASE": "https://api.stripe.com",
}


def arrancar(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    limpio = {k: v for k, v in os.environ.items() if not k.startswith("PAGOS_")}
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "pagos_worker", *args],
        env={**limpio, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_sin_configuracion_no_arranca_y_nombra_lo_que_falta():
    resultado = arrancar("run")
    assert resultado.returncode == 2
    assert "missing settings: " + ", ".join(REQUERIDOS) in resultado.stderr
    assert "simulador" not in resultado.stdout + resultado.stderr.replace("make run", "")


@pytest.mark.parametrize("roles", ["worker", "relay", "worker,relay,api"])
def test_sin_la_clave_de_stripe_el_worker_no_arranca(roles):
    """Nor the relay: its reconciler resumes payments through Stripe."""
    resultado = arrancar(
        "run",
        "--roles",
        roles,
        **SERVIDORES,
    )
    assert resultado.returncode == 2
    assert resultado.stderr.strip().endswith("use `make run`)")
    assert "missing settings: PAGOS_STRIPE_SECRET_KEY, PAGOS_STRIPE_DESTINATIONS_FILE " in resultado.stderr


def test_la_api_sola_no_necesita_stripe():
    resultado = arrancar("run", "--roles", "api", PAGOS_PULSAR_URL="pulsar://127.0.0.1:1")
    assert resultado.returncode == 2
    assert "missing settings: PAGOS_DATABASE_URL " in resultado.stderr
    assert "STRIPE" not in resultado.stderr


def test_migrar_sin_base_de_datos_no_arranca():
    resultado = arrancar("migrate")
    assert resultado.returncode == 2
    assert "PAGOS_DATABASE_URL" in resultado.stderr


def test_una_clave_de_stripe_mala_no_arranca_ni_se_muestra(tmp_path):
    destinos = tmp_path / "destinos.json"
    destinos.write_text("{}")
    resultado = arrancar(
        "run",
        "--roles",
        "worker",
        "--no-migrate",
        **SERVIDORES,
        PAGOS_STRIPE_SECRET_KEY="pk_live_secreto_publicable",  # noqa: S106 - a made-up, wrong key
        PAGOS_STRIPE_DESTINATIONS_FILE=str(destinos),
    )
    assert resultado.returncode == 2, resultado.stderr
    assert "PAGOS_STRIPE_SECRET_KEY must start with" in resultado.stderr
    assert "secreto_publicable" not in resultado.stdout + resultado.stderr


def test_una_plantilla_de_cuentas_con_clave_live_no_arranca():
    resultado = arrancar(
        "run",
        "--roles",
        "worker",
        "--no-migrate",
        **SERVIDORES,
        PAGOS_STRIPE_SECRET_KEY="rk_live_una_clave_de_verdad",  # noqa: S106 - made up
        PAGOS_STRIPE_DESTINATION_TEMPLATE="acct_{id_afiliado}",
    )
    assert resultado.returncode == 2, resultado.stderr
    assert "PAGOS_STRIPE_DESTINATION_TEMPLATE is for test mode only" in resultado.stderr
    assert "una_clave_de_verdad" not in resultado.stderr


@pytest.mark.integration
async def test_una_clave_sin_lectura_de_transfers_no_arranca(database_url, pulsar_url):
    """A restricted key that may create transfers but not read them would fail every lookup before
    a retry: Stripe's 403 to one listing at start stops the start, naming the setting."""

    async def prohibido(request: web.Request) -> web.Response:
        error = {"error": {"type": "invalid_request_error", "message": "The provided key does not have access"}}
        return web.json_response(error, status=403, headers={"Request-Id": "req_prohibido"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", prohibido)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        resultado = await asyncio.to_thread(
            arrancar,
            "run",
            "--roles",
            "worker",
            PAGOS_DATABASE_URL=database_url,
            PAGOS_PULSAR_URL=pulsar_url,
            PAGOS_STRIPE_API_BASE=f"http://127.0.0.1:{port}",
            PAGOS_STRIPE_SECRET_KEY="rk_test_sin_lectura_de_transfers",  # noqa: S106 - made up
            PAGOS_STRIPE_DESTINATION_TEMPLATE="acct_{id_afiliado}",
        )
    finally:
        await runner.cleanup()
    assert resultado.returncode == 2, resultado.stderr
    assert "PAGOS_STRIPE_SECRET_KEY: the key may not read transfers (HTTP 403, req_prohibido)" in resultado.stderr
    assert "sin_lectura_de_transfers" not in resultado.stdout + resultado.stderr
