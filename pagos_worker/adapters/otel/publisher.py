"""The event publisher with a producer span for each event that carries a trace context: the child
of the context stored with the event (its command's span), and the parent that the event's own
`traceparent` names from then on (what the downstream consumers' spans descend from)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from pagos_worker.adapters.otel.contexto import contexto_padre, traza_de
from pagos_worker.application.ports.outbox import EventPublisher, Message, PlainMessage
from pagos_worker.application.ports.tracing import TraceContext


class TracingEventPublisher:
    """Each span lasts from the send to the broker's confirmation of its lot (or its failure)."""

    def __init__(self, publisher: EventPublisher, tracer: trace.Tracer, *, topic: str) -> None:
        self._publisher = publisher
        self._tracer = tracer
        self._nombre = f"send {topic}"
        self._atributos = {
            "messaging.system": "pulsar",
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": topic,
        }

    async def publicar(self, mensajes: Sequence[Message]) -> None:
        spans: list[trace.Span] = []
        enviados: list[Message] = []
        for mensaje in mensajes:
            traza = TraceContext.de_propiedades(mensaje.properties)
            if traza is None:
                enviados.append(mensaje)
                continue
            span = self._tracer.start_span(
                self._nombre, context=contexto_padre(traza), kind=SpanKind.PRODUCER, attributes=self._de(mensaje)
            )
            spans.append(span)
            enviados.append(PlainMessage(mensaje.payload, mensaje.key, _con_traza(mensaje.properties, traza_de(span))))
        try:
            await self._publisher.publicar(enviados)
        except BaseException as exc:
            for span in spans:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                span.end()
            raise
        for span in spans:
            span.end()

    def _de(self, mensaje: Message) -> dict[str, str | int]:
        propiedades = mensaje.properties
        return {
            **self._atributos,
            "messaging.message.body.size": len(mensaje.payload),
            "pagos.id_pago": mensaje.key,
            "pagos.event_type": propiedades.get("event_type", ""),
            "pagos.event_id": propiedades.get("event_id", ""),
        }


def _con_traza(propiedades: Mapping[str, str], traza: TraceContext) -> dict[str, str]:
    nuevas = {k: v for k, v in propiedades.items() if k not in {"traceparent", "tracestate"}}
    nuevas["traceparent"] = traza.traceparent
    if traza.tracestate is not None:
        nuevas["tracestate"] = traza.tracestate
    return nuevas
