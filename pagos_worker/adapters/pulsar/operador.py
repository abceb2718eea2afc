"""The broker as the operators' commands use it: the dead-letter topic read with a Reader, and
commands (`ProcesarPago`, `ReversarPago`) published to the commands topic.

A Reader, not a subscription: it has no cursor on the broker, acknowledges nothing and holds no
backlog, so reading the dead letters changes nothing for anyone else (the `revision` subscription,
`pulsar-admin topics peek-messages`, another operator), a dry run is exactly that, and every run
sees the whole topic. What was re-driven is recorded in PostgreSQL instead (`RedriveLog`). It reads
what the topic keeps: in Apache Pulsar, messages some subscription has not acknowledged (the
`revision` subscription made at installation) or a retention policy keeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any

import pulsar

from pagos_worker.application.commands import Comando, ReversarPago
from pagos_worker.application.ports.eventos import MensajeLeido
from pagos_worker.application.ports.operador import CartaMuerta
from pagos_worker.application.ports.outbox import EventPublisher, PlainMessage
from pagos_worker.contract.wire import PROPIEDAD_TIPO, TIPO_REVERSAR, encode_command, encode_reversal

_LOTE = 500
_ESPERA_MS = 5000  # a message said to be available arrives at once; this only bounds a broken broker
_ESPERA_SONDEO_MS = 2000  # is a topic that cannot say its last message empty? (pulsar-lite; see _hay_mas)
_ESPERA_SEGUIR_MS = 500  # following a topic: how often the read wakes (a cancellation is seen then)


class PulsarDeadLetterReader:
    def __init__(self, client: pulsar.Client, topic: str) -> None:
        self._client = client
        self._topic = topic

    async def leer(self, desde: datetime | None = None) -> AsyncIterator[CartaMuerta]:
        async with aclosing(leer_topic(self._client, self._topic, desde)) as mensajes:
            async for mensaje in mensajes:
                yield carta_muerta(mensaje)


class PulsarEventReader:
    """The events topic for `pagos-worker eventos`: a Reader too, so watching changes nothing."""

    def __init__(self, client: pulsar.Client, topic: str) -> None:
        self._client = client
        self._topic = topic

    async def leer(self, desde: datetime | None = None, *, seguir: bool = False) -> AsyncGenerator[MensajeLeido, None]:
        """Closed (`aclose`), its Reader is closed at once: a Reader's subscription is the broker's
        own, non-durable, and goes with it."""
        async with aclosing(leer_topic(self._client, self._topic, desde, hasta_el_final=not seguir)) as mensajes:
            async for mensaje in mensajes:
                yield MensajeLeido(**_campos(mensaje))


async def leer_topic(
    client: pulsar.Client, topic: str, desde: datetime | None = None, *, hasta_el_final: bool = True
) -> AsyncGenerator[Any, None]:
    """The topic's messages with a Reader, oldest first (published at or after `desde`), up to its
    end as it is when the read ends, or on and on (`hasta_el_final=False`). A topic that does not
    exist or holds nothing yields nothing: a fresh installation's dead-letter topic is both."""
    try:
        reader = await asyncio.to_thread(
            client.create_reader, topic, pulsar.MessageId.earliest, receiver_queue_size=_LOTE
        )
    except pulsar.TopicNotFound:  # Apache Pulsar without automatic topic creation: nothing was ever sent
        return
    try:
        if desde is not None:  # the broker skips what was published before (by publish time)
            await asyncio.to_thread(reader.seek, int(desde.timestamp() * 1000))
        if hasta_el_final:
            cursor = _Cursor(reader)
            while lote := await asyncio.to_thread(cursor.siguientes, _LOTE):
                for mensaje in lote:
                    yield mensaje
        else:
            while True:
                if (mensaje := await asyncio.to_thread(_siguiente, reader, _ESPERA_SEGUIR_MS)) is not None:
                    yield mensaje
    finally:
        await asyncio.to_thread(reader.close)


class _Cursor:
    def __init__(self, reader: pulsar.Reader) -> None:
        self._reader = reader
        self._sondeo: Any = None  # a message read to learn whether the topic was empty
        self._leidos = 0

    def siguientes(self, n: int) -> list[Any]:
        """Up to `n` messages, none past the end of the topic as it is now."""
        mensajes: list[Any] = []
        while len(mensajes) < n and self._hay_mas():
            if self._sondeo is not None:
                mensajes.append(self._sondeo)
                self._sondeo = None
            else:
                mensajes.append(self._reader.read_next(_ESPERA_MS))
            self._leidos += 1
        return mensajes

    def _hay_mas(self) -> bool:
        if self._sondeo is not None:
            return True
        try:
            return bool(self._reader.has_message_available())
        except pulsar.UnknownError:
            # pulsar-lite answers the last-message-id query of a topic that holds no message with an
            # error ("Topic has no messages") where Apache Pulsar answers "none". Whether it is empty
            # is then asked by reading: a message that is there arrives at once. Only before the
            # first message: once one was read the topic is not empty, and the error is a real one
            # (a list cut short would let `dlq reenviar` re-drive part of the topic and call it done).
            if self._leidos:
                raise
            self._sondeo = _siguiente(self._reader, _ESPERA_SONDEO_MS)
            return self._sondeo is not None


def _siguiente(reader: pulsar.Reader, espera_ms: int) -> Any:  # noqa: ANN401 - the client's Message
    try:
        return reader.read_next(espera_ms)
    except pulsar.Timeout:
        return None


def carta_muerta(mensaje: Any) -> CartaMuerta:  # noqa: ANN401 - the client's Message
    return CartaMuerta(**_campos(mensaje))


def _campos(mensaje: Any) -> dict[str, Any]:  # noqa: ANN401 - the client's Message
    return {
        "message_id": str(mensaje.message_id()),
        "payload": mensaje.data(),
        "key": mensaje.partition_key() or "",
        "properties": dict(mensaje.properties()),
        "publicada": datetime.fromtimestamp(mensaje.publish_timestamp() / 1000, UTC),
    }


class PulsarCommandPublisher:
    """Commands in their wire form, keyed by `id_pago`, as upstream publishes them: a `ReversarPago`
    with the property `tipo_comando` and, asked for by hand, `operador` (the worker records it)."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    async def publicar(self, comandos: Sequence[Comando]) -> None:
        await self._publisher.publicar([_mensaje(c) for c in comandos])


def _mensaje(comando: Comando) -> PlainMessage:
    if not isinstance(comando, ReversarPago):
        return PlainMessage(payload=encode_command(comando), key=str(comando.id_pago), properties={})
    propiedades = {PROPIEDAD_TIPO: TIPO_REVERSAR}
    if comando.operador:
        propiedades["operador"] = comando.operador  # models.PropiedadesComando.operador
    return PlainMessage(payload=encode_reversal(comando), key=str(comando.id_pago), properties=propiedades)
