"""The `EventPublisher` contract, run against the fake and against Pulsar alike (both ways the Pulsar
publisher learns a lot was stored: one flush per lot for events, a callback per message for dead
letters). What the broker stored is read back with the plain pulsar client, as a consumer would."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest

from pagos_worker.adapters.pulsar import publisher as publisher_module
from pagos_worker.adapters.pulsar.client import PulsarConnection
from pagos_worker.adapters.pulsar.publisher import PublishError, PulsarPublisher
from pagos_worker.application.ports.outbox import OutboxEvent, PlainMessage
from tests import pulsar_helpers
from tests.fakes import FakePublisher

Leido = tuple[bytes, str, dict[str, str]]  # payload, key, properties


class FakeSubject:
    error = ConnectionError

    def __init__(self) -> None:
        self.publisher = FakePublisher()
        self._leidos = 0

    async def leer(self, n: int) -> list[Leido]:
        nuevos = self.publisher.mensajes[self._leidos : self._leidos + n]
        self._leidos += len(nuevos)
        return [(m.payload, m.key, dict(m.properties)) for m in nuevos]

    async def romper(self) -> None:
        self.publisher.fallos = 1  # scripted: the next lot is not stored

    async def con_cola(self, _mensajes: int) -> FakePublisher:
        return self.publisher  # it has no queue to overflow


class PulsarSubject:
    error = PublishError

    def __init__(self, conn: PulsarConnection, topic: str, *, per_lot: bool, observer, consumer) -> None:
        self._conn = conn
        self._topic = topic
        self._per_lot = per_lot
        self.publisher: PulsarPublisher
        self._observer = observer
        self._consumer = consumer
        self._roto = False
        self._otros = []

    async def leer(self, n: int) -> list[Leido]:
        mensajes = await asyncio.to_thread(pulsar_helpers.receive, self._consumer, n, 30)
        return [(m.data(), m.partition_key(), m.properties()) for m in mensajes]

    async def romper(self) -> None:
        await self.publisher.close()  # its producer closed: nothing more can be stored
        self._roto = True

    async def con_cola(self, mensajes: int) -> PulsarPublisher:
        """A publisher like this one whose producer queues at most `mensajes` (and, as
        PulsarConnection's, refuses more at once instead of blocking)."""
        producer = await asyncio.to_thread(
            self._conn._client.create_producer,
            self._topic,
            max_pending_messages=mensajes,
            block_if_queue_full=False,
            send_timeout_millis=10_000,
        )
        self._otros.append(producer)
        return PulsarPublisher(producer, send_timeout_seconds=10, per_lot=self._per_lot)

    async def cerrar(self) -> None:
        if not self._roto:
            await self.publisher.close()
        for producer in self._otros:
            await asyncio.to_thread(producer.close)
        await self._conn.close()
        self._observer.close()


@pytest.fixture(
    params=[
        "fake",
        pytest.param("pulsar", marks=[pytest.mark.integration, pytest.mark.broker]),
        pytest.param("pulsar_por_mensaje", marks=[pytest.mark.integration, pytest.mark.broker]),
    ]
)
def implementacion(request) -> tuple[str, str, str]:
    """Which one, and for Pulsar the broker and a topic of this test's (the broker is started only
    for Pulsar's cases)."""
    if request.param == "fake":
        return "fake", "", ""
    return request.param, request.getfixturevalue("pulsar_url"), request.getfixturevalue("topics").events


@pytest.fixture
async def subject(implementacion):
    nombre, pulsar_url, topic = implementacion
    if nombre == "fake":
        yield FakeSubject()
        return
    observer = pulsar_helpers.client(pulsar_url)
    consumer = pulsar_helpers.subscribe(observer, topic)
    conn = PulsarConnection(pulsar_url)
    pulsar = PulsarSubject(conn, topic, per_lot=nombre == "pulsar", observer=observer, consumer=consumer)
    pulsar.publisher = await conn.publisher(topic, per_lot=nombre == "pulsar")
    yield pulsar
    await pulsar.cerrar()


def mensajes(n: int, prefijo: str = "m") -> list[PlainMessage]:
    return [
        PlainMessage(payload=b"%s%d\x00\xff" % (prefijo.encode(), i), key=f"{prefijo}{i}", properties={"i": str(i)})
        for i in range(n)
    ]


def como_leidos(enviados: Sequence[PlainMessage | OutboxEvent]) -> list[Leido]:
    return [(m.payload, m.key, dict(m.properties)) for m in enviados]


async def test_publica_en_orden_con_su_clave_y_sus_propiedades(subject):
    lote = [
        *mensajes(50),
        PlainMessage(payload=b"", key="", properties={}),  # no key, no properties, no payload
        PlainMessage(payload=b"{}", key="clave con espacio", properties={"detalle": "Año: 5 €", "vacío": ""}),
    ]
    await subject.publisher.publicar(lote)
    assert await subject.leer(len(lote)) == como_leidos(lote)


async def test_acepta_eventos_del_outbox_y_mensajes_sueltos_en_un_mismo_lote(subject):
    evento = OutboxEvent(id=7, event_id=uuid.uuid4(), event_type="PagoFallido", id_pago=uuid.uuid4(), payload=b"{}")
    suelto = PlainMessage(payload=b"dlq", key="k", properties={"motivo": "json_invalido"})
    await subject.publisher.publicar([evento, suelto])
    assert await subject.leer(2) == [
        (b"{}", str(evento.id_pago), {"event_type": "PagoFallido", "event_id": str(evento.event_id)}),
        (b"dlq", "k", {"motivo": "json_invalido"}),
    ]


async def test_un_lote_vacio_no_publica_nada(subject):
    await subject.publisher.publicar([])
    await subject.publisher.publicar(mensajes(1, "despues"))
    assert await subject.leer(1) == como_leidos(mensajes(1, "despues"))  # the first thing stored


async def test_un_lote_mayor_que_la_cola_del_productor_llega_entero(subject, monkeypatch):
    """The Pulsar producer queues at most MAX_PENDING messages and refuses more at once, without
    a word when there is no callback per message: a larger lot must still arrive whole, in order.
    The queue is made small here: a fast broker empties a queue of 10,000 faster than it fills."""
    monkeypatch.setattr(publisher_module, "MAX_PENDING", 50)
    publisher = await subject.con_cola(50)
    lote = mensajes(5 * 50 + 7)
    await publisher.publicar(lote)
    assert await subject.leer(len(lote)) == como_leidos(lote)


async def test_lotes_a_la_vez_llegan_cada_uno_en_su_orden(subject):
    lotes = [mensajes(100, prefijo) for prefijo in ("a", "b", "c")]
    await asyncio.gather(*(subject.publisher.publicar(lote) for lote in lotes))
    leidos = await subject.leer(300)
    for lote in lotes:
        assert [m for m in leidos if m[1][0] == lote[0].key[0]] == como_leidos(lote)


async def test_si_el_broker_no_guarda_el_lote_publicar_lanza(subject):
    await subject.romper()
    with pytest.raises(subject.error):
        await subject.publisher.publicar(mensajes(3))
