"""One `pulsar.Client` per process, and the producers and consumers made from it.

The synchronous client is used on purpose: its callbacks cost microseconds where the asyncio
wrapper costs about 100 µs a message. Blocking calls (subscribe, create, close) run in threads.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulsar
from pydantic import SecretStr

from pagos_worker.adapters.pulsar.consumer import PulsarCommandSource
from pagos_worker.adapters.pulsar.operador import PulsarDeadLetterReader, PulsarEventReader
from pagos_worker.adapters.pulsar.publisher import MAX_PENDING, PulsarPublisher

# Messages the client fetches ahead of the pool: no more than the pool can take (the rest stays on the
# broker for other replicas), and at most this many, which at thousands of payments in flight is
# still a fraction of a second of work: each one held costs the process memory.
MAX_PREFETCH = 1000
_THROWAWAY_TOPIC = "non-persistent://public/default/pagos-worker-consumer-ids"


@dataclass(frozen=True, slots=True)
class PulsarSecurity:
    """Who the client says it is, and whom it trusts. A `pulsar+ssl://` URL turns TLS on."""

    token: SecretStr | None = None
    token_file: Path | None = None  # read again at every (re)connection: a rotated token is picked up
    tls_trust_certs_file: Path | None = None
    tls_validate_hostname: bool = True

    def authentication(self) -> pulsar.Authentication | None:
        if self.token is not None:
            return pulsar.AuthenticationToken(self.token.get_secret_value())
        if (archivo := self.token_file) is not None:
            return pulsar.AuthenticationToken(lambda: archivo.read_text().strip())
        return None

    def client_options(self) -> dict[str, Any]:
        opciones: dict[str, Any] = {"tls_validate_hostname": self.tls_validate_hostname}
        if (autenticacion := self.authentication()) is not None:
            opciones["authentication"] = autenticacion
        if self.tls_trust_certs_file is not None:
            opciones["tls_trust_certs_file_path"] = str(self.tls_trust_certs_file)
        return opciones


def registro_silencioso(*, depurar: bool = False) -> Any:  # noqa: ANN401 - a pulsar.FileLogger
    """The client's own lines for a command whose stdout is its answer (the operators'): none, or
    with `depurar` every one on stderr. What went wrong is said by the command itself."""
    if depurar:
        return pulsar.FileLogger(pulsar.LoggerLevel.Debug, "/dev/stderr")
    return pulsar.FileLogger(pulsar.LoggerLevel.Error, os.devnull)


class PulsarConnection:
    def __init__(
        self,
        url: str,
        *,
        security: PulsarSecurity | None = None,
        operation_timeout_seconds: int = 10,
        registro: Any = None,  # noqa: ANN401 - a pulsar.ConsoleLogger or FileLogger
    ) -> None:
        self.url = url
        self._client = pulsar.Client(
            url,
            operation_timeout_seconds=operation_timeout_seconds,
            connection_timeout_ms=5000,
            # The client's own console logger (on stdout): a Python logger here makes the process
            # abort now and then at exit (apache/pulsar-client-python#256).
            logger=registro or pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn),
            **(security or PulsarSecurity()).client_options(),
        )

    async def publisher(
        self, topic: str, *, send_timeout_seconds: float = 10, batching: bool = False, per_lot: bool = True
    ) -> PulsarPublisher:
        """`batching` packs a lot's messages into few broker entries (at most 1 ms of delay): far less
        work for the client and the broker. Consumers see single messages either way. `per_lot`:
        one confirmation per lot instead of one per message (see PulsarPublisher)."""
        producer = await asyncio.to_thread(
            self._client.create_producer,
            topic,
            send_timeout_millis=int(send_timeout_seconds * 1000),
            max_pending_messages=MAX_PENDING,  # the publisher never sends more than this at once
            block_if_queue_full=False,
            batching_enabled=batching,
            batching_max_messages=1000,
            batching_max_publish_delay_ms=1,
        )
        return PulsarPublisher(producer, send_timeout_seconds=send_timeout_seconds, per_lot=per_lot)

    async def command_source(
        self, topic: str, subscription: str, *, capacity: int, nack_delay_seconds: float, consumer_id_offset: int = 0
    ) -> PulsarCommandSource:
        await asyncio.to_thread(self._skip_consumer_ids, consumer_id_offset)
        try:
            consumer = await asyncio.to_thread(
                self._client.subscribe,
                topic,
                subscription,
                consumer_type=pulsar.ConsumerType.Shared,
                # Pull only what the pool can take: the rest stays on the broker for other replicas.
                receiver_queue_size=max(1, min(capacity, MAX_PREFETCH)),
                negative_ack_redelivery_delay_ms=int(nack_delay_seconds * 1000),
                initial_position=pulsar.InitialPosition.Earliest,
            )
        except pulsar.Timeout as exc:
            raise pulsar.Timeout(
                f"{exc}: subscribing to {topic} timed out. If the broker is pulsar-lite and another replica "
                "is on the same subscription, give each replica its own PAGOS_PULSAR_CONSUMER_ID_OFFSET."
            ) from exc
        return PulsarCommandSource(consumer, capacity=capacity)

    def dead_letter_reader(self, topic: str) -> PulsarDeadLetterReader:
        """The dead-letter topic for operators: read with a Reader, never consumed."""
        return PulsarDeadLetterReader(self._client, topic)

    def event_reader(self, topic: str) -> PulsarEventReader:
        """The events topic for operators: read with a Reader, never consumed."""
        return PulsarEventReader(self._client, topic)

    def _skip_consumer_ids(self, n: int) -> None:
        """pulsar-lite 0.2 keys a subscription's consumers by consumer id alone, but every client
        numbers its consumers from 0: two replicas collide. Opening and closing `n` throwaway
        consumers first moves this client's next id to `n` (Apache Pulsar needs none of this)."""
        for _ in range(n):
            self._client.subscribe(_THROWAWAY_TOPIC, f"pagos-worker-{uuid.uuid4().hex}").close()

    async def ping(self, topic: str, timeout: float = 3.0) -> None:
        """Raise unless the broker answers a metadata lookup within `timeout`."""
        await asyncio.wait_for(asyncio.to_thread(self._client.get_topic_partitions, topic), timeout)

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
