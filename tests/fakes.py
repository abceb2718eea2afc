"""Hand-written fakes of the ports, for unit tests. Asserted on end state, not on calls."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from pagos_worker.application.ports.fallos import FalloDeComando
from pagos_worker.application.ports.outbox import Message, OutboxEvent
from pagos_worker.application.ports.pasarela import ResultadoIndeterminadoError, ResultadoPago, SinPruebaDePagoError
from pagos_worker.application.ports.repository import Liberacion, Reclamo
from pagos_worker.application.ports.tracing import TraceContext
from pagos_worker.clock import utcnow
from pagos_worker.contract.wire import encode_event
from pagos_worker.domain.errors import PagoEnCursoError, PagoRequiereAtencionError, PagoYaProcesadoError
from pagos_worker.domain.events import EventoPago
from pagos_worker.domain.pago import EstadoPago, Lease, Pago, PoliticaAtencion
from pagos_worker.domain.reverso import Reverso


def _copia(pago: Pago) -> Pago:
    return dataclasses.replace(pago, eventos=[])


class FakePagoRepository:
    """The port's semantics, applied with the domain's own rules, on the store's own clock
    (`reloj`: a test moves it, and gives the handler another to show that only this one counts)."""

    def __init__(self, reloj: Callable[[], datetime] = utcnow) -> None:
        self.reloj = reloj
        self.pagos: dict[UUID, Pago] = {}
        self.outbox: list[EventoPago] = []
        self.trazas: dict[UUID, TraceContext | None] = {}  # the trace context stored with each outcome
        self.fin_llamadas: dict[UUID, datetime | None] = {}
        self.fin_llamadas_previas: dict[UUID, datetime | None] = {}
        self.obsoletas: list[str] = []  # the writes of stale claims, refused

    async def reclamar(self, pago: Pago) -> Reclamo:
        ahora = self.reloj()
        assert pago.lease is not None
        lease = Lease(pago.lease.owner, ahora + (pago.lease.expira - pago.fecha_creacion))
        guardado = self.pagos.get(pago.id_pago)
        if guardado is None:
            nuevo = dataclasses.replace(
                pago, eventos=[], fecha_creacion=ahora, clave_desde=ahora, lease=lease, reclamo=1
            )
            self.pagos[pago.id_pago] = nuevo
            self.fin_llamadas[pago.id_pago], self.fin_llamadas_previas[pago.id_pago] = lease.expira, None
            return Reclamo(_copia(nuevo), reclamado=True, ahora=ahora)
        previas = self.fin_llamadas_previas.get(pago.id_pago)
        if not guardado.mismos_terminos(pago):
            return Reclamo(_copia(guardado), reclamado=False, ahora=ahora, fin_llamadas_previas=previas)
        try:
            guardado.iniciar_procesamiento(lease, ahora)
        except (PagoYaProcesadoError, PagoEnCursoError, PagoRequiereAtencionError):
            return Reclamo(_copia(guardado), reclamado=False, ahora=ahora, fin_llamadas_previas=previas)
        guardado.reclamo += 1
        previas = self.fin_llamadas_previas[pago.id_pago] = self.fin_llamadas.get(pago.id_pago)
        self.fin_llamadas[pago.id_pago] = lease.expira
        return Reclamo(_copia(guardado), reclamado=True, ahora=ahora, fin_llamadas_previas=previas)

    def _mio(self, pago: Pago, escritura: str) -> Pago | None:
        guardado = self.pagos[pago.id_pago]
        if guardado.estado is EstadoPago.PROCESANDO and guardado.reclamo == pago.reclamo:
            return guardado
        self.obsoletas.append(escritura)
        return None

    async def guardar_resultado(self, pago: Pago, traza: TraceContext | None = None) -> list[OutboxEvent] | None:
        if self._mio(pago, "resultado") is None:
            return None
        self.pagos[pago.id_pago] = _copia(pago)
        self.outbox.extend(pago.eventos)
        self.trazas[pago.id_pago] = traza
        ahora = self.reloj()
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

    async def renovar_clave(self, pago: Pago, politica: PoliticaAtencion) -> datetime | None:
        if (guardado := self._mio(pago, "renovar_clave")) is None:
            return None
        ahora = self.reloj()
        previas = self.fin_llamadas_previas.get(pago.id_pago)
        asentado = previas is None or previas + politica.margen_asentamiento <= ahora
        if guardado.generacion_clave != pago.generacion_clave or not guardado.clave_vencida(ahora, politica):
            return None
        if not asentado or guardado.clave_desde is None:
            return None
        guardado.renovar_clave(ahora)
        return ahora

    async def liberar(self, pago: Pago, como: Liberacion, politica: PoliticaAtencion) -> bool | None:
        if (guardado := self._mio(pago, "liberar")) is None or guardado.lease is None:
            return None
        ahora = self.reloj()
        previas = self.fin_llamadas_previas.get(pago.id_pago)
        espera = previas + politica.margen_asentamiento if como is Liberacion.ESPERA and previas else ahora
        guardado.lease = Lease(guardado.lease.owner, max(ahora, espera))
        self.fin_llamadas[pago.id_pago] = ahora if como is Liberacion.LLAMO else previas
        guardado.ultimo_error = pago.ultimo_error
        guardado.intentos = pago.intentos
        guardado.clave_agotada = pago.clave_agotada
        viejo = como is Liberacion.LLAMO and ahora - guardado.fecha_creacion >= politica.max_antiguedad
        guardado.requiere_atencion = pago.requiere_atencion or viejo
        return guardado.requiere_atencion

    async def cerrar_anulado(self, pago: Pago, traza: TraceContext | None = None) -> list[OutboxEvent] | None:
        return None  # this fake knows no reversals: no payment is ever annulled in it

    async def atascados(self, gracia: timedelta, limite: int) -> list[Pago]:
        antes = self.reloj() - gracia
        vencidos = [
            p
            for p in self.pagos.values()
            if p.estado is EstadoPago.PROCESANDO
            and p.lease is not None
            and p.lease.expira < antes
            and not p.requiere_atencion
        ]
        return [_copia(p) for p in sorted(vencidos, key=lambda p: p.lease.expira)[:limite]]  # type: ignore[union-attr]

    async def obtener(self, id_pago: UUID) -> Pago | None:
        pago = self.pagos.get(id_pago)
        return None if pago is None else _copia(pago)

    def eventos_de(self, id_pago: UUID) -> list[str]:
        return [e.tipo for e in self.outbox if e.id_pago == id_pago]

    async def envejecer(self, id_pago: UUID, delta: timedelta) -> None:
        """As `tests.conftest.envejecer_pago`: the store's clock moved on `delta` for this payment."""
        pago = self.pagos[id_pago]
        pago.fecha_creacion -= delta
        pago.clave_desde = pago.clave_desde and pago.clave_desde - delta
        pago.lease = pago.lease and Lease(pago.lease.owner, pago.lease.expira - delta)
        for tiempos in (self.fin_llamadas, self.fin_llamadas_previas):
            tiempos[id_pago] = tiempos.get(id_pago) and tiempos[id_pago] - delta  # type: ignore[operator]


@dataclass(frozen=True, slots=True)
class ExitoSinRespuesta:
    """A scripted answer: the gateway pays, and the answer never reaches us (a timeout)."""


class FakePasarelaDePagos:
    """Answers from a script per payment (default: paid); records every call. Like Stripe, a key
    already used returns its first outcome, and a transfer is listed only `retraso_listado` after
    it was made (its list endpoints are eventually consistent), on the clock `reloj`."""

    def __init__(
        self,
        respuestas: dict[UUID, ResultadoPago | Exception | ExitoSinRespuesta] | None = None,
        *,
        reloj: Callable[[], datetime] = utcnow,
        retraso_listado: timedelta = timedelta(0),
    ) -> None:
        self.respuestas = respuestas or {}
        self.reloj = reloj
        self.retraso_listado = retraso_listado
        self.llamadas: list[UUID] = []
        self.consultas: list[UUID] = []
        self.claves: list[tuple[UUID, int]] = []  # (id_pago, key generation) of every payout call
        self.transferencias: dict[UUID, str | Exception] = {}  # what a lookup finds (or raises)
        self.pagados: dict[UUID, list[tuple[int, datetime]]] = {}  # the transfers made: (generation, when)
        # Reversals, as payments: scripted answers per id_reverso, the calls (id_reverso, generation),
        # and those made at the gateway (generation, when), which its lookup finds.
        self.respuestas_reverso: dict[UUID, ResultadoPago | Exception | ExitoSinRespuesta] = {}
        self.reversos_llamadas: list[tuple[UUID, int]] = []
        self.reversos_consultas: list[UUID] = []
        self.revertidos: dict[UUID, list[tuple[int, datetime]]] = {}

    async def esperar_disponible(self) -> None:
        return None

    async def buscar_transferencia(self, pago: Pago) -> str | None:
        self.consultas.append(pago.id_pago)
        if isinstance(hallado := self.transferencias.get(pago.id_pago), Exception):
            raise hallado
        if hallado is not None:
            return hallado
        listados = [
            g for g, cuando in self.pagados.get(pago.id_pago, []) if cuando + self.retraso_listado <= self.reloj()
        ]
        if len(listados) > 1:  # as the adapter: paid twice proves nothing, an operator decides
            raise SinPruebaDePagoError(f"{len(listados)} transfers del pago")
        return f"tr_fake_{pago.id_pago.hex[:8]}_{listados[0]}" if listados else None

    async def procesar_pago(self, pago: Pago) -> ResultadoPago:
        self.llamadas.append(pago.id_pago)
        self.claves.append((pago.id_pago, pago.generacion_clave))
        respuesta = self.respuestas.get(pago.id_pago, ResultadoPago.exito(f"ref_{pago.id_pago.hex[:8]}"))
        if isinstance(respuesta, ExitoSinRespuesta):
            pagados = self.pagados.setdefault(pago.id_pago, [])
            if pago.generacion_clave not in [g for g, _ in pagados]:  # a key seen before pays nothing more
                pagados.append((pago.generacion_clave, self.reloj()))
            raise ResultadoIndeterminadoError("timeout tras pagar")
        if isinstance(respuesta, Exception):
            raise respuesta
        if respuesta.exitoso and respuesta.referencia_pago:
            self.transferencias[pago.id_pago] = respuesta.referencia_pago
        return respuesta

    async def revertir(self, reverso: Reverso) -> ResultadoPago:
        self.reversos_llamadas.append((reverso.id_reverso, reverso.generacion_clave))
        respuesta = self.respuestas_reverso.get(reverso.id_reverso, ResultadoPago.exito(_trr(reverso)))
        hechos = self.revertidos.setdefault(reverso.id_reverso, [])
        hecho = isinstance(respuesta, ExitoSinRespuesta) or (isinstance(respuesta, ResultadoPago) and respuesta.exitoso)
        if hecho and reverso.generacion_clave not in [g for g, _ in hechos]:  # a key seen before does nothing more
            hechos.append((reverso.generacion_clave, self.reloj()))
        if isinstance(respuesta, ExitoSinRespuesta):
            raise ResultadoIndeterminadoError("timeout tras revertir")
        if isinstance(respuesta, Exception):
            raise respuesta
        return respuesta

    async def buscar_reverso(self, reverso: Reverso) -> str | None:
        self.reversos_consultas.append(reverso.id_reverso)
        listados = [
            g
            for g, cuando in self.revertidos.get(reverso.id_reverso, [])
            if cuando + self.retraso_listado <= self.reloj()
        ]
        if len(listados) > 1:
            raise SinPruebaDePagoError(f"{len(listados)} reversos de {reverso.id_reverso}")
        return _trr(reverso) if listados else None


def _trr(reverso: Reverso) -> str:
    return f"trr_fake_{reverso.id_reverso.hex[:8]}"


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
