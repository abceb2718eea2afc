"""The broker as the operators' commands use it: the dead-letter topic read with a Reader, and
`ProcesarPago` commands published to the commands topic.

A Reader, not a subscription: it has no cursor on the broker, acknowledges nothing and holds no
backlog, so reading the dead letters changes nothing for anyone else (the `revision` subscription,
`pulsar-admin topics peek-messages`, another operator), a dry run is exactly that, and every run
sees the whole topic. What was re-driven is recorded in PostgreSQL instead (`RedriveLog`). It reads
what the topic keeps: in Apache Pulsar, messages some subscription has not acknowledged (the
`revision` subscription made at installation) or a retention policy keeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pulsar

from pagos_worker.application.commands import ProcesarPago
from pagos_worker.application.ports.operador import CartaMuerta
from pagos_worker.application.ports.outbox import EventPublisher, PlainMessage
from pagos_worker.contract.wire import encode_command

_LOTE = 500
_ESPERA_MS = 5000  # a message said to be available arrives at once; this only bounds a broken broker


class PulsarDeadLetterReader:
    def __init__(self, client: pulsar.Client, topic: str) -> None:
        self._client = client
        self._topic = topic

    async def leer(self, desde: datetime | None = None) -> AsyncIterator[CartaMuerta]:
        reader = await asyncio.to_thread(
            self._client.create_reader, self._topic, pulsar.MessageId.earliest, receiver_queue_size=_LOTE
        )
        try:
            if desde is not None:  # the broker skips what was published before (by publish time)
                await asyncio.to_thread(reader.seek, int(desde.timestamp() * 1000))
            while lote := await asyncio.to_thread(_siguientes, reader, _LOTE):
                for mensaje in lote:
                    yield carta_muerta(mensaje)
        finally:
            await asyncio.to_thread(reader.close)


def _siguientes(reader: pulsar.Reader, n: int) -> list[Any]:
    """Up to `n` messages, none past the end of the topic as it is now."""
    mensajes: list[Any] = []
    while len(mensajes) < n and reader.has_message_available():
        mensajes.append(reader.read_next(_ESPERA_MS))
    return mensajes


def carta_muerta(mensaje: Any) -> CartaMuerta:  # noqa: ANN401 - the client's Message
    return CartaMuerta(
        message_id=str(mensaje.message_id()),
        payload=mensaje.data(),
        key=mensaje.partition_key() or "",
        properties=dict(mensaje.properties()),
        publicada=datetime.fromtimestamp(mensaje.publish_timestamp() / 1000, UTC),
    )


class PulsarCommandPublisher:
    """`ProcesarPago` commands in their wire form, keyed by `id_pago`, as upstream publishes them."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    async def publicar(self, comandos: Sequence[ProcesarPago]) -> None:
        await self._publisher.publicar(
            [PlainMessage(payload=encode_command(c), key=str(c.id_pago), properties={}) for c in comandos]
        )
