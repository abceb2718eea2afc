"""The Pulsar adapters against a real broker (pulsar-lite unless PAGOS_TEST_PULSAR_URL is set)."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid

import pytest

from pagos_dev.embedded.pulsar import EmbeddedPulsar
from pagos_dev.tools.observador import Publicador
from pagos_worker.adapters.pulsar.client import PulsarConnection
from pagos_worker.adapters.pulsar.publisher import PublishError
from pagos_worker.application.handlers import PROCESADO
from pagos_worker.application.ports.outbox import PlainMessage
from pagos_worker.bootstrap import es_transitorio
from pagos_worker.entrypoints.worker import CommandWorker
from tests import pulsar_helpers
from tests.conftest import free_port
from tests.fakes import FakeFailureLog, hasta

pytestmark = pytest.mark.integration


async def test_el_publisher_publica_en_orden_con_clave_y_propiedades(pulsar_url, topics):
    observer = pulsar_helpers.client(pulsar_url)
    consumer = pulsar_helpers.subscribe(observer, topics.events)
    conn = PulsarConnection(pulsar_url)
    publisher = await conn.publisher(topics.events)
    mensajes = [PlainMessage(payload=b"%d" % i, key=f"k{i}", properties={"event_id": str(i)}) for i in range(300)]
    await publisher.publicar(mensajes)
    recibidos = await asyncio.to_thread(pulsar_helpers.receive, consumer, 300, 30)
    assert [m.data() for m in recibidos] == [m.payload for m in mensajes]
    assert recibidos[7].partition_key() == "k7"
    assert recibidos[7].properties() == {"event_id": "7"}
    await publisher.close()
    await conn.close()
    observer.close()


async def test_el_publisher_con_confirmacion_por_mensaje(pulsar_url, topics):
    """The dead letters' way: a callback for each message."""
    observer = pulsar_helpers.client(pulsar_url)
    consumer = pulsar_helpers.subscribe(observer, topics.dlq)
    conn = PulsarConnection(pulsar_url)
    publisher = await conn.publisher(topics.dlq, per_lot=False)
    mensajes = [PlainMessage(payload=b"d%d" % i, key="", properties={"motivo": "x"}) for i in range(3)]
    await publisher.publicar(mensajes)
    recibidos = await asyncio.to_thread(pulsar_helpers.receive, consumer, 3, 30)
    assert [m.data() for m in recibidos] == [b"d0", b"d1", b"d2"]
    assert recibidos[0].properties() == {"motivo": "x"}
    await publisher.close()
    await conn.close()
    observer.close()


async def test_el_publisher_falla_si_el_broker_no_esta(tmp_path, topics):
    broker = EmbeddedPulsar(tmp_path, port=free_port())
    await broker.start()
    conn = PulsarConnection(broker.url)
    publisher = await conn.publisher(topics.events, send_timeout_seconds=1)
    await broker.stop()
    with pytest.raises(PublishError):
        await publisher.publicar([PlainMessage(payload=b"x", key="k", properties={})])
    await conn.close()


MALOS = {
    b"\xff\xfe": "no_utf8",
    b"{": "json_invalido",
    b"[]": "no_es_objeto",
    b'{"id_pago": "x"}': "campo_faltante",
    json.dumps(
        {"id_pago": str(uuid.uuid4()), "id_afiliado": "a", "monto": "1.00", "moneda": "USD", "x": 1}
    ).encode(): "campo_desconocido",
    json.dumps({"id_pago": "nope", "id_afiliado": "a", "monto": "1.00", "moneda": "USD"}).encode(): "id_pago_invalido",
    json.dumps(
        {"id_pago": str(uuid.uuid4()), "id_afiliado": "a", "monto": "1", "moneda": "XXX"}
    ).encode(): "moneda_no_soportada",
    json.dumps(
        {"id_pago": str(uuid.uuid4()), "id_afiliado": "a", "monto": "-1", "moneda": "USD"}
    ).encode(): "monto_no_positivo",
    json.dumps(
        {"id_pago": str(uuid.uuid4()), "id_afiliado": "a", "monto": "1.001", "moneda": "USD"}
    ).encode(): "demasiados_decimales",
    json.dumps(
        {"id_pago": str(uuid.uuid4()), "id_afiliado": "a", "monto": "1e99", "moneda": "USD"}
    ).encode(): "monto_invalido",
    json.dumps(
        {"id_pago": str(uuid.uuid4()), "id_afiliado": "a", "monto": 1e99, "moneda": "USD"}
    ).encode(): "monto_demasiado_grande",
}


async def test_comandos_malformados_van_a_la_dlq_sin_cambios_y_se_confirman(pulsar_url, topics):
    procesados = []

    async def procesar(cmd):
        procesados.append(cmd.id_pago)
        return PROCESADO

    observer = pulsar_helpers.client(pulsar_url)
    dlq_consumer = pulsar_helpers.subscribe(observer, topics.dlq)
    producer = observer.create_producer(topics.commands)
    bueno = json.dumps({"id_pago": str(uuid.uuid4()), "id_afiliado": "a", "monto": "1.00", "moneda": "USD"}).encode()
    for data in [*MALOS, bueno]:
        producer.send(data, properties={"trace": "t1"}, partition_key="clave")

    conn = PulsarConnection(pulsar_url)
    source = await conn.command_source(topics.commands, "pagos-worker", capacity=4, nack_delay_seconds=0.2)
    dlq = await conn.publisher(topics.dlq)
    stop = asyncio.Event()
    worker = asyncio.create_task(
        CommandWorker(source, procesar, dlq, es_transitorio=es_transitorio, fallos=FakeFailureLog()).run(
            stop, drain_timeout=5
        )
    )

    en_dlq = await asyncio.to_thread(pulsar_helpers.receive, dlq_consumer, len(MALOS), 15)
    assert {m.data(): m.properties()["motivo"] for m in en_dlq} == MALOS
    muestra = en_dlq[0].properties()
    assert muestra["trace"] == "t1"
    assert muestra["topic_origen"].endswith("-comandos")
    assert muestra["message_id_origen"]
    assert muestra["detalle"]
    assert {m.partition_key() for m in en_dlq} == {"clave"}
    await hasta(lambda: procesados)  # the valid command, sent last, may still be on its way
    assert len(procesados) == 1

    stop.set()
    await worker
    await source.close()
    # Everything was acknowledged: a new consumer on the subscription gets nothing back.
    source = await conn.command_source(topics.commands, "pagos-worker", capacity=4, nack_delay_seconds=0.2)
    again = await asyncio.to_thread(pulsar_helpers.receive, source._consumer, 1, 2)
    assert again == []
    await source.close()
    await dlq.close()
    await conn.close()
    observer.close()


async def test_el_publicador_del_bench_por_ticks_no_adelanta_ni_pierde_mensajes(pulsar_url, topics):
    """The benchmark's publisher at a fixed rate with a tick: nothing leaves before it is due, what
    is due goes out together once a tick, the rate holds, and every message arrives in order."""
    observer = pulsar_helpers.client(pulsar_url)
    try:
        consumer = pulsar_helpers.subscribe(observer, topics.commands)
        publicador = Publicador(observer, topics.commands, batching=True, por_lote=True, tick=0.02)
        mensajes = [(b"%d" % i, None) for i in range(200)]
        publicador.empezar(mensajes, rate=1000)
        assert await asyncio.to_thread(publicador.esperar, 10)
        # None early, so the rate holds: the last left at least 0.199 s after the first was due.
        assert all(e >= d for e, d in zip(publicador.enviados, publicador.debidos, strict=True))
        # Once a tick, not once a message: at 1,000/s and 20 ms, about twenty a wake-up.
        # (A message a millisecond, sent one by one, would make ~200 wake-ups.)
        tandas = 1 + sum(b - a > 0.0005 for a, b in itertools.pairwise(publicador.enviados))
        assert tandas <= 40  # 200 messages over 0.2 s in ticks of 20 ms: ~10
        recibidos = await asyncio.to_thread(pulsar_helpers.receive, consumer, 200, 30)
        assert [m.data() for m in recibidos] == [data for data, _ in mensajes]
        assert publicador.confirmados == 200
        publicador.cerrar()
    finally:
        observer.close()
