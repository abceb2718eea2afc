"""Prometheus metrics (served at GET /metrics by the api role). Only adapters and entry points record
them; the domain and the application know nothing of Prometheus."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import exposition as _exposition

REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE = _exposition.CONTENT_TYPE_LATEST

# Fine where gateways and the pipeline usually are (a p99 read off these is within a few ms there).
_SEGUNDOS = (
    0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75,
    1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip

COMANDOS = Counter(
    "pagos_comandos_total", "Commands settled by this replica, by outcome", ["motivo"], registry=REGISTRY
)
PAGOS = Counter("pagos_finales_total", "Payments that reached a final state", ["estado"], registry=REGISTRY)
DLQ = Counter("pagos_dlq_total", "Commands sent to the dead-letter topic, by reason", ["motivo"], registry=REGISTRY)
LATENCIA = Histogram(
    "pagos_latencia_segundos",
    "From the command's publication to its outcome committed (end to end, as the service sees it)",
    buckets=_SEGUNDOS,
    registry=REGISTRY,
)
PASARELA = Histogram(
    "pasarela_latencia_segundos",
    "One payout through the gateway, retries included, by result",
    ["resultado"],
    buckets=_SEGUNDOS,
    registry=REGISTRY,
)
PASARELA_REVERSOS = Histogram(
    "pasarela_reversos_latencia_segundos",
    "One transfer reversal through the gateway, retries included, by result",
    ["resultado"],
    buckets=_SEGUNDOS,
    registry=REGISTRY,
)
REVERSOS = Counter(
    "pagos_reversos_total",
    "Reversals that reached a final outcome, by outcome (exitoso, anulado, or the failure's code)",
    ["resultado"],
    registry=REGISTRY,
)
MONTO_REVERSADO = Counter(
    "pagos_monto_reversado_unidades_menores_total",
    "Money that came back through reversals, in the currency's major units, by currency",
    ["moneda"],
    registry=REGISTRY,
)
RESPUESTAS = Counter(
    "pasarela_respuestas_total",
    "The gateway's HTTP answers, by status code (no answer at all: 'ninguna')",
    ["status"],
    registry=REGISTRY,
)
TRANSFERS_MULTIPLES = Counter(
    "pasarela_transfers_multiples_total",
    "Lookups that found more than one transfer for one payment: it was paid more than once",
    registry=REGISTRY,
)
SIN_DESTINO = Counter(
    "pasarela_sin_destino_total",
    "Payments failed without a gateway call: their affiliate has no connected account configured",
    registry=REGISTRY,
)
ESCRITURAS_OBSOLETAS = Counter(
    "pagos_escritura_obsoleta",
    "Writes of a holder whose claim on the payment was taken since (its lease ran out): nothing was "
    "written, by what it tried to write (resultado, liberar, renovar_clave, operador)",
    ["escritura"],
    registry=REGISTRY,
)
RECONCILIADOR_ERRORES = Counter(
    "reconciliador_errores",
    "Payments whose handling raised in a reconciler's pass: skipped, the pass went on",
    registry=REGISTRY,
)
CONCILIACION_PETICIONES = Counter(
    "conciliacion_peticiones_total",
    "Requests to Stripe made by reconciliations (within their share of the account's budget)",
    registry=REGISTRY,
)
CONCILIACION_DIFERENCIAS = Gauge(
    "conciliacion_diferencias",
    "Differences with Stripe found by the last complete reconciliation, by class",
    ["clase"],
    registry=REGISTRY,
)
CONCILIACION_ULTIMA_EXITOSA = Gauge(
    "conciliacion_ultima_exitosa_timestamp_segundos",
    "When the last complete reconciliation ended (Unix time; 0: none since this process started)",
    registry=REGISTRY,
)


def conciliacion_completa(diferencias: dict[str, int], terminada: float) -> None:
    """A reconciliation completed: its differences by class, and when (Unix time)."""
    for clase, n in diferencias.items():
        CONCILIACION_DIFERENCIAS.labels(clase).set(n)
    CONCILIACION_ULTIMA_EXITOSA.set(terminada)


EN_CURSO = Gauge("pagos_en_curso", "Commands this replica is processing", registry=REGISTRY)
CIRCUITO = Gauge("pasarela_circuito_abierto", "1 while the gateway's circuit is open or half-open", registry=REGISTRY)
PRESUPUESTO_USO = Gauge(
    "pasarela_presupuesto_uso",
    "Share (0..1) of the Stripe account's request budget reserved over the last 10 s by every replica together",
    registry=REGISTRY,
)
OUTBOX_PENDIENTES = Gauge("outbox_pendientes", "Events committed and not yet published", registry=REGISTRY)
OUTBOX_ANTIGUEDAD = Gauge(
    "outbox_pendiente_mas_antiguo_segundos", "Age of the oldest event not yet published", registry=REGISTRY
)
REVERSOS_ATENCION = Gauge(
    "pagos_reversos_requieren_atencion",
    "Reversals waiting for an operator (refused at the gateway, or flagged after unknown outcomes); "
    "counted in pagos_requieren_atencion too",
    registry=REGISTRY,
)
REQUIEREN_ATENCION = Gauge(
    "pagos_requieren_atencion",
    "Payments and reversals an operator must look at: flagged (a reversal refused for the affiliate's balance too), "
    "or PROCESANDO past the attention age; and the reconciliation's differences no operator has resolved yet "
    "(sampled from the database)",
    registry=REGISTRY,
)
OUTBOX_LAG = Histogram(
    "outbox_lag_segundos",
    "From an event's commit to the broker's confirmation of its publication",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
    registry=REGISTRY,
)

M = TypeVar("M", Counter, Histogram)


@functools.cache
def etiquetada(metrica: M, valor: str) -> M:
    """`metrica.labels(valor)`, looked up once: labels() costs more than the inc() it serves, a few
    times per payment. Label values here are codes from small fixed sets."""
    return metrica.labels(valor)


RETRASO_DEL_BUCLE = Histogram(
    "event_loop_retraso_segundos",
    "How late the event loop ran a timer (sampled 10 times a second): time everything in it waited",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
    registry=REGISTRY,
)


def exposicion() -> bytes:
    return generate_latest(REGISTRY)


async def muestrear(
    medir: Callable[[], Awaitable[tuple[int, float | None]]], stop: asyncio.Event, intervalo: float = 5.0
) -> None:
    """Refresh the outbox gauges every `intervalo` seconds with (pending, oldest age) from `medir`."""
    while not stop.is_set():
        with contextlib.suppress(Exception):
            pendientes, antiguedad = await medir()
            OUTBOX_PENDIENTES.set(pendientes)
            OUTBOX_ANTIGUEDAD.set(antiguedad or 0.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), intervalo)


async def muestrear_atencion(
    contar: Callable[[], Awaitable[tuple[int, int, int]]], stop: asyncio.Event, intervalo: float = 15.0
) -> None:
    """Refresh `pagos_requieren_atencion` (payments, reversals and unresolved differences) and
    `pagos_reversos_requieren_atencion` every `intervalo` seconds (indexed counts)."""
    while not stop.is_set():
        with contextlib.suppress(Exception):
            pagos, reversos, diferencias = await contar()
            REQUIEREN_ATENCION.set(pagos + reversos + diferencias)
            REVERSOS_ATENCION.set(reversos)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), intervalo)


async def medir_retraso_del_bucle(stop: asyncio.Event, intervalo: float = 0.1) -> None:
    """Observe how late a `intervalo`-second sleep wakes: a busy loop, a long GC pause or a process
    waiting for a core shows here before it shows anywhere else."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        debido = loop.time() + intervalo
        await asyncio.sleep(intervalo)
        RETRASO_DEL_BUCLE.observe(max(0.0, loop.time() - debido))
