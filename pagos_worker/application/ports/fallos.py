"""Port: the failures of a command message that are its own (not an outage), counted wherever and
whenever they happen, and the poison commands recorded for operators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True, slots=True)
class FalloDeComando:
    """One delivery of a message that failed for a reason of its own: a bug, a data error of its
    payment. `id_pago` when the command could be decoded."""

    message_id: str
    id_pago: UUID | None
    error: str


class FailureLog(Protocol):
    """Counts per message id, shared by every replica and kept across restarts: the broker's
    redelivery count cannot tell these failures from deliveries put back for an outage or because
    the payment was busy elsewhere, which must never make a command poison."""

    async def contar_fallo(self, fallo: FalloDeComando, *, limite: int) -> int:
        """Count one more failure of `fallo.message_id` and return how many it has had. The one
        that reaches `limite` also records the command as poison (why, when, its `id_pago`), where
        operators see it, before the caller dead-letters it. One statement: atomic."""
        ...
