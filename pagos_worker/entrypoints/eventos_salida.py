"""What `pagos-worker eventos` prints: a line per event as it is read, or JSON Lines (`--json`)."""

from __future__ import annotations

import json
import sys
from typing import Any

import orjson

from pagos_worker.application.eventos import VistaEvento
from pagos_worker.contract.wire import iso_utc
from pagos_worker.entrypoints.consola import consola


def evento(e: VistaEvento, *, como_json: bool) -> None:
    """One event a line as it is read (`--seguir` shows them as they come): JSON Lines with --json."""
    if como_json:
        sys.stdout.write(_json_de(_evento_json(e)) + "\n")
    else:
        d = e.datos
        importe = f"{d.get('monto')} {d.get('moneda')}" if "monto" in d else "-"
        referencia = d.get("referencia_pago") or d.get("referencia_reverso") or "-"  # a reversal's: trr_…
        detalle = d.get("mensaje_error") or e.error or ""
        if reverso := d.get("id_reverso"):  # the saga correlates on it
            detalle = f"reverso {reverso} ({d.get('motivo')}) {d.get('codigo') or ''} {detalle}"
        partes = [iso_utc(e.mensaje.publicada), e.tipo or "?", e.id_pago or "-", importe, str(referencia),
                  str(detalle)]  # fmt: skip
        sys.stdout.write(_sin_controles("  ".join(partes).rstrip()) + "\n")
    sys.stdout.flush()


def _json_de(valor: dict[str, Any]) -> str:
    """One line of JSON, whatever the event carried: orjson refuses integers past 64 bits, and one
    odd event must not end the stream (every event is shown, never skipped)."""
    try:
        return orjson.dumps(valor).decode()
    except orjson.JSONEncodeError:
        return json.dumps(valor, ensure_ascii=False, default=str)


def _sin_controles(texto: str) -> str:
    """A line for a terminal: a control character in an event's text could move the cursor or
    change the colours of the operator's terminal; it is shown escaped instead."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in texto)


def total_eventos(n: int, topic: str = "") -> None:
    # None read: the topic named, as a wrong one must not pass for an empty one.
    consola().print(f"eventos: {n} (topic {topic})" if topic and not n else f"eventos: {n}", markup=False)


def _evento_json(e: VistaEvento) -> dict[str, Any]:
    cuerpo = e.cuerpo or {}
    return {
        "message_id": e.mensaje.message_id,
        "publicada": iso_utc(e.mensaje.publicada),
        "event_type": e.tipo if e.cuerpo is not None else None,
        "event_id": cuerpo.get("event_id") or e.mensaje.properties.get("event_id"),
        "id_pago": e.id_pago,
        "timestamp": cuerpo.get("timestamp"),
        "data": cuerpo.get("data"),
        "properties": dict(e.mensaje.properties),
        "error": e.error,
        **({"payload": e.mensaje.payload.decode("utf-8", "replace")} if e.error else {}),
    }
