"""Port of `pagos-worker eventos`: the events topic as an operator watches it."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class MensajeLeido:
    """A message as the topic keeps it: bytes, key, properties, id and publication time."""

    message_id: str
    payload: bytes
    key: str
    properties: Mapping[str, str]
    publicada: datetime


class EventReader(Protocol):
    def leer(self, desde: datetime | None = None, *, seguir: bool = False) -> AsyncGenerator[MensajeLeido, None]:
        """The topic's messages published at or after `desde`, oldest first, up to its end as it is
        now, or, with `seguir`, on as they come until cancelled; consuming nothing, and leaving no
        subscription behind once closed."""
        ...
