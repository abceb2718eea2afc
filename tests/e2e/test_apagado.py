"""Graceful shutdown: SIGTERM stops intake, lets in-flight payments finish and flushes the relay;
whatever did not start is redelivered to the next process, and nothing is paid twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import aiohttp
import pytest

from pagos_dev.simulador.fallas import Fallas
from tests import contrato_helpers, pulsar_helpers
from tests.conftest import create_database, free_port
from tests.simulador_helpers import simulador_en_marcha

pytestmark = pytest.mark.e2e


def arrancar(env: dict[str, str], log) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "pagos_worker", "run", "--roles", "worker,relay"]
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


async def test_sigterm_termina_lo_empezado_y_lo_demas_llega_al_siguiente(postgres_server, pulsar_url, topics, tmp_path):
    database_url = await create_database(postgres_server)
    async with simulador_en_marcha(Fallas(latencia="fixed:1500", tasa_rechazo=0)) as sim:
        env = {
            **os.environ,
            "PAGOS_DATABASE_URL": database_url,
            "PAGOS_PULSAR_URL": pulsar_url,
            "PAGOS_STRIPE_API_BASE": sim.url,
            "PAGOS_STRIPE_SECRET_KEY": "sk_test_apagado",
            "PAGOS_STRIPE_DESTINATION_TEMPLATE": "acct_{id_afiliado}",
            "PAGOS_COMMANDS_TOPIC": topics.commands,
            "PAGOS_EVENTS_TOPIC": topics.events,
            "PAGOS_DLQ_TOPIC": topics.dlq,
            "PAGOS_WORKER_CONCURRENCY": "5",
            "PAGOS_SHUTDOWN_TIMEOUT_SECONDS": "10",
            "PAGOS_HTTP_PORT": str(free_port()),
        }
        observer = pulsar_helpers.client(pulsar_url)
        events = pulsar_helpers.subscribe(observer, topics.events)
        producer = observer.create_producer(topics.commands)
        ids = [str(uuid.uuid4()) for _ in range(12)]
        for id_pago in ids:
            data = json.dumps({"id_pago": id_pago, "id_afiliado": "a", "monto": "1.00", "moneda": "USD"}).encode()
            contrato_helpers.comando(data, {}, id_pago)
            producer.send(data, partition_key=id_pago)

        with (tmp_path / "primero.log").open("wb") as log:
            primero = arrancar(env, log)
        # Wait until the first payments are at the gateway (1.5 s each, 5 at a time), then SIGTERM.
        deadline = time.monotonic() + 30
        while not sim.simulador._en_curso and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        en_curso = len(sim.simulador._en_curso)
        assert en_curso > 0
        primero.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(primero.wait, 20) == 0
        pagados_al_parar = len(sim.simulador.ledger.transfers)
        assert pagados_al_parar >= en_curso  # what was at the gateway finished
        assert pagados_al_parar < len(ids)  # and intake had stopped
        log_primero = (tmp_path / "primero.log").read_text()
        assert "worker.drenando" in log_primero
        assert "Traceback" not in log_primero

        with (tmp_path / "segundo.log").open("wb") as log:
            segundo = arrancar(env, log)
        try:
            recibidos = await asyncio.to_thread(pulsar_helpers.receive, events, len(ids), 30)
            recibidos += await asyncio.to_thread(pulsar_helpers.receive, events, 1, 1)  # nothing more
            # A worker-only process answers the operations routes on its own port, and no API route.
            base = f"http://127.0.0.1:{env['PAGOS_HTTP_PORT']}"
            async with aiohttp.ClientSession() as http:
                for ruta, status in (("/healthz", 200), ("/readyz", 200), ("/metrics", 200), ("/pagos/atencion", 404)):
                    async with http.get(base + ruta) as resp:
                        assert resp.status == status, ruta
                async with http.get(base + "/metrics") as resp:
                    assert "pagos_finales_total" in await resp.text()
        finally:
            segundo.send_signal(signal.SIGTERM)
            await asyncio.to_thread(segundo.wait, 20)
        eventos = [contrato_helpers.evento(m.data(), m.properties(), m.partition_key()) for m in recibidos]
        assert sorted(e["data"]["id_pago"] for e in eventos) == sorted(ids)
        por_pago = {}
        for transfer in sim.simulador.ledger.transfers.values():
            por_pago.setdefault(transfer.metadata["id_pago"], []).append(transfer.id)
        assert sorted(por_pago) == sorted(ids)
        assert all(len(t) == 1 for t in por_pago.values())
        observer.close()
