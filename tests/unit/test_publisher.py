"""The Pulsar publisher's bookkeeping, against a stand-in for the client's native producer: what
it may send while earlier messages could still be in the client's queue, and when it must not."""

from __future__ import annotations

import asyncio

import pulsar
import pytest

from pagos_worker.adapters.pulsar import publisher as modulo
from pagos_worker.adapters.pulsar.publisher import PublishError, PulsarPublisher
from pagos_worker.application.ports.outbox import PlainMessage
from tests.fakes import hasta
from tests.tiempo_virtual import tiempo_virtual


class Nativo:
    """Queues what is sent; the test decides what each flush answers."""

    def __init__(self) -> None:
        self.enviados = 0
        self.flushes: list[object] = []
        self.conectado = True

    def send_async(self, _msg: object, callback: object) -> None:
        assert callback is None  # one confirmation per lot
        self.enviados += 1

    def flush_async(self, callback: object) -> None:
        self.flushes.append(callback)

    def responder(self, resultado: pulsar.Result) -> None:
        self.flushes.pop(0)(resultado)


class Productor:
    def __init__(self) -> None:
        self._producer = Nativo()

    def is_connected(self) -> bool:
        return self._producer.conectado


def lote(n: int) -> list[PlainMessage]:
    return [PlainMessage(payload=b"e%d" % i, key="k", properties={"event_id": str(i)}) for i in range(n)]


@tiempo_virtual
async def test_un_lote_confirmado_deja_sitio_al_instante(monkeypatch):
    monkeypatch.setattr(modulo, "MAX_PENDING", 10)
    productor = Productor()
    publisher = PulsarPublisher(productor, send_timeout_seconds=0.1)
    primero = asyncio.create_task(publisher.publicar(lote(8)))
    await hasta(lambda: productor._producer.flushes)
    productor._producer.responder(pulsar.Result.Ok)
    await primero
    loop = asyncio.get_running_loop()
    inicio = loop.time()
    await asyncio.wait_for(_segundo_confirmado(publisher, productor), 1)
    assert loop.time() - inicio < 0.1  # room at once (a few polls), not after a hold of 1.1 s
    assert productor._producer.enviados == 13


async def _segundo_confirmado(publisher: PulsarPublisher, productor: Productor) -> None:
    segundo = asyncio.create_task(publisher.publicar(lote(5)))
    await hasta(lambda: productor._producer.flushes)
    productor._producer.responder(pulsar.Result.Ok)
    await segundo


@tiempo_virtual
async def test_un_lote_sin_confirmar_guarda_su_sitio_hasta_que_sus_mensajes_salieron_de_la_cola(monkeypatch):
    """A flush refused while the producer reconnects leaves its messages queued in the client: if
    their place were given back at once, the queue could fill and the client refuse later messages
    with nobody told — and a later flush would confirm a lot missing some."""
    monkeypatch.setattr(modulo, "MAX_PENDING", 10)
    productor = Productor()
    publisher = PulsarPublisher(productor, send_timeout_seconds=0.2)  # kept for 1.2 s
    primero = asyncio.create_task(publisher.publicar(lote(8)))
    await hasta(lambda: productor._producer.flushes)
    productor._producer.responder(pulsar.Result.AlreadyClosed)
    with pytest.raises(PublishError):
        await primero
    loop = asyncio.get_running_loop()
    inicio = loop.time()
    segundo = asyncio.create_task(publisher.publicar(lote(5)))
    await asyncio.sleep(1.1)
    assert productor._producer.enviados == 8  # still waiting for room
    await hasta(lambda: productor._producer.flushes)
    assert loop.time() - inicio == pytest.approx(1.2, abs=0.01)  # the hold, then room
    productor._producer.responder(pulsar.Result.Ok)
    await segundo
    assert productor._producer.enviados == 13


async def test_sin_conexion_no_encola_nada():
    productor = Productor()
    productor._producer.conectado = False
    publisher = PulsarPublisher(productor, send_timeout_seconds=1)
    with pytest.raises(PublishError, match="no está conectado"):
        await publisher.publicar(lote(3))
    assert productor._producer.enviados == 0
