"""What the chaos suite and the benchmark use to talk to the broker like any other service: a
publisher of commands at a steady rate, and readers of the events and dead-letter topics. They run on
threads of their own with the plain pulsar-client and survive broker restarts."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import _pulsar  # type: ignore[import-not-found]
import orjson
import pulsar


def cliente(url: str, log: Path) -> pulsar.Client:
    # A file logger: the client's reconnection chatter stays out of the report.
    return pulsar.Client(url, operation_timeout_seconds=30, logger=pulsar.FileLogger(pulsar.LoggerLevel.Warn, str(log)))


@dataclass(frozen=True, slots=True)
class EventoVisto:
    event_id: str
    event_type: str
    id_pago: str
    recibido: float  # time.monotonic() when it arrived here
    id_reverso: str | None = None  # a reversal's event (keyed by id_pago too): which reversal


class Lector:
    """Reads a topic from the beginning on a thread, acknowledging as it goes."""

    def __init__(self, client: pulsar.Client, topic: str, subscription: str) -> None:
        self._consumer = client.subscribe(
            topic, subscription, consumer_type=pulsar.ConsumerType.Shared,
            initial_position=pulsar.InitialPosition.Earliest, receiver_queue_size=2000,
        )  # fmt: skip
        self.eventos: list[EventoVisto] = []
        self.mensajes: list[tuple[bytes, dict[str, str]]] = []
        self._parar = threading.Event()
        self._hilo = threading.Thread(target=self._leer, name=f"lector-{subscription}", daemon=True)
        self._hilo.start()

    def _leer(self) -> None:
        # The native consumer, acks that do not wait: this process shares the machine with what it
        # measures, so it should cost as little as it can.
        nativo = self._consumer._consumer  # noqa: SLF001
        while not self._parar.is_set():
            try:
                msg = nativo.receive(200)
            except pulsar.Timeout:
                continue
            except pulsar.AlreadyClosed:
                return
            except Exception:  # noqa: BLE001 - reconnecting: keep reading
                time.sleep(0.2)
                continue
            ahora = time.monotonic()
            nativo.acknowledge_async(msg, None)
            self.mensajes.append((msg.data(), dict(msg.properties())))
            try:
                cuerpo = orjson.loads(msg.data())
                data = cuerpo["data"]
                self.eventos.append(
                    EventoVisto(
                        cuerpo["event_id"], cuerpo["event_type"], data["id_pago"], ahora, data.get("id_reverso")
                    )
                )
            except (orjson.JSONDecodeError, KeyError, TypeError):
                pass  # not an event (dead letters are read as raw messages)

    def cerrar(self) -> None:
        self._parar.set()
        self._hilo.join()
        self._consumer.close()


# A message to publish: its bytes, its key, and its properties if it has any.
Mensaje = tuple[bytes, str | None] | tuple[bytes, str | None, dict[str, str]]


class Publicador:
    """Publishes messages at `rate` a second on a thread. `enviados[i]` is when message i left;
    `confirmados` counts those the broker stored. No send timeout: through a broker restart the
    client keeps them and sends them when it is back.

    `por_lote` (the benchmark, no restarts): no callback per message — one would cost the client's
    thread the GIL for every message, in the process that stamps the events' arrival — and a flush
    every few dozen confirms them; a flush refused while the client reconnects would count as
    failed messages that are in fact resent, so the chaos suite confirms each message instead.

    `tick`: sleep at least that long when ahead of time, then send every message already due, as
    an upstream service that sends what gathered in the last millisecond or two: the rate stays
    fixed, the thread wakes once a tick instead of once a message, and `debidos` keeps each
    message's due time, from which its latency is measured (the wait for the tick included)."""

    def __init__(
        self, client: pulsar.Client, topic: str, *, batching: bool = False, por_lote: bool = False, tick: float = 0.0
    ) -> None:
        self._por_lote = por_lote
        self._tick = tick
        self._producer = client.create_producer(
            topic, send_timeout_millis=0, block_if_queue_full=True, max_pending_messages=50_000,
            batching_enabled=batching, batching_max_publish_delay_ms=1, batching_max_messages=500,
        )  # fmt: skip
        self.enviados: list[float] = []
        self.debidos: list[float] = []  # when message i was due at `rate`
        self.mensajes: Sequence[Mensaje] = ()
        self.confirmados = 0
        self.fallidos = 0
        self._lock = threading.Lock()
        self._hilo: threading.Thread | None = None

    def empezar(self, mensajes: Sequence[Mensaje], rate: float) -> None:
        self.mensajes = mensajes
        self._hilo = threading.Thread(target=self._publicar, args=(mensajes, rate), name="publicador", daemon=True)
        self._hilo.start()

    def _publicar(self, mensajes: Sequence[Mensaje], rate: float) -> None:
        nativo = self._producer._producer  # noqa: SLF001
        inicio = time.monotonic()
        sin_confirmar = 0
        for i, (data, key, *propiedades) in enumerate(mensajes):
            if (espera := inicio + i / rate - time.monotonic()) > 0:
                if sin_confirmar and espera > 0.05:  # noqa: PLR2004 - idle a while: confirm what went out
                    nativo.flush_async(functools.partial(self._respuesta, sin_confirmar))
                    sin_confirmar = 0
                time.sleep(max(espera, self._tick))
            self.debidos.append(inicio + i / rate)
            self.enviados.append(time.monotonic())
            builder = _pulsar.MessageBuilder()
            builder.content(data)
            if key:
                builder.partition_key(key)
            for nombre, valor in (propiedades[0] if propiedades else {}).items():  # a ReversarPago's tipo_comando
                builder.property(nombre, valor)
            if not self._por_lote:
                nativo.send_async(builder.build(), functools.partial(self._respuesta, 1))
                continue
            nativo.send_async(builder.build(), None)
            sin_confirmar += 1
            if sin_confirmar >= 50:  # noqa: PLR2004
                nativo.flush_async(functools.partial(self._respuesta, sin_confirmar))
                sin_confirmar = 0
        if sin_confirmar:
            nativo.flush_async(functools.partial(self._respuesta, sin_confirmar))
        self._producer.flush()

    def _respuesta(self, n: int, resultado: pulsar.Result, *_: object) -> None:
        with self._lock:
            if resultado == pulsar.Result.Ok:
                self.confirmados += n
            else:
                self.fallidos += n

    def esperar(self, timeout: float | None = None) -> bool:
        if self._hilo is not None:
            self._hilo.join(timeout)
            return not self._hilo.is_alive()
        return True

    def cerrar(self) -> None:
        self._producer.close()
