"""Tracing as users turn it on: `pagos-worker run` as its own process with OTEL_EXPORTER_OTLP_ENDPOINT
pointing at an OTLP/HTTP receiver (a small aiohttp server here, as a collector would be), commands
published with the plain pulsar-client. The receiver gets the three spans of a traced command with
their parentage, its event carries the same trace, and its log lines name it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests import contrato_helpers, pulsar_helpers
from tests.conftest import Topics, create_database, free_port
from tests.simulador_helpers import simulador_en_marcha

pytestmark = pytest.mark.e2e

TRACE_ID = "5b8efff798038103d269b633813fc60c"
PARENT_ID = "eee19b7ec3c1b174"


@dataclass
class Receptor:
    """An OTLP/HTTP traces endpoint: what was posted to /v1/traces, span by span."""

    url: str
    spans: list[tuple[dict[str, str], Span]] = field(default_factory=list)  # (resource, span)
    peticiones: int = 0

    async def recibir(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        mensaje = ExportTraceServiceRequest.FromString(await request.read())
        self.peticiones += 1
        for recurso in mensaje.resource_spans:
            atributos = {a.key: a.value.string_value for a in recurso.resource.attributes}
            self.spans += [(atributos, s) for alcance in recurso.scope_spans for s in alcance.spans]
        respuesta = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=respuesta, content_type="application/x-protobuf")

    def de_la_traza(self, trace_id: str) -> dict[int, Span]:
        return {s.kind: s for _, s in self.spans if s.trace_id.hex() == trace_id}


@pytest.fixture
async def receptor() -> AsyncIterator[Receptor]:
    port = free_port()
    r = Receptor(f"http://127.0.0.1:{port}")
    app = web.Application()
    app.router.add_post("/v1/traces", r.recibir)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield r
    finally:
        await runner.cleanup()


async def _esperar_listo(url: str, proceso: subprocess.Popen[bytes], log) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert proceso.poll() is None, log.read_text()[-3000:]
            try:
                async with http.get(f"{url}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    pytest.fail(f"service not ready:\n{log.read_text()[-3000:]}")


def _comando() -> tuple[str, bytes]:
    id_pago = str(uuid.uuid4())
    return id_pago, json.dumps({"id_pago": id_pago, "id_afiliado": "a1", "monto": "7.25", "moneda": "EUR"}).encode()


async def test_con_un_endpoint_otlp_los_spans_llegan_con_su_parentesco(
    receptor, postgres_server, pulsar_url, topics: Topics, tmp_path
):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | {
        "PAGOS_DATABASE_URL": await create_database(postgres_server, migrated=False),
        "PAGOS_PULSAR_URL": pulsar_url,
        "PAGOS_HTTP_PORT": str(port),
        "PAGOS_COMMANDS_TOPIC": topics.commands,
        "PAGOS_EVENTS_TOPIC": topics.events,
        "PAGOS_DLQ_TOPIC": topics.dlq,
        "PAGOS_STRIPE_SECRET_KEY": "sk_test_otlp",
        "PAGOS_STRIPE_DESTINATION_TEMPLATE": "acct_{id_afiliado}",
        "PAGOS_LOG_FORMAT": "json",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receptor.url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # ms: spans go out soon, not only at the shutdown
    }
    trazado, invalido, sin = _comando(), _comando(), _comando()
    propiedades = {
        trazado[0]: {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "pagos=e2e"},
        invalido[0]: {"traceparent": f"00-{TRACE_ID}-{'0' * 16}-01"},  # all-zero parent: ignored
        sin[0]: {},
    }
    log = tmp_path / "service.log"
    observer = pulsar_helpers.client(pulsar_url)
    async with simulador_en_marcha() as sim:
        env["PAGOS_STRIPE_API_BASE"] = sim.url
        with log.open("wb") as salida:
            proceso = subprocess.Popen(
                [sys.executable, "-m", "pagos_worker", "run"], env=env, stdout=salida, stderr=subprocess.STDOUT
            )
        try:
            await _esperar_listo(f"http://127.0.0.1:{port}", proceso, log)
            eventos = pulsar_helpers.subscribe(observer, topics.events)
            producer = observer.create_producer(topics.commands)
            for id_pago, data in (trazado, invalido, sin):
                producer.send(data, partition_key=id_pago, properties=propiedades[id_pago])
            recibidos = await asyncio.to_thread(pulsar_helpers.receive, eventos, 3, 30)
            for _ in range(100):  # the command's spans: exported within the batch delay
                if len(receptor.de_la_traza(TRACE_ID)) == 3:
                    break
                await asyncio.sleep(0.1)
            proceso.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proceso.wait, 30) == 0, log.read_text()[-3000:]
        finally:
            if proceso.poll() is None:
                proceso.kill()
                proceso.wait()
            observer.close()

    por_pago = {}
    for msg in recibidos:
        evento = contrato_helpers.evento(msg.data(), msg.properties(), msg.partition_key())
        por_pago[evento["data"]["id_pago"]] = dict(msg.properties())
    assert set(por_pago) == set(propiedades)  # the invalid traceparent never cost the command

    spans = receptor.de_la_traza(TRACE_ID)
    consumo, llamada, envio = (
        spans[Span.SPAN_KIND_CONSUMER],
        spans[Span.SPAN_KIND_CLIENT],
        spans[Span.SPAN_KIND_PRODUCER],
    )
    assert consumo.parent_span_id.hex() == PARENT_ID
    assert consumo.name == f"process {topics.commands}"
    assert llamada.parent_span_id == consumo.span_id
    assert envio.parent_span_id == consumo.span_id
    assert envio.name == f"send {topics.events}"
    # The event: the same trace, the child of its publication; the tracestate carried on.
    assert por_pago[trazado[0]]["traceparent"] == f"00-{TRACE_ID}-{envio.span_id.hex()}-01"
    assert por_pago[trazado[0]]["tracestate"] == "pagos=e2e"
    # The others start traces of their own, which their events name.
    otras = {por_pago[id_pago]["traceparent"].split("-")[1] for id_pago in (invalido[0], sin[0])}
    assert TRACE_ID not in otras
    assert len(otras) == 2
    for trace_id in otras:
        assert set(receptor.de_la_traza(trace_id)) == set(spans)
    assert {r["service.name"] for r, _ in receptor.spans} == {"pagos-worker"}

    # The log lines of the traced payment name its trace and its command's span.
    lineas = [json.loads(linea) for linea in log.read_text().splitlines() if linea.startswith("{")]
    [procesado] = [x for x in lineas if x.get("event") == "pago.procesado" and x["id_pago"] == trazado[0]]
    assert (procesado["trace_id"], procesado["span_id"]) == (TRACE_ID, consumo.span_id.hex())
    assert "Traceback" not in log.read_text()
