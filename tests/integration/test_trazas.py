"""A command's trace context against the real things: stored in PostgreSQL's outbox and read back by
the relays, and through the service as `bootstrap` wires it — a command with a traceparent on the
broker, its event on the broker with the same trace — without tracing (carried as it came) and with
spans recorded in memory (three, with their parentage)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from pagos_worker.application.ports.tracing import TraceContext
from pagos_worker.bootstrap import bootstrap
from pagos_worker.config import Settings
from pagos_worker.domain import Dinero, Lease, Moneda, Pago
from pagos_worker.entrypoints.service import command_worker
from tests import contrato_helpers, pulsar_helpers
from tests.fakes import FakePasarelaDePagos

pytestmark = pytest.mark.integration

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


def pago_final() -> Pago:
    ahora = datetime.now(UTC)
    pago = Pago.crear(id_pago=uuid.uuid4(), id_afiliado="a", importe=Dinero(Decimal("5.00"), Moneda.EUR), ahora=ahora)
    pago.iniciar_procesamiento(Lease("w1", ahora + timedelta(seconds=30)), ahora)
    return pago


async def test_el_outbox_guarda_el_contexto_y_el_relay_lo_lee(postgres):
    repo, outbox = postgres.repo(), postgres.outbox()
    traza = TraceContext.leer(TRACEPARENT, "rojo=1,verde=2")
    reclamados = [(await repo.reclamar(pago_final())).pago for _ in range(3)]
    for pago in reclamados:
        pago.marcar_exitoso("tr_1", datetime.now(UTC))
    contextos = [traza, None, traza]
    # Together, so that they share group commits: each event must get its own payment's context.
    escritos = await asyncio.gather(*(repo.guardar_resultado(p, t) for p, t in zip(reclamados, contextos, strict=True)))
    assert [[(e.traceparent, e.tracestate) for e in eventos] for eventos in escritos] == [
        [(TRACEPARENT, "rojo=1,verde=2")],
        [(None, None)],
        [(TRACEPARENT, "rojo=1,verde=2")],
    ]
    async with outbox.reservar_pendientes(10) as lote:
        leidos = {e.event_id: e for e in lote.eventos}
    for [escrito] in escritos:
        assert (leidos[escrito.event_id].traceparent, leidos[escrito.event_id].tracestate) == (
            escrito.traceparent,
            escrito.tracestate,
        )
        assert leidos[escrito.event_id].properties == escrito.properties


async def recorrer(settings: Settings, propiedades: dict[str, str], exportador=None) -> dict[str, str]:
    """One command with `propiedades` through the service as bootstrap wires it (worker and relay
    roles; a fake gateway), and the properties of its event as read off the events topic."""
    observer = pulsar_helpers.client(settings.pulsar_url)
    try:
        eventos = pulsar_helpers.subscribe(observer, settings.events_topic)
        id_pago = str(uuid.uuid4())
        data = json.dumps({"id_pago": id_pago, "id_afiliado": "a", "monto": "3.00", "moneda": "USD"}).encode()
        contrato_helpers.comando(data, propiedades, id_pago)
        roles = frozenset({"worker", "relay"})
        async with bootstrap(settings, roles, pasarela=FakePasarelaDePagos(), exportador_de_trazas=exportador) as s:
            worker = command_worker(s)
            assert worker is not None
            stop = asyncio.Event()
            tarea = asyncio.create_task(worker.run(stop, drain_timeout=5))
            observer.create_producer(settings.commands_topic).send(data, partition_key=id_pago, properties=propiedades)
            [evento] = await asyncio.to_thread(pulsar_helpers.receive, eventos, 1, 20)
            stop.set()
            await tarea
            if s.publicacion is not None:
                await s.publicacion.drenar(5)
        contrato_helpers.evento(evento.data(), evento.properties(), evento.partition_key())
        assert json.loads(evento.data())["data"]["id_pago"] == id_pago
        return dict(evento.properties())
    finally:
        observer.close()


@pytest.fixture
async def settings(postgres_server, pulsar_url, topics) -> Settings:
    from tests.conftest import create_database  # noqa: PLC0415 - the session's server, a database of its own

    return Settings(
        database_url=await create_database(postgres_server),
        pulsar_url=pulsar_url,
        commands_topic=topics.commands,
        events_topic=topics.events,
        dlq_topic=topics.dlq,
        db_pool_size=2,
        otel_endpoint=None,
    )


async def test_sin_trazas_el_evento_lleva_el_traceparent_tal_como_llego(settings):
    propiedades = await recorrer(settings, {"traceparent": TRACEPARENT, "tracestate": "rojo=1"})
    assert (propiedades["traceparent"], propiedades["tracestate"]) == (TRACEPARENT, "rojo=1")


async def test_con_trazas_en_memoria_tres_spans_y_el_evento_en_la_misma_traza(settings):
    exportador = InMemorySpanExporter()
    propiedades = await recorrer(settings, {"traceparent": TRACEPARENT}, exportador)
    spans = {s.kind: s for s in exportador.get_finished_spans()}  # exported when the service closed
    assert sorted(spans, key=lambda k: k.value) == [SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER]
    consumo, llamada, envio = spans[SpanKind.CONSUMER], spans[SpanKind.CLIENT], spans[SpanKind.PRODUCER]
    assert {f"{s.context.trace_id:032x}" for s in spans.values()} == {TRACE_ID}
    assert consumo.parent is not None
    assert f"{consumo.parent.span_id:016x}" == PARENT_ID
    assert consumo.attributes["messaging.destination.name"] == settings.commands_topic
    assert llamada.parent is not None
    assert llamada.parent.span_id == consumo.context.span_id
    assert envio.parent is not None
    assert envio.parent.span_id == consumo.context.span_id
    # The event is in the same trace, the child of its publication.
    assert propiedades["traceparent"] == f"00-{TRACE_ID}-{envio.context.span_id:016x}-01"
    assert consumo.resource.attributes["service.name"] == "pagos-worker"
