"""The `CommandSource` contract, run against the fake and against a Pulsar subscription on the real
broker alike: what the worker relies on for backpressure and at-least-once delivery."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from pagos_worker.adapters.pulsar.client import PulsarConnection
from tests import pulsar_helpers
from tests.fake_command_source import FakeCommandSource
from tests.fakes import hasta

NACK_S = 0.2
VENTANA_S = 0.5  # how long "nothing more is delivered" is watched for


class Receptor:
    """The worker's side: what was delivered, and on which thread."""

    def __init__(self) -> None:
        self.entregas = []
        self.hilos: set[int] = set()

    def __call__(self, entrega) -> None:
        self.hilos.add(threading.get_ident())
        self.entregas.append(entrega)

    def datos(self) -> list[bytes]:
        return sorted(e.data for e in self.entregas)

    async def esperar(self, n: int) -> None:
        await hasta(lambda: len(self.entregas) >= n)

    async def solo(self, n: int) -> None:
        """Exactly `n` delivered, and still so after watching for more (absence cannot be polled)."""
        await asyncio.sleep(VENTANA_S)
        assert len(self.entregas) == n, [e.data for e in self.entregas]


class FakeSubject:
    topic = "persistent://t/comandos-contrato"
    sin_reparto = "the fake is one consumer of its own subscription: replicas sharing one are Pulsar's to prove"

    def __init__(self) -> None:
        self._source: FakeCommandSource | None = None
        self._antes: list[tuple[bytes, str | None, dict[str, str] | None]] = []

    async def abrir(self, capacity: int = 100) -> FakeCommandSource:
        self._source = FakeCommandSource(capacity=capacity, nack_delay=NACK_S, topic=self.topic)
        for data, key, properties in self._antes:
            self._source.publicar(data, key=key, properties=properties)
        return self._source

    async def reabrir(self, source: FakeCommandSource, capacity: int = 100) -> FakeCommandSource:
        await source.stop_receiving()
        await source.close()
        return source  # started again, it is the subscription's next consumer

    async def publicar(self, data: bytes, key: str | None = None, properties: dict[str, str] | None = None) -> None:
        if self._source is None:
            self._antes.append((data, key, properties))
        else:
            self._source.publicar(data, key=key, properties=properties)

    async def cerrar(self) -> None:
        return None


class PulsarSubject:
    sin_reparto = None

    def __init__(self, url: str, topic: str) -> None:
        self.topic = topic
        self._conn = PulsarConnection(url)
        self._observer = pulsar_helpers.client(url)
        self._producer = self._observer.create_producer(topic)
        self._sources = []

    async def abrir(self, capacity: int = 100):
        source = await self._conn.command_source(self.topic, "contrato", capacity=capacity, nack_delay_seconds=NACK_S)
        self._sources.append(source)
        return source

    async def reabrir(self, source, capacity: int = 100):
        await source.stop_receiving()
        await source.close()
        self._sources.remove(source)
        return await self.abrir(capacity)

    async def publicar(self, data: bytes, key: str | None = None, properties: dict[str, str] | None = None) -> None:
        kwargs = {"partition_key": key} if key is not None else {}
        await asyncio.to_thread(self._producer.send, data, properties=properties, **kwargs)

    async def cerrar(self) -> None:
        for source in self._sources:
            await source.stop_receiving()
            await source.close()
        self._producer.close()
        self._observer.close()
        await self._conn.close()


@pytest.fixture(params=["fake", pytest.param("pulsar", marks=[pytest.mark.integration, pytest.mark.broker])])
def implementacion(request) -> tuple[str, str, str]:
    if request.param == "fake":
        return "fake", "", ""
    return "pulsar", request.getfixturevalue("pulsar_url"), request.getfixturevalue("topics").commands


@pytest.fixture
async def subject(implementacion):
    nombre, url, topic = implementacion
    subject = FakeSubject() if nombre == "fake" else PulsarSubject(url, topic)
    yield subject
    await subject.cerrar()


async def empezar(subject, capacity: int = 100):
    source, receptor = await subject.abrir(capacity), Receptor()
    source.start(asyncio.get_running_loop(), receptor)
    return source, receptor


async def empezar_asentando(subject, capacity: int) -> Receptor:
    """A consumer that acks each delivery as it comes."""
    source, receptor = await subject.abrir(capacity), Receptor()

    def deliver(entrega) -> None:
        receptor(entrega)
        source.ack(entrega)
        source.release()

    source.start(asyncio.get_running_loop(), deliver)
    return receptor


def asentar(source, entregas) -> None:
    for entrega in entregas:
        source.ack(entrega)
        source.release()


async def test_cada_comando_publicado_se_entrega_una_vez_en_el_hilo_del_loop(subject):
    for i in range(5):
        await subject.publicar(b"antes%d" % i)
    source, receptor = await empezar(subject)
    for i in range(5):
        await subject.publicar(b"despues%d" % i)
    await receptor.esperar(10)
    asentar(source, receptor.entregas)
    await receptor.solo(10)
    assert receptor.datos() == sorted([b"antes%d" % i for i in range(5)] + [b"despues%d" % i for i in range(5)])
    assert receptor.hilos == {threading.get_ident()}


async def test_una_entrega_trae_el_mensaje_como_se_publico(subject):
    antes_ms = int(time.time() * 1000)
    await subject.publicar(b'{"a": 1}', key="clave", properties={"trace": "t1", "detalle": "Año"})
    await subject.publicar(b"\x00sin clave")
    source, receptor = await empezar(subject)
    await receptor.esperar(2)
    despues_ms = int(time.time() * 1000)
    con_clave, sin_clave = sorted(receptor.entregas, key=lambda e: e.data, reverse=True)
    assert (con_clave.data, con_clave.key, con_clave.properties) == (
        b'{"a": 1}',
        "clave",
        {"trace": "t1", "detalle": "Año"},
    )
    assert (sin_clave.data, sin_clave.key, sin_clave.properties) == (b"\x00sin clave", None, {})
    for entrega in receptor.entregas:
        assert entrega.redelivery_count == 0
        assert entrega.topic == subject.topic
        assert antes_ms - 1000 <= entrega.publicado_ms <= despues_ms + 1000  # ms since the epoch
        assert isinstance(entrega.message_id, str)
        assert entrega.message_id
    assert con_clave.message_id != sin_clave.message_id
    asentar(source, receptor.entregas)


async def test_lo_confirmado_no_se_entrega_otra_vez(subject):
    await subject.publicar(b"uno")
    await subject.publicar(b"dos")
    source, receptor = await empezar(subject)
    await receptor.esperar(2)
    asentar(source, receptor.entregas)
    await receptor.solo(2)
    # Nor to the subscription's next consumer: the acks were kept.
    otra, siguiente = await subject.reabrir(source), Receptor()
    otra.start(asyncio.get_running_loop(), siguiente)
    await subject.publicar(b"tres")
    await siguiente.esperar(1)
    await siguiente.solo(1)
    assert siguiente.datos() == [b"tres"]
    asentar(otra, siguiente.entregas)


async def test_lo_devuelto_vuelve_con_una_entrega_mas_a_su_cuenta(subject):
    await subject.publicar(b"otra vez", key="k", properties={"p": "v"})
    source, receptor = await empezar(subject)
    for n in (1, 2, 3):
        await receptor.esperar(n)
        source.nack(receptor.entregas[-1])
        source.release()
    await receptor.esperar(4)
    primera, *vueltas = receptor.entregas
    assert [e.redelivery_count for e in receptor.entregas] == [0, 1, 2, 3]
    for vuelta in vueltas:
        assert (vuelta.data, vuelta.key, vuelta.properties) == (b"otra vez", "k", {"p": "v"})
        assert vuelta.message_id == primera.message_id  # the same message, again
    asentar(source, receptor.entregas[-1:])
    await receptor.solo(4)


async def test_a_lo_sumo_capacity_entregas_fuera_hasta_que_se_liberan(subject):
    for i in range(6):
        await subject.publicar(b"c%d" % i)
    source, receptor = await empezar(subject, capacity=3)
    await receptor.esperar(3)
    await receptor.solo(3)
    source.ack(receptor.entregas[0])  # settled, but its slot not yet given back
    await receptor.solo(3)
    source.release()
    await receptor.esperar(4)
    await receptor.solo(4)
    asentar(source, receptor.entregas[1:4])
    await receptor.esperar(6)
    asentar(source, receptor.entregas[4:])
    assert receptor.datos() == [b"c%d" % i for i in range(6)]


async def test_tras_stop_receiving_no_se_entrega_nada_y_nada_se_pierde(subject):
    source, receptor = await empezar(subject)
    for i in range(3):
        await subject.publicar(b"a%d" % i)
    await source.stop_receiving()  # some may be on their way: none may arrive after this returns
    entregadas = len(receptor.entregas)
    for i in range(2):
        await subject.publicar(b"b%d" % i)
    await receptor.solo(entregadas)
    asentar(source, receptor.entregas)  # settling still works after intake stopped
    # What was not delivered waits for the subscription's next consumer.
    otra, siguiente = await subject.reabrir(source), Receptor()
    otra.start(asyncio.get_running_loop(), siguiente)
    await siguiente.esperar(5 - entregadas)
    asentar(otra, siguiente.entregas)
    assert sorted(receptor.datos() + siguiente.datos()) == [b"a0", b"a1", b"a2", b"b0", b"b1"]


async def test_lo_no_asentado_se_entrega_otra_vez_al_siguiente_consumidor(subject):
    for i in range(3):
        await subject.publicar(b"p%d" % i)
    source, receptor = await empezar(subject)
    await receptor.esperar(3)
    confirmado, *pendientes = sorted(receptor.entregas, key=lambda e: e.data)
    asentar(source, [confirmado])
    otra, siguiente = await subject.reabrir(source), Receptor()  # the process died, say
    otra.start(asyncio.get_running_loop(), siguiente)
    await siguiente.esperar(2)
    await siguiente.solo(2)
    assert siguiente.datos() == [e.data for e in pendientes]
    # Whether a consumer's going counts as a delivery is the broker's: Apache Pulsar keeps the count
    # (it counts negative acks), pulsar-lite adds one. The contract only needs "not fewer".
    antes = {e.data: e.redelivery_count for e in pendientes}
    assert all(e.redelivery_count >= antes[e.data] for e in siguiente.entregas)
    asentar(otra, siguiente.entregas)


async def test_dos_consumidores_de_una_suscripcion_se_reparten_los_comandos(subject):
    if subject.sin_reparto:
        pytest.skip(subject.sin_reparto)
    a, b = await empezar_asentando(subject, capacity=2), await empezar_asentando(subject, capacity=2)
    for i in range(20):
        await subject.publicar(b"r%02d" % i)
    await hasta(lambda: len(a.entregas) + len(b.entregas) >= 20)
    await asyncio.sleep(VENTANA_S)  # watching for a second delivery of any
    assert sorted(a.datos() + b.datos()) == [b"r%02d" % i for i in range(20)]  # each to one of them
