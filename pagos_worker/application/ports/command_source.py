"""Port: where `ProcesarPago` commands come from (a Pulsar subscription in production)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol


class Delivery(Protocol):
    """One delivery of a command message."""

    @property
    def data(self) -> bytes: ...
    @property
    def redelivery_count(self) -> int:
        """How many times this message was delivered before (0 on the first delivery)."""
        ...

    @property
    def publicado_ms(self) -> int:
        """When the broker stored it (ms since the epoch); 0 if unknown."""
        ...

    @property
    def properties(self) -> dict[str, str]: ...
    @property
    def key(self) -> str | None: ...
    @property
    def message_id(self) -> str: ...
    @property
    def topic(self) -> str: ...


class CommandSource(Protocol):
    """Delivers commands with backpressure: at most its capacity of deliveries are out at once, and
    each is given back with `release` once it has been settled with `ack` or `nack`.

    A delivery neither acked nor nacked (the process died, or `stop_receiving` came first) is
    delivered again later, to this consumer or another on the same subscription: at least once."""

    def start(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[Delivery], None]) -> None:
        """Start delivering: `deliver` is called on `loop`'s thread, once per delivery."""
        ...

    async def stop_receiving(self) -> None:
        """Stop delivering; return once no more `deliver` calls will be made."""
        ...

    def ack(self, delivery: Delivery) -> None:
        """Settled: never delivered again (an ack lost on the way may still mean a redelivery)."""
        ...

    def nack(self, delivery: Delivery) -> None:
        """Put back: delivered again later, with `redelivery_count` one higher."""
        ...

    def release(self) -> None:
        """Give back the slot a settled delivery held."""
        ...


# Whether an exception is an outage of the infrastructure (database, broker), which heals: the
# command is put back without counting toward the poison limit. Injected by `bootstrap`.
Clasificador = Callable[[BaseException], bool]
