"""Port: tracing. W3C Trace Context (https://www.w3.org/TR/trace-context/) as a value that travels
with a command to its events, and the spans around a command where a tracer is wired.

A command's `traceparent` (and `tracestate`) is read here, by the rules of the specification: an
invalid one is no trace context at all (it is not carried, and the command is processed as if it
had none). Without a tracer the context is carried as it came: the events name the same trace and
the same parent. With one, the tracer's command span stands between them (`Tracer.comando`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

# version-traceid-parentid-flags, lowercase hex; a later version may add fields after a "-".
# Spaces and tabs around it are allowed (the header's optional whitespace).
_TRACEPARENT = re.compile(r"[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^ \t]*)?[ \t]*")
_TRACE_ID_NULO = "0" * 32
_PARENT_ID_NULO = "0" * 16

# tracestate: up to 32 comma-separated `key=value` members (empty ones are allowed and dropped).
_CLAVE = r"(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})"
_VALOR = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
_MIEMBRO = re.compile(rf"{_CLAVE}={_VALOR}")
MAX_TRACESTATE = 512  # what every participant must pass on; longer ones are dropped here
_MAX_MIEMBROS = 32


@dataclass(frozen=True, slots=True)
class TraceContext:
    """A position in a distributed trace: the trace, the span that is the parent of what comes next,
    the trace flags (bit 0: sampled), and the vendors' `tracestate`, if any."""

    trace_id: str  # 32 lowercase hex digits, not all zero
    parent_id: str  # 16 lowercase hex digits, not all zero
    flags: str = "01"  # 2 lowercase hex digits
    tracestate: str | None = None

    @property
    def traceparent(self) -> str:
        """The `traceparent` header, version 00 (what this service writes, whatever version came)."""
        return f"00-{self.trace_id}-{self.parent_id}-{self.flags}"

    @property
    def sampled(self) -> bool:
        return bool(int(self.flags, 16) & 1)

    @classmethod
    def leer(cls, traceparent: str | None, tracestate: str | None = None) -> TraceContext | None:
        """The context of a `traceparent` header, or None if it is absent or invalid. A version
        above 00 is read as far as version 00 goes (as the specification asks); `ff` is invalid.
        A `tracestate` that is not valid, or longer than 512 characters, is dropped on its own."""
        if not traceparent:
            return None
        partes = _TRACEPARENT.fullmatch(traceparent)
        if partes is None:
            return None
        version, trace_id, parent_id, flags, resto = partes.groups()
        if version == "ff" or (version == "00" and resto is not None):
            return None
        if trace_id == _TRACE_ID_NULO or parent_id == _PARENT_ID_NULO:
            return None
        return cls(trace_id, parent_id, flags, _tracestate(tracestate))

    @classmethod
    def de_propiedades(cls, propiedades: Mapping[str, str]) -> TraceContext | None:
        """From a message's properties (`traceparent`, `tracestate`)."""
        traceparent = propiedades.get("traceparent")
        return None if traceparent is None else cls.leer(traceparent, propiedades.get("tracestate"))


def _tracestate(valor: str | None) -> str | None:
    if not valor or len(valor) > MAX_TRACESTATE:
        return None
    miembros = [m.strip(" \t") for m in valor.split(",")]
    miembros = [m for m in miembros if m]
    if not miembros or len(miembros) > _MAX_MIEMBROS:
        return None
    if not all(_MIEMBRO.fullmatch(m) for m in miembros):
        return None
    claves = [m.split("=", 1)[0] for m in miembros]
    if len(set(claves)) != len(claves):
        return None
    return ",".join(miembros)


class Tracer(Protocol):
    """Spans around a command (OpenTelemetry in production, where an endpoint is configured).

    The gateway's calls and the events' publication are traced by wrapping those ports, so that the
    application needs only this: the command's span, which the others descend from."""

    def comando(self, traza: TraceContext | None, id_pago: UUID) -> AbstractContextManager[TraceContext]:
        """A span for handling one command, the child of `traza` (a new trace when None), current
        while the block runs (what the gateway's span descends from). Yields the context that the
        command's events carry on: the span's own. An exception raised in the block marks the span
        as failed and goes on."""
        ...

    def anotar(self, atributos: Mapping[str, str]) -> None:
        """Add attributes (the command's outcome) to the current command's span."""
        ...
