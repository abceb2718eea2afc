import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.application.relay import ImmediatePublisher, OutboxRelay
from tests.fake_outbox import FakeOutboxStore
from tests.fakes import FakePublisher, hasta
from tests.tiempo_virtual import tiempo_virtual


def eventos(n: int, desde: int = 1) -> list[OutboxEvent]:
    return [
        OutboxEvent(id=i, event_id=uuid.uuid4(), event_type="PagoExitoso", id_pago=uuid.uuid4(), payload=b"{%d}" % i)
        for i in range(desde, desde + n)
    ]


async def test_publica_en_orden_con_clave_y_propiedades_y_marca():
    pendientes = eventos(3)
    store, publisher = FakeOutboxStore(pendientes), FakePublisher()
    assert await OutboxRelay(store, publisher, lote=10).publicar_pendientes() == 3
    assert [m.payload for m in publisher.mensajes] == [b"{1}", b"{2}", b"{3}"]
    primero = publisher.mensajes[0]
    assert primero.key == str(pendientes[0].id_pago)
    assert primero.properties == {"event_type": "PagoExitoso", "event_id": str(pendientes[0].event_id)}
    assert store.pendientes == []


async def test_si_el_broker_falla_nada_se_marca():
    store, publisher = FakeOutboxStore(eventos(2)), FakePublisher(fallos=1)
    relay = OutboxRelay(store, publisher)
    with pytest.raises(ConnectionError):
        await relay.publicar_pendientes()
    assert len(store.pendientes) == 2
    assert await relay.publicar_pendientes() == 2


async def test_vaciar_publica_por_lotes_hasta_el_final():
    store, publisher = FakeOutboxStore(eventos(25)), FakePublisher()
    assert await OutboxRelay(store, publisher, lote=10).vaciar() == 25
    assert [m.payload for m in publisher.mensajes] == [b"{%d}" % i for i in range(1, 26)]


@tiempo_virtual
async def test_run_reintenta_tras_fallos_y_despierta_con_nuevos_eventos():
    """On virtual time, so that "soon" is the relay's own waits (its backoff, its poll), not how
    busy this machine is."""
    store, publisher = FakeOutboxStore(eventos(1)), FakePublisher(fallos=2)
    stop = asyncio.Event()
    relay = OutboxRelay(store, publisher, intervalo=30)
    task = asyncio.create_task(relay.run(stop))
    await hasta(lambda: publisher.mensajes, segundos=1)  # two backoffs: 0.2 s and 0.4 s at most
    assert len(publisher.mensajes) == 1
    store.agregar(eventos(1, desde=2))  # its commit wakes the relay: no waiting for the 30 s poll
    await hasta(lambda: len(publisher.mensajes) == 2, segundos=1)
    stop.set()
    await asyncio.wait_for(task, 1)


class TiendaConViejos(FakeOutboxStore):
    def __init__(self, viejos: int) -> None:
        super().__init__()
        self.viejos = viejos
        self.llamadas: list[tuple[object, int]] = []

    async def borrar_publicados(self, antes_de, limite):
        self.llamadas.append((antes_de, limite))
        borrados = min(limite, self.viejos)
        self.viejos -= borrados
        return borrados


async def test_limpiar_borra_por_lotes_lo_publicado_antes_de_la_retencion():
    ahora = datetime(2026, 11, 28, tzinfo=UTC)
    store = TiendaConViejos(12_000)
    relay = OutboxRelay(store, FakePublisher(), retencion=timedelta(days=7), reloj=lambda: ahora)
    assert await relay.limpiar(lote=5000) == 12_000
    assert [limite for _, limite in store.llamadas] == [5000, 5000, 5000]
    assert {antes for antes, _ in store.llamadas} == {ahora - timedelta(days=7)}


async def test_publicacion_inmediata_publica_y_marca_lo_recien_confirmado():
    confirmados = eventos(3)
    store, publisher = FakeOutboxStore(), FakePublisher()
    store.agregar(confirmados, publicador="w1")
    inmediata = ImmediatePublisher(store, publisher)
    inmediata.encolar(confirmados)  # returns at once: the commit's caller does not wait for the broker
    assert publisher.mensajes == []
    await hasta(lambda: len(store.publicados) == 3)
    assert [m.payload for m in publisher.mensajes] == [b"{1}", b"{2}", b"{3}"]
    assert publisher.mensajes[0].properties == {"event_type": "PagoExitoso", "event_id": str(confirmados[0].event_id)}
    assert store.publicados == confirmados
    assert inmediata.en_curso == 0


async def test_publicacion_inmediata_sin_broker_no_marca_y_lo_deja_al_relay():
    store, publisher = FakeOutboxStore(), FakePublisher(fallos=1)
    store.agregar(eventos(2), publicador="w1")
    inmediata = ImmediatePublisher(store, publisher)
    inmediata.encolar(store.pendientes)
    await inmediata.drenar(2)
    assert publisher.mensajes == []
    assert len(store.pendientes) == 2  # still pending in the outbox: a relay takes them after the grace period


async def test_publicacion_inmediata_sin_marca_no_pierde_nada_ni_falla():
    store, publisher = FakeOutboxStore(eventos(1)), FakePublisher()
    store.fallos_al_marcar = 1
    inmediata = ImmediatePublisher(store, publisher)
    inmediata.encolar(store.pendientes)
    await inmediata.drenar(2)
    assert len(publisher.mensajes) == 1  # published; unmarked, so published again later (same event_id)
    assert store.publicados == []


async def test_drenar_espera_lo_que_se_esta_publicando():
    store = FakeOutboxStore(eventos(1))

    class Lento(FakePublisher):
        async def publicar(self, mensajes):
            await asyncio.sleep(0.1)
            await super().publicar(mensajes)

    inmediata = ImmediatePublisher(store, Lento())
    inmediata.encolar(store.pendientes)
    await inmediata.drenar(5)
    assert len(store.publicados) == 1


async def test_el_relay_deja_lo_ajeno_la_gracia_y_lo_propio_solo_al_vaciar():
    ahora = datetime.now(UTC)
    mio, ajeno, de_nadie, ajeno_viejo = (dataclasses.replace(e, creado_en=ahora) for e in eventos(4))
    store, publisher = FakeOutboxStore(), FakePublisher()
    store.agregar([mio], publicador="yo")
    store.agregar([ajeno], publicador="otro")
    store.agregar([de_nadie])
    store.agregar([dataclasses.replace(ajeno_viejo, creado_en=ahora - timedelta(seconds=8))], publicador="otro")
    relay = OutboxRelay(store, publisher, gracia=timedelta(seconds=7), propio="yo")
    assert await relay.publicar_pendientes() == 2
    assert [m.payload for m in publisher.mensajes] == [de_nadie.payload, ajeno_viejo.payload]
    assert await relay.vaciar() == 1
    assert publisher.mensajes[-1].payload == mio.payload
    assert store.pendientes == [ajeno]  # still the other process's for its grace period


async def test_publicacion_inmediata_reintenta_durante_una_caida_corta_del_broker():
    store, publisher = FakeOutboxStore(), FakePublisher(fallos=2)
    inmediata = ImmediatePublisher(store, publisher, reintentar_durante=timedelta(seconds=5))
    recientes = [dataclasses.replace(e, creado_en=datetime.now(UTC)) for e in eventos(2)]
    store.agregar(recientes, publicador="w1")
    inmediata.encolar(recientes)
    await inmediata.drenar(5)
    assert len(publisher.mensajes) == 2  # third attempt
    assert store.publicados == recientes


async def test_publicacion_inmediata_no_reintenta_lo_que_ya_es_de_los_relays():
    store, publisher = FakeOutboxStore(), FakePublisher(fallos=1)
    inmediata = ImmediatePublisher(store, publisher, reintentar_durante=timedelta(seconds=5))
    viejos = [dataclasses.replace(e, creado_en=datetime.now(UTC) - timedelta(seconds=10)) for e in eventos(1)]
    store.agregar(viejos, publicador="w1")
    inmediata.encolar(viejos)
    await inmediata.drenar(2)
    assert publisher.mensajes == []
    assert store.pendientes == viejos
