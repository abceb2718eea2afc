"""Hand-written fakes of the ports, for unit tests. Asserted on end state, not on calls."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from pagos_worker.application.ports.fallos import FalloDeComando
from pagos_worker.application.ports.outbox import Message, OutboxEvent
from pagos_worker.application.ports.pasarela import ResultadoIndeterminadoError, ResultadoPago
from pagos_worker.application.ports.repository import Reclamo
from pagos_worker.application.ports.tracing import TraceContext
from pagos_worker.clock import utcnow
from pagos_worker.contract.wire import encode_event
from pagos_worker.domain.errors import PagoEnCursoError, PagoRequiereAtencionError, PagoYaProcesadoError
from pagos_worker.domain.events import EventoPago
from pagos_worker.domain.pago import EstadoPago, Pago


def _copia(pago: Pago) -> Pago:
    return dataclasses.replace(pago, eventos=[])


class FakePagoRepository:
    """The port's semantics, applied with the domain's own rules."""

    def __init__(self) -> None:
        self.pagos: dict[UUID, Pago] = {}
        self.outbox: list[EventoPago] = []
        self.trazas: dict[UUID, TraceContext | None] = {}  # the trace context stored with each outcome

    async def reclamar(self, pago: Pago) -> Reclamo:
        guardado = self.pagos.get(pago.id_pago)
        if guardado is None:
            nuevo = dataclasses.replace(pago, eventos=[], clave_desde=pago.clave_desde or pago.fecha_creacion)
            self.pagos[pago.id_pago] = nuevo
            return Reclamo(_copia(nuevo), reclamado=True)
        if not guardado.mismos_terminos(pago):
            return Reclamo(_copia(guardado), reclamado=False)
        assert pago.lease is not None
        try:
            guardado.iniciar_procesamiento(pago.lease, pago.fecha_creacion)
        except (PagoYaProcesadoError, PagoEnCursoError, PagoRequiereAtencionError):
            return Reclamo(_copia(guardado), reclamado=False)
        return Reclamo(_copia(guardado), reclamado=True)

    async def guardar_resultado(self, pago: Pago, traza: TraceContext | None = None) -> list[OutboxEvent] | None:
        guardado = self.pagos[pago.id_pago]
        if guardado.estado is not EstadoPago.PROCESANDO:
            return None
        self.pagos[pago.id_pago] = _copia(pago)
        self.outbox.extend(pago.eventos)
        self.trazas[pago.id_pago] = traza
        ahora = utcnow()
        return [
            OutboxEvent(
                len(self.outbox) - len(pago.eventos) + i + 1,
                e.event_id,
                e.tipo,
                e.id_pago,
                encode_event(e),
                ahora,
                traceparent=traza.traceparent if traza else None,
                tracestate=traza.tracestate if traza else None,
            )
            for i, e in enumerate(pago.eventos)
        ]

    async def renovar_clave(self, pago: Pago) -> bool:
        guardado = self.pagos[pago.id_pago]
        mio = guardado.lease is not None and pago.lease is not None and guardado.lease.owner == pago.lease.owner
        if guardado.estado is not EstadoPago.PROCESANDO or not mio:
            return False
        if guardado.generacion_clave != pago.generacion_clave - 1:
            return False
        guardado.generacion_clave, guardado.clave_desde = pago.generacion_clave, pago.clave_desde
        return True

    async def liberar(self, pago: Pago) -> None:
        guardado = self.pagos[pago.id_pago]
        mio = guardado.lease is not None and pago.lease is not None and guardado.lease.owner == pago.lease.owner
        if guardado.estado is EstadoPago.PROCESANDO and mio:
            guardado.lease = pago.lease
            guardado.ultimo_error = pago.ultimo_error
            guardado.requiere_atencion = pago.requiere_atencion
            guardado.intentos = pago.intentos

    async def atascados(self, lease_vencido_antes_de: datetime, limite: int) -> list[Pago]:
        vencidos = [
            p
            for p in self.pagos.values()
            if p.estado is EstadoPago.PROCESANDO
            and p.lease is not None
            and p.lease.expira < lease_vencido_antes_de
            and not p.requiere_atencion
        ]
        return [_copia(p) for p in sorted(vencidos, key=lambda p: p.lease.expira)[:limite]]  # type: ignore[union-attr]

    async def obtener(self, id_pago: UUID) -> Pago | None:
        pago = self.pagos.get(id_pago)
        return None if pago is None else _copia(pago)

    def eventos_de(self, id_pago: UUID) -> list[str]:
        return [e.tipo for e in self.outbox if e.id_pago == id_pago]


class FakePasarelaDePagos:
    """Answers from a script per payment (default: paid); records every call."""

    def __init__(self, respuestas: dict[UUID, ResultadoPago | Exception] | None = None) -> None:
        self.respuestas = respuestas or {}
        self.llamadas: list[UUID] = []
        self.consultas: list[UUID] = []
        self.claves: list[tuple[UUID, int]] = []  # (id_pago, key generation) of every payout call
        self.transferencias: dict[UUID, str | Exception] = {}  # what a lookup finds (or raises)

    async def esperar_disponible(self) -> None:
        return None

    async def buscar_transferencia(self, pago: Pago) -> str | None:
        self.consultas.append(pago.id_pago)
        if isinstance(hallado := self.transferencias.get(pago.id_pago), Exception):
            raise hallado
        return hallado

    async def procesar_pago(self, pago: Pago) -> ResultadoPago:
        self.llamadas.append(pago.id_pago)
        self.claves.append((pago.id_pago, pago.generacion_clave))
        respuesta = self.respuestas.get(pago.id_pago, ResultadoPago.exito(f"ref_{pago.id_pago.hex[:8]}"))
        if isinstance(respuesta, Exception):
            raise respuesta
        if respuesta.exitoso and respuesta.referencia_pago:
            self.transferencias[pago.id_pago] = respuesta.referencia_pago
        return respuesta


INDETERMINADO = ResultadoIndeterminadoError("timeout")


class FakePublisher:
    def __init__(self, fallos: int = 0) -> None:
        self.mensajes: list[Message] = []
        self.fallos = fallos

    async def publicar(self, mensajes: Sequence[Message]) -> None:
        if self.fallos:
            self.fallos -= 1
            raise ConnectionError("broker unavailable")
        self.mensajes.extend(mensajes)


class FakeFailureLog:
    """`FailureLog`'s semantics in memory: counts per message id, poison recorded at the limit."""

    def __init__(self, falla: Exception | None = None) -> None:
        self.fallos: dict[str, int] = {}
        self.venenosos: dict[str, FalloDeComando] = {}
        self.falla = falla

    async def contar_fallo(self, fallo: FalloDeComando, *, limite: int) -> int:
        if self.falla is not None:
            raise self.falla
        self.fallos[fallo.message_id] = n = self.fallos.get(fallo.message_id, 0) + 1
        if n >= limite:
            self.venenosos.setdefault(fallo.message_id, fallo)
        return n


def es_caida(exc: BaseException) -> bool:
    """The unit tests' outages: a refused or lost connection."""
    return isinstance(exc, ConnectionError)


async def hasta(condicion: Callable[[], object], segundos: float = 30.0) -> None:
    """Wait until `condicion()` holds (polling), or fail the test once `segundos` of the loop's
    clock have gone by. Generous on purpose: a condition that comes ends the wait when it comes,
    and only a test that fails waits it out; what an idle machine does in milliseconds may take a
    loaded one seconds. On virtual time (tests/tiempo_virtual.py) the wait costs nothing."""
    loop = asyncio.get_running_loop()
    fin = loop.time() + segundos
    while not condicion():
        if loop.time() >= fin:
            raise AssertionError(f"no ocurrió en {segundos} s")
        await asyncio.sleep(0.005)


class FakeReservaDeTurnos:
    """`ReservaDeTurnos` in memory: the account's schedule (GCRA) on this process's clock, shared
    by every `PresupuestoDeCuenta` handed this object. `falla`: raised by every reservation."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, adelanto_max_s: float = 10.0) -> None:
        self._clock = clock
        self._adelanto_max_s = adelanto_max_s
        self.tat: float | None = None
        self.reservados = 0
        self.lotes: list[int] = []
        self.falla: Exception | None = None

    async def reservar(self, n: int, intervalo_s: float, tolerancia_s: float) -> tuple[float, int]:
        if self.falla is not None:
            raise self.falla
        ahora = self._clock()
        inicio = max(self.tat if self.tat is not None else -math.inf, ahora - tolerancia_s)
        inicio = min(inicio, ahora + self._adelanto_max_s)  # a schedule wrongly far ahead (a clock step)
        self.tat = inicio + n * intervalo_s
        self.reservados += n
        self.lotes.append(n)
        return inicio - ahora, self.reservados
