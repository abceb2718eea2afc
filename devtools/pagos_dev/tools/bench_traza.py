"""What carrying W3C trace context costs a payment, piece by piece, in the worker's process: each
piece the header added to the hot path, timed without and with a `traceparent`, and the spans'
cost when tracing is on. Best of `repeticiones` rounds (the least disturbed by whatever else runs on
the machine), in nanoseconds a payment.

Pieces (what every payment pays, whatever it carries):
- `leer`: the worker reads the command message's properties (pulsar-client's native message) and
  looks for `traceparent`; with one, it is parsed and validated.
- `entrega`: with a traceparent only, the command gets it and the delivery's task a context with
  `trace_id` bound.
- `log`: structlog's contextvars merge, per log line (one INFO line a payment).
- `outbox`: the result's statement parameters and the committed events built by the PostgreSQL
  repository (its database call stubbed out), per payment of a batch of 200: the whole of it, of
  which encoding the event is most.
- `propiedades`: an event's message properties.
And with tracing on (an exporter that drops what it gets, spans batched as in production):
- `spans`: the command's, the gateway call's and the publication's spans around no-op work.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import _pulsar  # type: ignore[import-not-found]
import structlog
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from pagos_worker.adapters.otel import proveedor as otel
from pagos_worker.adapters.otel.pasarela import TracingPasarelaDePagos
from pagos_worker.adapters.otel.publisher import TracingEventPublisher
from pagos_worker.adapters.otel.tracer import OtelTracer
from pagos_worker.adapters.postgres.repository import PostgresPagoRepository
from pagos_worker.adapters.pulsar.consumer import PulsarDelivery
from pagos_worker.application.commands import ProcesarPago
from pagos_worker.application.ports.outbox import Message, OutboxEvent
from pagos_worker.application.ports.pasarela import ResultadoPago
from pagos_worker.application.ports.tracing import TraceContext
from pagos_worker.domain import Dinero, Lease, Moneda, Pago
from pagos_worker.domain.reverso import Reverso
from pagos_worker.entrypoints.worker import leer_traza

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
LOTE = 200


def _mejor(ronda: Callable[[], float], repeticiones: int) -> float:
    ronda()  # warm-up
    return min(ronda() for _ in range(repeticiones))


def _por_vez(f: Callable[[], object], veces: int) -> Callable[[], float]:
    def ronda() -> float:
        t0 = time.perf_counter()
        for _ in range(veces):
            f()
        return (time.perf_counter() - t0) / veces * 1e9

    return ronda


def _mensaje(propiedades: dict[str, str]) -> Any:  # noqa: ANN401 - the client's native Message
    builder = _pulsar.MessageBuilder()
    builder.content(b'{"id_pago": "..."}')
    for clave, valor in propiedades.items():
        builder.property(clave, valor)
    return builder.build()


def _pagos(n: int) -> list[Pago]:
    ahora = datetime.now(UTC)
    pagos = []
    for _ in range(n):
        pago = Pago.crear(
            id_pago=uuid.uuid4(), id_afiliado="a", importe=Dinero(Decimal("5.00"), Moneda.EUR), ahora=ahora
        )
        pago.iniciar_procesamiento(Lease("w", ahora + timedelta(seconds=30)), ahora)
        pago.marcar_exitoso("tr_1", ahora)
        pagos.append(pago)
    return pagos


class _SinBaseDeDatos(PostgresPagoRepository):
    """The repository's own work on a batch of results; the statement answers at once."""

    def __init__(self) -> None:  # no engine, no connections
        self._publicador = "w"

    async def _execute(self, _: object, params: dict[str, Any]) -> list[Any]:
        filas = [{"id_pago": i, "id": None, "event_id": None, "creado_en": None} for i in params["ids"]]
        filas += [{"id_pago": None, "id": n, "event_id": e, "creado_en": None} for n, e in enumerate(params["ev_ids"])]
        return filas


def _outbox(traza: TraceContext | None, repeticiones: int) -> float:
    repo, lote = _SinBaseDeDatos(), [(p, traza) for p in _pagos(LOTE)]

    async def ronda() -> float:
        t0 = time.perf_counter()
        for _ in range(10):
            await repo._save_results_batch(lote)  # noqa: SLF001 - the part under test
        return (time.perf_counter() - t0) / 10 / LOTE * 1e9

    async def medir() -> float:
        await ronda()
        return min([await ronda() for _ in range(repeticiones)])

    return asyncio.run(medir())


class _Descartar(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:  # noqa: ARG002 - dropped
        return SpanExportResult.SUCCESS


class _Pasarela:
    async def procesar_pago(self, _: Pago) -> ResultadoPago:
        return ResultadoPago.exito("tr_1")

    async def buscar_transferencia(self, _: Pago) -> str | None:
        return None

    async def revertir(self, _: Reverso) -> ResultadoPago:
        return ResultadoPago.exito("trr_1")

    async def buscar_reverso(self, _: Reverso) -> str | None:
        return None

    async def esperar_disponible(self) -> None:
        return None


class _Publicador:
    async def publicar(self, mensajes: Sequence[Message]) -> None:  # noqa: ARG002 - dropped
        return None


def _spans(traza: TraceContext | None, veces: int, repeticiones: int) -> float:
    provider = otel.proveedor(_Descartar())
    tracer = otel.tracer(provider)
    comando = OtelTracer(tracer, topic="pagos-comandos", subscription="pagos-worker")
    pasarela = TracingPasarelaDePagos(_Pasarela(), tracer)
    publicador = TracingEventPublisher(_Publicador(), tracer, topic="pagos-events")
    [pago] = _pagos(1)
    evento = OutboxEvent(1, uuid.uuid4(), "PagoExitoso", pago.id_pago, b"{}")

    async def uno() -> None:
        with comando.comando(traza, pago.id_pago) as contexto:
            await pasarela.procesar_pago(pago)
            comando.anotar({"pagos.desenlace": "procesado", "pagos.estado": "EXITOSO"})
        guardado = dataclasses.replace(evento, traceparent=contexto.traceparent, tracestate=contexto.tracestate)
        await publicador.publicar([guardado])

    async def ronda() -> float:
        t0 = time.perf_counter()
        for _ in range(veces):
            await uno()
        return (time.perf_counter() - t0) / veces * 1e9

    async def medir() -> float:
        await ronda()
        return min([await ronda() for _ in range(repeticiones)])

    try:
        return asyncio.run(medir())
    finally:
        provider.shutdown()


def main(veces: int = 20_000, repeticiones: int = 15) -> dict[str, dict[str, float]]:
    traza = TraceContext.leer(TRACEPARENT, "congo=t61rcWkgMzE")
    assert traza is not None  # noqa: S101
    sin, con = PulsarDelivery(_mensaje({})), PulsarDelivery(_mensaje({"traceparent": TRACEPARENT}))
    comando = ProcesarPago(uuid.uuid4(), "a", Dinero(Decimal("1.00"), Moneda.USD))

    def entrega() -> None:
        dataclasses.replace(comando, traza=traza)
        contexto = contextvars.copy_context()
        contexto.run(structlog.contextvars.bind_contextvars, trace_id=traza.trace_id)

    merge = structlog.contextvars.merge_contextvars
    con_trace_id = contextvars.copy_context()
    con_trace_id.run(structlog.contextvars.bind_contextvars, trace_id=traza.trace_id)
    evento = OutboxEvent(1, uuid.uuid4(), "PagoExitoso", uuid.uuid4(), b"{}")
    evento_con = dataclasses.replace(evento, traceparent=traza.traceparent, tracestate=traza.tracestate)

    def mejor(f: Callable[[], object]) -> float:
        return _mejor(_por_vez(f, veces), repeticiones)

    vacio = mejor(lambda: None)  # the loop and the call itself, taken off every piece
    resultados = {
        "leer": {"sin": mejor(lambda: leer_traza(sin)) - vacio, "con": mejor(lambda: leer_traza(con)) - vacio},
        "entrega": {"sin": 0.0, "con": mejor(entrega) - vacio},
        "log": {
            "sin": mejor(lambda: merge(None, "info", {})) - vacio,
            "con": mejor(lambda: con_trace_id.run(merge, None, "info", {})) - vacio,
        },
        "outbox": {"sin": _outbox(None, repeticiones), "con": _outbox(traza, repeticiones)},
        "propiedades": {
            "sin": mejor(lambda: evento.properties) - vacio,
            "con": mejor(lambda: evento_con.properties) - vacio,
        },
        "spans": {
            "sin": _spans(None, veces // 10, repeticiones),
            "con": _spans(traza, veces // 10, repeticiones),
        },
    }
    for pieza, fila in resultados.items():
        print(f"{pieza:<12} sin traceparent {fila['sin']:>8.0f} ns   con traceparent {fila['con']:>8.0f} ns")
    print(json.dumps({"bench": "traza", "veces": veces, "repeticiones": repeticiones, "ns_por_pago": resultados}))
    return resultados
