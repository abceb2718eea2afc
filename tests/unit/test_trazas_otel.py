"""Spans with OpenTelemetry, recorded in memory: the command's (consumer, the child of its
traceparent), the gateway call's (client, the command's child) and the publication's (producer, the
child of the context stored with the event, which the published event then names as its parent).
And the settings that turn tracing on, and the SDK never loaded while it is off."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from pagos_worker.adapters.otel import proveedor as otel
from pagos_worker.adapters.otel.pasarela import TracingPasarelaDePagos
from pagos_worker.adapters.otel.publisher import TracingEventPublisher
from pagos_worker.adapters.otel.tracer import OtelTracer
from pagos_worker.application.commands import ProcesarPago
from pagos_worker.application.handlers import ProcesarPagoHandler
from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.application.ports.tracing import TraceContext
from pagos_worker.application.relay import ImmediatePublisher, OutboxRelay
from pagos_worker.config import Settings
from pagos_worker.domain import Dinero, Moneda
from tests.fake_outbox import FakeOutboxStore
from tests.fakes import INDETERMINADO, FakePagoRepository, FakePasarelaDePagos, FakePublisher

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
ENTRANTE = TraceContext(TRACE_ID, PARENT_ID, "01", "congo=t61rcWkgMzE")


class Trazado:
    """The handler, the gateway and the immediate publication, traced into memory."""

    def __init__(self, pasarela: FakePasarelaDePagos | None = None, publisher: FakePublisher | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider(resource=otel.recurso())
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        tracer = otel.tracer(provider)
        self.repo = FakePagoRepository()
        self.pasarela = pasarela or FakePasarelaDePagos()
        self.publisher = publisher or FakePublisher()
        self.outbox = FakeOutboxStore()
        self.publicacion = ImmediatePublisher(
            self.outbox, TracingEventPublisher(self.publisher, tracer, topic="pagos-events")
        )
        self.handler = ProcesarPagoHandler(
            self.repo,
            TracingPasarelaDePagos(self.pasarela, tracer),
            owner="w1",
            lease=timedelta(seconds=30),
            publicar=self._publicar,
            tracer=OtelTracer(tracer, topic="pagos-comandos", subscription="pagos-worker"),
        )

    def _publicar(self, eventos):
        self.outbox.agregar(eventos, publicador="w1")
        self.publicacion.encolar(eventos)

    async def procesar(self, traza: TraceContext | None):
        comando = ProcesarPago(uuid.uuid4(), "afiliado_1", Dinero(Decimal("10.00"), Moneda.USD), traza)
        desenlace = await self.handler(comando)
        await self.publicacion.drenar(2)
        return comando, desenlace

    def span(self, kind: SpanKind) -> ReadableSpan:
        [span] = [s for s in self.exporter.get_finished_spans() if s.kind is kind]
        return span


def ids(span: ReadableSpan) -> tuple[str, str]:
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


async def test_tres_spans_con_su_parentesco_y_el_evento_nombra_el_de_su_publicacion():
    t = Trazado()
    comando, _ = await t.procesar(ENTRANTE)
    consumo, llamada, envio = t.span(SpanKind.CONSUMER), t.span(SpanKind.CLIENT), t.span(SpanKind.PRODUCER)

    # The command's span: the child of the incoming traceparent, a remote parent.
    assert ids(consumo)[0] == TRACE_ID
    assert consumo.parent is not None
    assert (f"{consumo.parent.span_id:016x}", consumo.parent.is_remote) == (PARENT_ID, True)
    assert consumo.name == "process pagos-comandos"
    assert consumo.attributes["pagos.id_pago"] == str(comando.id_pago)
    assert consumo.attributes["pagos.desenlace"] == "procesado"
    assert consumo.attributes["messaging.system"] == "pulsar"
    # The gateway call's: the command span's child.
    assert llamada.parent is not None
    assert llamada.parent.span_id == consumo.context.span_id
    assert ids(llamada)[0] == TRACE_ID
    assert llamada.attributes["pagos.exitoso"] is True
    # What was stored with the event is the command span's context...
    assert t.repo.trazas[comando.id_pago] == TraceContext(TRACE_ID, ids(consumo)[1], "01", "congo=t61rcWkgMzE")
    # ...which the publication's span descends from; the event names the publication's span.
    assert envio.parent is not None
    assert envio.parent.span_id == consumo.context.span_id
    assert ids(envio)[0] == TRACE_ID
    [mensaje] = t.publisher.mensajes
    assert mensaje.properties["traceparent"] == f"00-{TRACE_ID}-{ids(envio)[1]}-01"
    assert mensaje.properties["tracestate"] == "congo=t61rcWkgMzE"
    assert envio.attributes["pagos.event_id"] == mensaje.properties["event_id"]
    assert envio.attributes["messaging.destination.name"] == "pagos-events"


async def test_sin_traceparent_el_comando_empieza_una_traza_que_su_evento_lleva():
    t = Trazado()
    await t.procesar(None)
    consumo, envio = t.span(SpanKind.CONSUMER), t.span(SpanKind.PRODUCER)
    assert consumo.parent is None
    assert envio.parent is not None
    assert envio.parent.span_id == consumo.context.span_id
    [mensaje] = t.publisher.mensajes
    flags = f"{envio.context.trace_flags:02x}"  # sampled (and, from this SDK, a random trace id)
    assert mensaje.properties["traceparent"] == f"00-{ids(envio)[0]}-{ids(envio)[1]}-{flags}"
    assert "tracestate" not in mensaje.properties


async def test_una_traza_no_muestreada_sigue_sin_muestrear_y_no_se_exporta():
    t = Trazado()
    await t.procesar(TraceContext(TRACE_ID, PARENT_ID, "00"))
    assert t.exporter.get_finished_spans() == ()  # parent-based sampling: not sampled upstream
    [mensaje] = t.publisher.mensajes
    traza = TraceContext.de_propiedades(mensaje.properties)
    assert traza is not None
    assert (traza.trace_id, traza.sampled) == (TRACE_ID, False)


async def test_un_resultado_indeterminado_marca_el_span_de_la_pasarela():
    pasarela = FakePasarelaDePagos()
    t = Trazado(pasarela)
    comando = ProcesarPago(uuid.uuid4(), "a", Dinero(Decimal("1.00"), Moneda.USD), ENTRANTE)
    pasarela.respuestas[comando.id_pago] = INDETERMINADO
    await t.handler(comando)
    consumo, llamada = t.span(SpanKind.CONSUMER), t.span(SpanKind.CLIENT)
    assert llamada.status.status_code is StatusCode.ERROR
    assert [e.name for e in llamada.events] == ["exception"]
    assert consumo.attributes["pagos.desenlace"] == "resultado_indeterminado"  # handled: put back
    assert consumo.status.status_code is not StatusCode.ERROR
    # Redelivered: the lookup first (a span of its own), then the payout again.
    await t.handler(comando)
    nombres = [s.name for s in t.exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert nombres == ["pasarela transferir", "pasarela buscar_transferencia", "pasarela transferir"]


async def test_una_publicacion_fallida_marca_su_span():
    t = Trazado(publisher=FakePublisher(fallos=1))
    t.publicacion = ImmediatePublisher(t.outbox, t.publicacion._publisher, reintentar_durante=timedelta(seconds=5))
    await t.procesar(ENTRANTE)
    envios = [s for s in t.exporter.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    assert [s.status.status_code for s in envios] == [StatusCode.ERROR, StatusCode.UNSET]  # failed, then sent
    assert len({s.context.span_id for s in envios}) == 2


async def test_el_relay_publica_con_el_contexto_guardado_en_el_outbox():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    guardado = TraceContext(TRACE_ID, "1111111111111111", "01")
    evento = OutboxEvent(1, uuid.uuid4(), "PagoFallido", uuid.uuid4(), b"{}", traceparent=guardado.traceparent)
    sin_traza = OutboxEvent(2, uuid.uuid4(), "PagoExitoso", uuid.uuid4(), b"{}")
    publisher = FakePublisher()
    traced = TracingEventPublisher(publisher, otel.tracer(provider), topic="pagos-events")
    assert await OutboxRelay(FakeOutboxStore([evento, sin_traza]), traced).publicar_pendientes() == 2
    [envio] = exporter.get_finished_spans()
    assert envio.parent is not None
    assert f"{envio.parent.span_id:016x}" == "1111111111111111"
    assert publisher.mensajes[0].properties["traceparent"] == f"00-{TRACE_ID}-{envio.context.span_id:016x}-01"
    assert publisher.mensajes[1] is sin_traza  # nothing to trace: sent as it is


def test_el_recurso_se_llama_pagos_worker_salvo_que_otel_diga_otro(monkeypatch):
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    assert otel.recurso().attributes["service.name"] == "pagos-worker"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "pagos-eu")
    assert otel.recurso().attributes["service.name"] == "pagos-eu"
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=otro,deployment.environment=prod")
    recurso = otel.recurso().attributes
    assert (recurso["service.name"], recurso["deployment.environment"]) == ("otro", "prod")


async def test_cerrar_el_proveedor_exporta_lo_que_quedaba():
    exporter = InMemorySpanExporter()
    provider = otel.proveedor(exporter)  # batched: nothing exported yet
    with otel.tracer(provider).start_as_current_span("x"):
        pass
    assert exporter.get_finished_spans() == ()
    await asyncio.wait_for(otel.cerrar(provider), 10)
    assert [s.name for s in exporter.get_finished_spans()] == ["x"]


@pytest.fixture
def sin_otel(monkeypatch):
    for nombre in list(os.environ):
        if nombre.startswith("OTEL_"):
            monkeypatch.delenv(nombre)


@pytest.mark.usefixtures("sin_otel")
@pytest.mark.parametrize(
    ("entorno", "activas"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, False),  # no endpoint: nothing exported
    ],
)
def test_las_trazas_se_activan_con_un_endpoint_otlp(monkeypatch, entorno, activas):
    for nombre, valor in entorno.items():
        monkeypatch.setenv(nombre, valor)
    assert Settings().trazas_activas() is activas


@pytest.mark.usefixtures("sin_otel")
@pytest.mark.parametrize(
    ("nombre", "valor"), [("OTEL_TRACES_EXPORTER", "console"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]
)
def test_lo_que_no_se_puede_exportar_no_arranca(monkeypatch, nombre, valor):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv(nombre, valor)
    with pytest.raises(ValueError, match=nombre):
        Settings()


_SIN_SDK = textwrap.dedent("""
    import asyncio, contextlib, sys
    from pagos_worker import bootstrap
    from pagos_worker.config import Settings
    from pagos_worker.entrypoints import cli, service, worker

    async def main():
        async with contextlib.AsyncExitStack() as stack:
            servicio = bootstrap.Servicio(Settings(), bootstrap._check)
            print(bootstrap.trazado(servicio, stack) is not None)
    asyncio.run(main())
    cargados = {m.split(".")[1] for m in sys.modules if m.startswith("opentelemetry.")}
    print(sorted(cargados & {"exporter", "sdk", "trace"}))
""")


@pytest.mark.parametrize(
    ("entorno", "salida"),
    [
        ({}, ["False", "[]"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, ["True", "['exporter', 'sdk', 'trace']"]),
    ],
)
def test_sin_endpoint_el_sdk_ni_se_importa(entorno, salida):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | entorno
    hecho = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", _SIN_SDK], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert hecho.stdout.splitlines()[-2:] == salida, hecho.stderr


def test_el_bench_de_la_traza_mide_cada_pieza(capsys):
    from pagos_dev.tools import bench_traza  # noqa: PLC0415 - the tooling, only here

    resultados = bench_traza.main(veces=200, repeticiones=1)
    assert set(resultados) == {"leer", "entrega", "log", "outbox", "propiedades", "spans"}
    assert all(set(fila) == {"sin", "con"} for fila in resultados.values())
    assert '"bench": "traza"' in capsys.readouterr().out
