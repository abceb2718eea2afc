"""The application's `TraceContext` to OpenTelemetry's span context, and back."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from pagos_worker.application.ports.tracing import TraceContext


def contexto_padre(traza: TraceContext | None) -> Context | None:
    """An OpenTelemetry context whose current span is the remote parent `traza` names; None: a new
    trace (the root of the span started in it)."""
    if traza is None:
        return None
    estado = TraceState.from_header([traza.tracestate]) if traza.tracestate else None
    padre = SpanContext(
        trace_id=int(traza.trace_id, 16),
        span_id=int(traza.parent_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(int(traza.flags, 16)),
        trace_state=estado,
    )
    return trace.set_span_in_context(NonRecordingSpan(padre))


def traza_de(span: trace.Span) -> TraceContext:
    """The context that names `span` as the parent of what comes next (what goes on a message)."""
    contexto = span.get_span_context()
    estado = contexto.trace_state.to_header() if contexto.trace_state else ""
    return TraceContext(
        trace_id=trace.format_trace_id(contexto.trace_id),
        parent_id=trace.format_span_id(contexto.span_id),
        flags=f"{contexto.trace_flags:02x}",
        tracestate=estado or None,
    )
