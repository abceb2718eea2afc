"""`Tracer` on OpenTelemetry: a consumer span for each command, the child of its `traceparent`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from uuid import UUID

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from pagos_worker.adapters.otel.contexto import contexto_padre, traza_de
from pagos_worker.application.ports.tracing import TraceContext


class OtelTracer:
    def __init__(self, tracer: trace.Tracer, *, topic: str, subscription: str) -> None:
        self._tracer = tracer
        self._nombre = f"process {topic}"  # messaging spans are named `{operation} {destination}`
        self._atributos = {
            "messaging.system": "pulsar",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": topic,
            "messaging.consumer.group.name": subscription,
        }

    @contextmanager
    def comando(self, traza: TraceContext | None, id_pago: UUID) -> Iterator[TraceContext]:
        """Current while the command is handled (so the gateway's span is its child); an exception
        is recorded on it and marks it as an error."""
        with self._tracer.start_as_current_span(
            self._nombre,
            context=contexto_padre(traza),
            kind=SpanKind.CONSUMER,
            attributes={**self._atributos, "pagos.id_pago": str(id_pago)},
        ) as span:
            yield traza_de(span)

    def anotar(self, atributos: Mapping[str, str]) -> None:
        trace.get_current_span().set_attributes(dict(atributos))
