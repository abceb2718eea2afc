"""The command consumer: decode, call the application, then ack, retry or dead-letter.

A message is acknowledged only after its outcome is committed (or it has been dead-lettered).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from pagos_worker import observability as metrics
from pagos_worker.application.commands import ProcesarPago
from pagos_worker.application.handlers import Accion, Desenlace
from pagos_worker.application.ports.command_source import Clasificador, CommandSource, Delivery
from pagos_worker.application.ports.outbox import EventPublisher, PlainMessage
from pagos_worker.contract.wire import ComandoInvalidoError, decode_command

log = structlog.get_logger(__name__)

Procesar = Callable[[ProcesarPago], Awaitable[Desenlace]]


async def manejar(data: bytes, procesar: Procesar) -> Desenlace:
    """The whole transport decision for one message, without a broker."""
    try:
        comando = decode_command(data)
    except ComandoInvalidoError as exc:
        return Desenlace(Accion.DLQ, exc.motivo, exc.detalle)
    return await procesar(comando)


def mensaje_dlq(entrega: Delivery, desenlace: Desenlace) -> PlainMessage:
    """The command as it came, with properties saying why it was refused and where it came from."""
    properties = {
        **entrega.properties,
        "motivo": desenlace.motivo,
        "detalle": desenlace.detalle[:1000],
        "topic_origen": entrega.topic,
        "message_id_origen": entrega.message_id,
    }
    return PlainMessage(payload=entrega.data, key=entrega.key or "", properties=properties)


class CommandWorker:
    def __init__(
        self,
        source: CommandSource,
        procesar: Procesar,
        dlq: EventPublisher,
        *,
        es_transitorio: Clasificador,
        gate: Callable[[], Awaitable[None]] | None = None,
        max_intentos: int = 5,
    ) -> None:
        """`es_transitorio` tells an outage of the infrastructure (put the command back, as often
        as needed) from a failure of this command (counted toward `max_intentos`)."""
        self._source = source
        self._es_transitorio = es_transitorio
        self._procesar = procesar
        self._dlq = dlq
        self._gate = gate
        self._max_intentos = max_intentos
        self._in_flight: set[asyncio.Task[None]] = set()
        metrics.EN_CURSO.set_function(lambda: len(self._in_flight))

    async def run(self, stop: asyncio.Event, *, drain_timeout: float) -> None:
        """Take commands until `stop` is set; then stop intake and give in-flight payments up to
        `drain_timeout` seconds to finish. What does not finish is redelivered by the broker."""
        self._source.start(asyncio.get_running_loop(), self._deliver)
        await stop.wait()
        await self._source.stop_receiving()
        if self._in_flight:
            log.info("worker.drenando", en_curso=len(self._in_flight), timeout_s=drain_timeout)
            _, pending = await asyncio.wait(self._in_flight, timeout=drain_timeout)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)
            if pending:
                log.warning("worker.sin_terminar", pagos=len(pending))

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def _deliver(self, entrega: Delivery) -> None:
        task = asyncio.create_task(self._handle(entrega))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _handle(self, entrega: Delivery) -> None:
        try:
            if self._gate is not None:
                await self._gate()  # holds this slot: with every slot waiting, intake stops
            desenlace = await manejar(entrega.data, self._procesar)
            await self._settle(entrega, desenlace)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - an outage or a bug: see _fallo
            await self._fallo(entrega, exc)
        finally:
            self._source.release()

    async def _fallo(self, entrega: Delivery, exc: Exception) -> None:
        """An outage (database, broker) puts the command back as often as needed. Anything else that
        keeps failing is a poison message: after `max_intentos` deliveries it goes to the DLQ with
        the reason instead of cycling forever (a payment it left in PROCESANDO is the reconciler's)."""
        intentos = entrega.redelivery_count + 1
        if self._es_transitorio(exc) or intentos < self._max_intentos:
            log.warning("worker.reintento", message_id=entrega.message_id, intento=intentos, error=repr(exc))
            self._source.nack(entrega)
            return
        log.error("worker.mensaje_venenoso", message_id=entrega.message_id, intentos=intentos, exc_info=exc)
        detalle = f"{intentos} entregas fallidas; la última: {type(exc).__name__}: {exc}"
        try:
            await self._dlq.publicar([mensaje_dlq(entrega, Desenlace(Accion.DLQ, "error_repetido", detalle))])
        except Exception:  # noqa: BLE001 - not dead-lettered: it stays on the topic
            self._source.nack(entrega)
            return
        self._source.ack(entrega)
        metrics.etiquetada(metrics.DLQ, "error_repetido").inc()

    async def _settle(self, entrega: Delivery, desenlace: Desenlace) -> None:
        metrics.etiquetada(metrics.COMANDOS, desenlace.motivo).inc()
        if desenlace.estado is not None:
            metrics.etiquetada(metrics.PAGOS, desenlace.estado).inc()
            if entrega.publicado_ms:
                metrics.LATENCIA.observe(max(0.0, time.time() - entrega.publicado_ms / 1000))
        if desenlace.accion is Accion.ACK:
            self._source.ack(entrega)
        elif desenlace.accion is Accion.REINTENTAR:
            self._source.nack(entrega)
        else:
            await self._dlq.publicar([mensaje_dlq(entrega, desenlace)])
            self._source.ack(entrega)
            metrics.etiquetada(metrics.DLQ, desenlace.motivo).inc()
            log.warning("worker.dlq", motivo=desenlace.motivo, detalle=desenlace.detalle, message_id=entrega.message_id)
