"""`pagos-worker eventos`: the payments' events as the topic holds them, decoded and filtered.

An event that cannot be decoded is shown with why, never skipped: whoever watches the topic should
see what downstream consumers get."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pagos_worker.application.ports.eventos import EventReader, MensajeLeido


@dataclass(frozen=True, slots=True)
class FiltroEventos:
    id_pago: uuid.UUID | None = None
    desde: datetime | None = None


@dataclass(frozen=True, slots=True)
class VistaEvento:
    mensaje: MensajeLeido
    cuerpo: dict[str, Any] | None  # the decoded envelope: event_type, event_id, timestamp, data
    error: str | None = None  # why it could not be decoded

    @property
    def datos(self) -> dict[str, Any]:
        datos = (self.cuerpo or {}).get("data")
        return datos if isinstance(datos, dict) else {}

    @property
    def tipo(self) -> str | None:
        return _texto((self.cuerpo or {}).get("event_type")) or self.mensaje.properties.get("event_type")

    @property
    def id_pago(self) -> str | None:
        return _texto(self.datos.get("id_pago")) or self.mensaje.key or None


def vista(mensaje: MensajeLeido) -> VistaEvento:
    try:
        cuerpo = json.loads(mensaje.payload)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        return VistaEvento(mensaje, None, "no es JSON")
    if not isinstance(cuerpo, dict):
        return VistaEvento(mensaje, None, "no es un objeto JSON")
    return VistaEvento(mensaje, cuerpo)


class LeerEventosHandler:
    def __init__(self, lector: EventReader) -> None:
        self._lector = lector

    async def __call__(self, filtro: FiltroEventos, *, seguir: bool = False) -> AsyncIterator[VistaEvento]:
        buscado = str(filtro.id_pago) if filtro.id_pago else None
        async with aclosing(self._lector.leer(filtro.desde, seguir=seguir)) as mensajes:
            async for mensaje in mensajes:
                evento = vista(mensaje)
                if filtro.desde is not None and mensaje.publicada < filtro.desde:
                    continue  # the reader's seek is by publication time too, where the broker can seek
                if buscado is None or buscado in {evento.id_pago, mensaje.key}:
                    yield evento


def _texto(valor: object) -> str | None:
    return valor if isinstance(valor, str) and valor else None
