"""What `pagos-worker eventos` prints: a line per event as it is read, or JSON Lines (`--json`)."""

from __future__ import annotations

import sys
from typing import Any

import orjson

from pagos_worker.application.eventos import VistaEvento
from pagos_worker.contract.wire import iso_utc
from pagos_worker.entrypoints.consola import consola


def evento(e: VistaEvento, *, como_json: bool) -> None:
    """One event a line as it is read (`--seguir` shows them as they come): JSON Lines with --json."""
    if como_json:
        sys.stdout.write(orjson.dumps(_evento_json(e)).decode() + "\n")
    else:
        d = e.datos
        importe = f"{d.get('monto')} {d.get('moneda')}" if "monto" in d else "-"
        partes = [iso_utc(e.mensaje.publicada), e.tipo or "?", e.id_pago or "-", importe,
                  str(d.get("referencia_pago") or "-"), str(d.get("mensaje_error") or e.error or "")]  # fmt: skip
        sys.stdout.write("  ".join(partes).rstrip() + "\n")
    sys.stdout.flush()


def total_eventos(n: int) -> None:
    consola().print(f"eventos: {n}", markup=False)


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
