"""A command's W3C trace context, without a tracer: read from its message by the worker, carried by
the handler to the outbox and on to its events' properties, and into the log lines of that payment
(not into those of the work it shares with others)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import structlog
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from pagos_worker.adapters.postgres.group_commit import GroupCommitter
from pagos_worker.application.handlers import ProcesarPagoHandler
from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.application.ports.tracing import TraceContext
from pagos_worker.application.relay import ImmediatePublisher
from tests.fake_command_source import FakeCommandSource
from tests.fake_outbox import FakeOutboxStore
from tests.fakes import FakePagoRepository, FakePasarelaDePagos, FakePublisher, hasta
from tests.unit.test_worker import nuevo_worker, valido

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class Pipeline:
    """Worker → handler → fake repository, with the events handed over right after their commit."""

    def __init__(self) -> None:
        self.repo = FakePagoRepository()
        self.eventos: list[OutboxEvent] = []
        self.handler = ProcesarPagoHandler(
            self.repo, FakePasarelaDePagos(), owner="w1", lease=timedelta(seconds=30), publicar=self.eventos.extend
        )
        self.source = FakeCommandSource()
        self.dlq = FakePublisher()

    async def procesar(self, *mensajes: tuple[bytes, dict[str, str]]) -> None:
        for data, propiedades in mensajes:
            self.source.publicar(data, properties=propiedades)
        stop = asyncio.Event()
        tarea = asyncio.create_task(nuevo_worker(self.source, self.handler, self.dlq).run(stop, drain_timeout=5))
        await hasta(lambda: len(self.source.acked) + len(self.source.nacked) == len(mensajes))
        stop.set()
        await tarea

    def evento_de(self, data: bytes) -> OutboxEvent:
        [evento] = [e for e in self.eventos if str(e.id_pago).encode() in data]
        return evento


async def test_el_traceparent_de_un_comando_llega_a_las_propiedades_de_su_evento():
    p = Pipeline()
    con, sin = valido(), valido()
    await p.procesar((con, {"traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE"}), (sin, {}))
    assert sorted(p.source.acked) == sorted([con, sin])
    evento = p.evento_de(con)
    assert evento.properties == {
        "event_type": "PagoExitoso",
        "event_id": str(evento.event_id),
        "traceparent": TRACEPARENT,  # without a tracer, as it came: same trace, same parent
        "tracestate": "congo=t61rcWkgMzE",
    }
    assert p.repo.trazas[evento.id_pago] == TraceContext.leer(TRACEPARENT, "congo=t61rcWkgMzE")
    assert "traceparent" not in p.evento_de(sin).properties


async def test_un_traceparent_invalido_se_ignora_y_el_comando_se_procesa_igual():
    p = Pipeline()
    malos = [valido() for _ in range(3)]
    await p.procesar(
        (malos[0], {"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"}),
        (malos[1], {"traceparent": "no es un traceparent", "tracestate": "a=b"}),
        (malos[2], {"traceparent": TRACEPARENT.upper()}),
    )
    assert sorted(p.source.acked) == sorted(malos)
    assert p.dlq.mensajes == []  # never a dead letter for its trace context
    for data in malos:
        evento = p.evento_de(data)
        assert set(evento.properties) == {"event_type", "event_id"}
        assert p.repo.trazas[evento.id_pago] is None


async def test_un_tracestate_invalido_se_pierde_solo():
    p = Pipeline()
    data = valido()
    await p.procesar((data, {"traceparent": TRACEPARENT, "tracestate": "MAL=1"}))
    assert p.evento_de(data).properties["traceparent"] == TRACEPARENT
    assert "tracestate" not in p.evento_de(data).properties


async def test_las_lineas_de_log_del_pago_llevan_su_trace_id():
    p = Pipeline()
    con, sin = valido(), valido()
    with capture_logs(processors=[merge_contextvars]) as lineas:
        await p.procesar((con, {"traceparent": TRACEPARENT}), (sin, {}))
    procesados = {linea["id_pago"]: linea for linea in lineas if linea["event"] == "pago.procesado"}
    assert procesados[str(p.evento_de(con).id_pago)]["trace_id"] == TRACE_ID
    assert "trace_id" not in procesados[str(p.evento_de(sin).id_pago)]


async def test_un_lote_de_muchos_pagos_no_hereda_el_contexto_del_primero():
    """A group-commit flush and an immediate publication serve many payments: their log lines must
    not name the trace of whichever payment happened to start them."""
    vistos: list[dict[str, object]] = []

    async def flush(items):
        vistos.append(structlog.contextvars.get_contextvars())
        return items

    committer = GroupCommitter(flush, max_batch=10, linger=0.001)
    publicados: list[dict[str, object]] = []

    class Publicador(FakePublisher):
        async def publicar(self, mensajes):
            publicados.append(structlog.contextvars.get_contextvars())
            await super().publicar(mensajes)

    inmediata = ImmediatePublisher(FakeOutboxStore(), Publicador())
    with structlog.contextvars.bound_contextvars(trace_id=TRACE_ID):
        assert await committer.submit(1) == 1
        inmediata.encolar([OutboxEvent(1, uuid.uuid4(), "PagoExitoso", uuid.uuid4(), b"{}")])
        await inmediata.drenar(2)
    assert vistos == [{}]
    assert publicados == [{}]
