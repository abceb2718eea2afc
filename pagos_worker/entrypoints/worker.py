"""The command consumer: decode, call the application, then ack, retry or dead-letter.

A message is acknowledged only after its outcome is committed (or it has been dead-lettered).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import decimal
import random
import time
from collections.abc import Awaitable, Callable

import structlog

from pagos_worker import observability as metrics
from pagos_worker.application.commands import Comando, ReversarPago
from pagos_worker.application.handlers import Accion, Desenlace
from pagos_worker.application.ports.command_source import Clasificador, CommandSource, Delivery
from pagos_worker.application.ports.fallos import FailureLog, FalloDeComando
from pagos_worker.application.ports.outbox import EventPublisher, PlainMessage
from pagos_worker.application.ports.tracing import TraceContext
from pagos_worker.contract.wire import ComandoInvalidoError, decode

log = structlog.get_logger(__name__)

Procesar = Callable[[Comando], Awaitable[Desenlace]]


def decodificar(data: bytes, properties: dict[str, str] | None = None) -> Comando | Desenlace:
    """The command (a `ReversarPago` when its property `tipo_comando` says so, with who asked for
    it by hand from `operador`), or why it goes to the dead-letter topic as it is."""
    try:
        comando = decode(data, properties)
    except ComandoInvalidoError as exc:
        return Desenlace(Accion.DLQ, exc.motivo, exc.detalle)
    if isinstance(comando, ReversarPago) and properties and (operador := properties.get("operador")):
        comando = dataclasses.replace(comando, operador=operador[:200])
    return comando


async def manejar(data: bytes, procesar: Procesar, properties: dict[str, str] | None = None) -> Desenlace:
    """The whole transport decision for one message, without a broker."""
    comando = decodificar(data, properties)
    return comando if isinstance(comando, Desenlace) else await procesar(comando)


def leer_traza(entrega: Delivery) -> TraceContext | None:
    """The W3C trace context of a command message (its `traceparent` and `tracestate` properties).
    An invalid one is ignored: the command goes on without it, never to the dead-letter topic."""
    propiedades = entrega.properties
    if "traceparent" not in propiedades:
        return None
    traza = TraceContext.de_propiedades(propiedades)
    if traza is None:
        log.debug("worker.traceparent_invalido", message_id=entrega.message_id)
    return traza


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
        fallos: FailureLog,
        gate: Callable[[], Awaitable[None]] | None = None,
        max_intentos: int = 5,
        espera_base: float = 0.5,
        espera_maxima: float = 30.0,
    ) -> None:
        """`es_transitorio` tells an outage of the infrastructure (the command is held for a while
        and put back, as often as needed) from a failure of the command's own, which `fallos`
        counts toward `max_intentos`. The hold after an outage grows with the message's deliveries,
        from about `espera_base` seconds to `espera_maxima`."""
        self._source = source
        self._es_transitorio = es_transitorio
        self._fallos = fallos
        self._procesar = procesar
        self._dlq = dlq
        self._gate = gate
        self._max_intentos = max_intentos
        self._espera_base = espera_base
        self._espera_maxima = espera_maxima
        self._parando = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._descartar = self._in_flight.discard  # one bound method for every task's callback
        self._contexto: contextvars.Context | None = None
        metrics.EN_CURSO.set_function(lambda: len(self._in_flight))

    async def run(self, stop: asyncio.Event, *, drain_timeout: float) -> None:
        """Take commands until `stop` is set; then stop intake and give in-flight payments up to
        `drain_timeout` seconds to finish. What does not finish is redelivered by the broker."""
        # Each payment's task runs in a copy of this context, not of the one `_deliver` is called
        # back in (the receiving thread's), and so shares its decimal context, as code in one
        # thread would: made in each task by its first Decimal, they were ~0.35 KB a payment.
        decimal.getcontext()
        self._contexto = contextvars.copy_context()
        self._source.start(asyncio.get_running_loop(), self._deliver)
        await stop.wait()
        self._parando.set()  # commands held after an outage go back at once
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
        traza = leer_traza(entrega)
        contexto = self._contexto.copy() if self._contexto is not None else None
        if traza is not None:
            # Every log line of this delivery names its trace: the task runs in a context of its own.
            contexto = contextvars.copy_context() if contexto is None else contexto
            contexto.run(structlog.contextvars.bind_contextvars, trace_id=traza.trace_id)
        task = asyncio.create_task(self._handle(entrega, traza), context=contexto)
        self._in_flight.add(task)
        task.add_done_callback(self._descartar, context=contexto)

    async def _handle(self, entrega: Delivery, traza: TraceContext | None) -> None:
        comando: Comando | None = None
        try:
            if self._gate is not None:
                await self._gate()  # holds this slot: with every slot waiting, intake stops
            decodificado = decodificar(entrega.data, entrega.properties)
            if isinstance(decodificado, Desenlace):
                desenlace = decodificado
            else:
                comando = decodificado if traza is None else dataclasses.replace(decodificado, traza=traza)
                desenlace = await self._procesar(comando)
            await self._settle(entrega, desenlace)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - an outage or a bug: see _fallo
            await self._fallo(entrega, comando, exc)
        finally:
            self._source.release()

    async def _fallo(self, entrega: Delivery, comando: Comando | None, exc: Exception) -> None:
        """An outage (database, broker) never makes a command poison: it is held, then put back.
        A failure of the command's own is counted across replicas and restarts; the one that reaches
        `max_intentos` records the command as poison and dead-letters it (a payment it left in
        PROCESANDO is the reconciler's, and past the attention age the operators')."""
        if self._es_transitorio(exc):
            await self._devolver_tras_espera(entrega, exc)
            return
        fallo = FalloDeComando(entrega.message_id, comando.id_pago if comando else None, f"{type(exc).__name__}: {exc}")
        try:
            fallos = await self._fallos.contar_fallo(fallo, limite=self._max_intentos)
        except Exception as error:  # noqa: BLE001 - not counted, so never dead-lettered unrecorded
            log.warning("worker.fallo_sin_contar", message_id=entrega.message_id, error=repr(error))
            await self._devolver_tras_espera(entrega, error)
            return
        metrics.etiquetada(metrics.COMANDOS, "fallo_propio").inc()
        if fallos < self._max_intentos:
            log.warning("worker.reintento", message_id=entrega.message_id, fallos=fallos, error=fallo.error)
            self._source.nack(entrega)
            return
        log.error("worker.mensaje_venenoso", message_id=entrega.message_id, fallos=fallos, exc_info=exc)
        detalle = f"{fallos} entregas fallidas por el propio comando; la última: {fallo.error}"
        try:
            await self._dlq.publicar([mensaje_dlq(entrega, Desenlace(Accion.DLQ, "error_repetido", detalle))])
        except Exception:  # noqa: BLE001 - not dead-lettered: it stays on the topic
            self._source.nack(entrega)
            return
        self._source.ack(entrega)
        metrics.etiquetada(metrics.DLQ, "error_repetido").inc()

    async def _devolver_tras_espera(self, entrega: Delivery, exc: BaseException) -> None:
        """Hold the command (and its slot: with every slot held, intake pauses), then put it back.
        The broker's redelivery delay is fixed per consumer; the hold is what grows — with the
        message's deliveries, so across replicas and restarts, jittered, up to its cap — and it ends
        at once on shutdown."""
        espera = self._espera(entrega)
        log.warning(
            "worker.caida", message_id=entrega.message_id, entrega=entrega.redelivery_count + 1,
            espera_s=round(espera, 2), error=repr(exc),
        )  # fmt: skip
        metrics.etiquetada(metrics.COMANDOS, "caida").inc()
        await self._retener(entrega, espera)

    def _espera(self, entrega: Delivery) -> float:
        """How long to hold it: longer at each of its deliveries, jittered, up to the cap."""
        espera: float = min(self._espera_maxima, self._espera_base * 2.0 ** min(entrega.redelivery_count, 16))
        return espera * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security

    async def _retener(self, entrega: Delivery, espera: float) -> None:
        """Hold the command (and its slot), then put it back; at once on shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._parando.wait(), espera)
        self._source.nack(entrega)

    async def _settle(self, entrega: Delivery, desenlace: Desenlace) -> None:
        metrics.etiquetada(metrics.COMANDOS, desenlace.motivo).inc()
        if desenlace.estado is not None:
            metrics.etiquetada(metrics.PAGOS, desenlace.estado).inc()
            if entrega.publicado_ms:
                metrics.LATENCIA.observe(max(0.0, time.time() - entrega.publicado_ms / 1000))
        elif desenlace.reverso is not None:
            metrics.etiquetada(metrics.REVERSOS, desenlace.reverso).inc()
            if (importe := desenlace.reversado) is not None:  # in minor units: an integer, exact
                metrics.etiquetada(metrics.MONTO_REVERSADO, importe.moneda.value).inc(importe.unidades_menores)
        if desenlace.accion is Accion.ACK:
            self._source.ack(entrega)
        elif desenlace.accion is Accion.REINTENTAR:
            self._source.nack(entrega)
        elif desenlace.accion is Accion.ESPERAR:  # it waits on something slow: held, then put back
            await self._retener(entrega, self._espera(entrega))
        else:
            await self._dlq.publicar([mensaje_dlq(entrega, desenlace)])
            self._source.ack(entrega)
            metrics.etiquetada(metrics.DLQ, desenlace.motivo).inc()
            log.warning("worker.dlq", motivo=desenlace.motivo, detalle=desenlace.detalle, message_id=entrega.message_id)
