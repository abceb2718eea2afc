"""The OpenTelemetry SDK, set up from the standard OTEL_* variables, exporting over OTLP/HTTP.

The SDK reads them itself: the endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), headers, timeout, compression and certificates of the
exporter; the sampler (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`; parent-based, always on by
default); the batch processor's `OTEL_BSP_*`; and the resource (`OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`), whose service name is `pagos-worker` unless they name one.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from importlib import metadata

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

SERVICIO = "pagos-worker"
INSTRUMENTACION = "pagos_worker"


def recurso() -> Resource:
    detectado = Resource.create()
    nombre = str(detectado.attributes.get(SERVICE_NAME, ""))
    propios: dict[str, str] = {}
    if not nombre or nombre.startswith("unknown_service"):
        propios[SERVICE_NAME] = SERVICIO
    if SERVICE_VERSION not in detectado.attributes:
        propios[SERVICE_VERSION] = metadata.version("pagos-worker")
    return detectado.merge(Resource(propios))


def proveedor(exporter: SpanExporter | None = None) -> TracerProvider:
    """Spans batched and exported in the SDK's own thread (never on the event loop), over OTLP/HTTP
    unless another `exporter` is given. Not shut down at exit by itself: `cerrar` does it, bounded."""
    provider = TracerProvider(resource=recurso(), shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter or OTLPSpanExporter()))
    return provider


def tracer(provider: trace.TracerProvider) -> trace.Tracer:
    return provider.get_tracer(INSTRUMENTACION, metadata.version("pagos-worker"))


async def cerrar(provider: TracerProvider) -> None:
    """Export what is left and stop. In a daemon thread of its own: an exporter that does not answer
    delays this call (which the caller bounds), never the process's exit."""
    loop = asyncio.get_running_loop()
    hecho: asyncio.Future[None] = loop.create_future()

    def terminado() -> None:
        if not hecho.done():
            hecho.set_result(None)

    def apagar() -> None:
        try:
            provider.shutdown()
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                loop.call_soon_threadsafe(terminado)

    threading.Thread(target=apagar, name="otel-shutdown", daemon=True).start()
    await hecho
