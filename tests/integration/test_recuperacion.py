"""Recovery against the real things: a payment stuck after a crash is resolved by the reconciler
with the same idempotency key (the gateway replays; nothing is paid twice), and a poison command
is recorded and ends on the dead-letter topic after a bounded number of failures of its own."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import SecretStr

from pagos_worker.adapters.postgres.fallos import PostgresFailureLog
from pagos_worker.adapters.postgres.views import PostgresPagoViews
from pagos_worker.adapters.pulsar.client import PulsarConnection
from pagos_worker.adapters.stripe.adapter import Destinos, StripeConfig, StripePasarelaDePagos
from pagos_worker.application.handlers import ProcesarPagoHandler
from pagos_worker.application.reconciliador import Reconciliador
from pagos_worker.bootstrap import es_transitorio
from pagos_worker.domain import Dinero, EstadoPago, Lease, Moneda, Pago
from pagos_worker.entrypoints.worker import CommandWorker
from tests import pulsar_helpers
from tests.conftest import envejecer_pago
from tests.simulador_helpers import simulador_en_marcha

pytestmark = pytest.mark.integration


async def test_un_pago_atascado_se_resuelve_con_la_misma_clave_sin_pagar_dos_veces(postgres):
    repo = postgres.repo()
    ahora = datetime.now(UTC)
    pago = Pago.crear(id_pago=uuid.uuid4(), id_afiliado="afiliado_7", importe=Dinero(Decimal("42.00"), Moneda.EUR),
                      ahora=ahora - timedelta(minutes=10))  # fmt: skip
    pago.iniciar_procesamiento(Lease("worker-muerto", ahora - timedelta(minutes=9)), ahora - timedelta(minutes=10))
    pago = (await repo.reclamar(pago)).pago
    await envejecer_pago(postgres.engine, pago.id_pago, timedelta(minutes=10))  # claimed 10 min ago
    async with simulador_en_marcha() as sim:
        config = StripeConfig(api_base=sim.url, secret_key=SecretStr("sk_test_r"), timeout_s=2)
        async with StripePasarelaDePagos(config, Destinos(template="acct_{id_afiliado}")) as pasarela:
            # The dead worker had paid before it died: the transfer exists, its outcome never stored.
            en_vida = dataclasses.replace(pago, lease=Lease("worker-muerto", ahora + timedelta(minutes=1)))
            primero = await pasarela.procesar_pago(en_vida)
            handler = ProcesarPagoHandler(repo, pasarela, owner="reconciliador", lease=timedelta(seconds=30))
            reconciliador = Reconciliador(repo, handler, gracia=timedelta(minutes=5))
            assert await reconciliador.reconciliar() == {"procesado": 1}
            assert await reconciliador.reconciliar() == {}
            guardado = await repo.obtener(pago.id_pago)
            assert guardado.estado is EstadoPago.EXITOSO
            assert guardado.referencia_pago == primero.referencia_pago
            assert len(sim.simulador.ledger.transfers) == 1
            # Found by the lookup before the retry (transfer_group), not replayed under the key.
            assert sim.simulador.contadores["replay"] == 0


async def test_un_comando_venenoso_queda_registrado_y_acaba_en_la_dlq_tras_cinco_fallos(pulsar_url, topics, postgres):
    entregas = []

    async def procesar(cmd):
        entregas.append(cmd.id_pago)
        raise ZeroDivisionError("un bug que no se cura reintentando")

    observer = pulsar_helpers.client(pulsar_url)
    dlq_consumer = pulsar_helpers.subscribe(observer, topics.dlq)
    id_pago = uuid.uuid4()
    data = json.dumps({"id_pago": str(id_pago), "id_afiliado": "a", "monto": "1.00", "moneda": "USD"}).encode()
    observer.create_producer(topics.commands).send(data)

    conn = PulsarConnection(pulsar_url)
    source = await conn.command_source(topics.commands, "pagos-worker", capacity=2, nack_delay_seconds=0.1)
    dlq = await conn.publisher(topics.dlq)
    fallos = PostgresFailureLog(postgres.engine)
    stop = asyncio.Event()
    worker = CommandWorker(source, procesar, dlq, es_transitorio=es_transitorio, fallos=fallos, max_intentos=5)
    tarea = asyncio.create_task(worker.run(stop, drain_timeout=2))
    [muerto] = await asyncio.to_thread(pulsar_helpers.receive, dlq_consumer, 1, 20)
    assert muerto.data() == data
    assert muerto.properties()["motivo"] == "error_repetido"
    assert "ZeroDivisionError" in muerto.properties()["detalle"]
    assert len(entregas) == 5
    # Recorded for operators, found by its payment (which was never stored).
    registro = await PostgresPagoViews(postgres.engine).comando_venenoso(id_pago)
    assert registro is not None
    assert (registro.fallos, registro.message_id) == (5, muerto.properties()["message_id_origen"])
    assert "ZeroDivisionError" in registro.ultimo_error
    stop.set()
    await tarea
    for closable in (source, dlq, conn):
        await closable.close()
    observer.close()
