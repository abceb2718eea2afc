"""The ProcesarPago command handler: claim, pay through the gateway, store outcome and event."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

import structlog

from pagos_worker.application.commands import ProcesarPago, ReversarPago
from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.application.ports.pasarela import (
    ClaveAgotadaError,
    PasarelaDePagos,
    PasarelaNoDisponibleError,
    ResultadoIndeterminadoError,
    ResultadoPago,
    SinPruebaDePagoError,
)
from pagos_worker.application.ports.repository import Liberacion, PagoRepository, Reclamo
from pagos_worker.application.ports.tracing import TraceContext, Tracer
from pagos_worker.clock import utcnow
from pagos_worker.domain.dinero import Dinero
from pagos_worker.domain.pago import ANULADO_ANTES_DE_PAGAR, Lease, Pago, PoliticaAtencion
from pagos_worker.domain.reclamo import Reclamable

log = structlog.get_logger(__name__)
T = TypeVar("T", bound=Reclamable)
C = TypeVar("C", ProcesarPago, ReversarPago)
T_contra = TypeVar("T_contra", bound=Reclamable, contravariant=True)


class Accion(StrEnum):
    """What the transport must do with the command's message."""

    ACK = "ack"
    REINTENTAR = "reintentar"  # negative ack: the broker redelivers it later
    ESPERAR = "esperar"  # held for a while (longer at each delivery), then put back: it waits on something slow
    DLQ = "dlq"  # publish to the dead-letter topic with the reason, then ack


@dataclass(frozen=True, slots=True)
class Desenlace:
    accion: Accion
    motivo: str
    detalle: str = ""
    estado: str | None = None  # the payment's final state, when this delivery produced it
    # A reversal's outcome, when this delivery produced it: `exitoso`, `anulado` or the failure's
    # code; and what came back with it (an EXITOSO one's amount).
    reverso: str | None = None
    reversado: Dinero | None = None


PROCESADO = Desenlace(Accion.ACK, "procesado")
YA_PROCESADO = Desenlace(Accion.ACK, "ya_procesado")
EN_CURSO = Desenlace(Accion.REINTENTAR, "en_curso")


class _Reclamos(Protocol[T_contra]):
    """The two writes of a claim that every claimed item has (`PagoRepository`'s, `ReversoRepository`'s)."""

    async def liberar(self, item: T_contra, como: Liberacion, politica: PoliticaAtencion, /) -> bool | None: ...
    async def renovar_clave(self, item: T_contra, politica: PoliticaAtencion, /) -> datetime | None: ...


class ManejadorDeReclamos(Generic[T, C]):
    """What handling a claimed item (a payment, a reversal) shares: its command's span, its clock,
    giving it back without an outcome, and the lookup before a retry calls the gateway again. One
    mechanism for both."""

    _prefijo: str  # its log events' (`pago`, `reverso`)

    def __init__(
        self,
        reclamos: _Reclamos[T],
        pasarela: PasarelaDePagos,
        *,
        owner: str,
        lease: timedelta,
        atencion: PoliticaAtencion | None = None,
        publicar: Callable[[Sequence[OutboxEvent]], None] | None = None,
        tracer: Tracer | None = None,
        reloj: Callable[[], datetime] = utcnow,
    ) -> None:
        """`publicar`: handed the events of each stored outcome right after their commit (the
        process's `ImmediatePublisher`); without it the relays publish them. `tracer`: a span
        around each command, which its events then name as their parent; without one (no tracing
        configured) nothing is spent on spans and the command's own trace context, if any, is
        what its events carry."""
        self._reclamos = reclamos
        self._pasarela = pasarela
        self._owner = owner
        self._lease = lease
        self._atencion = atencion or PoliticaAtencion()
        self._publicar = publicar
        self._tracer = tracer
        self._reloj = reloj

    async def __call__(self, comando: C) -> Desenlace:
        if self._tracer is None:
            return await self._manejar(comando, comando.traza)
        with self._tracer.comando(comando.traza, comando.id_pago) as traza:
            # The span's ids in the item's log lines, including the gateway adapter's.
            with structlog.contextvars.bound_contextvars(trace_id=traza.trace_id, span_id=traza.parent_id):
                desenlace = await self._manejar(comando, traza)
            self._tracer.anotar({"pagos.desenlace": desenlace.motivo, "pagos.estado": desenlace.estado or ""})
            return desenlace

    async def _manejar(self, comando: C, traza: TraceContext | None) -> Desenlace:
        raise NotImplementedError

    async def _buscar(self, item: T) -> str | None:
        """What the gateway already holds for it (its reference), or None."""
        raise NotImplementedError

    def _ahora(self, item: T) -> datetime:
        """The database's time now, as this holder knows it: its lease's end there, less what is left
        of it on this host's monotonic clock (a host's clock only measures a duration)."""
        lease = item.lease
        if lease is None or lease.plazo is None:
            return self._reloj()
        return lease.expira - timedelta(seconds=lease.plazo - time.monotonic())

    async def _sin_resultado(self, item: T, exc: Exception) -> Desenlace:
        """Give the item back when this claim ends without an outcome. Nothing sent (the circuit
        was open, or it waits for the settle margin): the attempt is given back. Sent, or perhaps:
        the outcome is unknown, and the item is retried or, past its limits, flagged."""
        if isinstance(exc, ClaveNoRenovadaError):
            return EN_CURSO  # another worker holds it by now
        if isinstance(exc, ResultadoIndeterminadoError) and not isinstance(exc, PasarelaNoDisponibleError):
            return await self._desconocido(item, exc)
        espera = isinstance(exc, EsperaDeAsentamientoError)
        item.no_intentado(str(exc), self._ahora(item))
        como = Liberacion.ESPERA if espera else Liberacion.NO_LLAMO
        if await self._reclamos.liberar(item, como, self._atencion) is None:
            return _obsoleto(item, "liberar")
        motivo = "esperando_asentamiento" if espera else "pasarela_no_disponible"
        log.warning(f"{self._prefijo}.{motivo}", **item.ids, error=str(exc))
        return Desenlace(Accion.REINTENTAR, motivo, str(exc))

    async def _desconocido(self, item: T, exc: ResultadoIndeterminadoError) -> Desenlace:
        item.resultado_desconocido(
            str(exc),
            self._ahora(item),  # the item's age is the database's
            self._atencion,
            clave_agotada=isinstance(exc, ClaveAgotadaError),
            sin_prueba=isinstance(exc, SinPruebaDePagoError),
        )
        # A lookup that failed before any call is counted as a call too: its end only delays a renewal.
        if (marcado := await self._reclamos.liberar(item, Liberacion.LLAMO, self._atencion)) is None:
            return _obsoleto(item, "liberar")
        item.requiere_atencion = marcado  # the attempts' limit here, or the age by the database's clock
        registrar = log.error if item.requiere_atencion else log.warning
        registrar(
            f"{self._prefijo}.resultado_indeterminado",
            **item.ids,
            error=str(exc),
            intentos=item.intentos,
            requiere_atencion=item.requiere_atencion,
        )
        if item.requiere_atencion:
            return Desenlace(Accion.ACK, REQUIERE_ATENCION.motivo, str(exc))
        return Desenlace(Accion.REINTENTAR, "resultado_indeterminado", str(exc))

    async def _hallado_antes_de_llamar(
        self, item: T, ahora: datetime | None, previas: datetime | None
    ) -> ResultadoPago | None:
        """Before a retry calls, it looks the item up at the gateway: what it holds settles it
        (whatever key made it); nothing found allows the call (None), with the same key while it
        may still be sent, else with a new key generation recorded before it is used. A new key
        only once the earlier calls are a settle margin old (`ahora`: the database's clock, at the
        claim): what a call we gave up on made may not be listed before; until then it waits."""
        ahora = ahora or self._reloj()
        vencida = item.clave_vencida(ahora, self._atencion)
        if vencida and previas is not None and (falta := previas + self._atencion.margen_asentamiento - ahora) > _CERO:
            raise EsperaDeAsentamientoError(
                f"la clave {item.generacion_clave} ya no se envía y su última llamada pudo terminar hace "
                f"menos del margen: una clave nueva dentro de {falta.total_seconds():.0f} s, tras consultar"
            )
        if (referencia := await self._buscar(item)) is not None:
            log.info(f"{self._prefijo}.hallado_en_la_pasarela", **item.ids, referencia=referencia)
            return ResultadoPago.exito(referencia)
        if vencida:
            if item.clave_desde is None:
                # Stored before key generations, it may have been paid without a transfer_group:
                # the lookup cannot see that payout, so a new key could pay it twice.
                raise ResultadoIndeterminadoError("clave vencida de un pago anterior a transfer_group: revisar")
            if (desde := await self._reclamos.renovar_clave(item, self._atencion)) is None:
                raise ClaveNoRenovadaError(item.identidad)
            item.renovar_clave(desde)
            log.warning(f"{self._prefijo}.clave_renovada", **item.ids, generacion=item.generacion_clave)
        return None


class ProcesarPagoHandler(ManejadorDeReclamos[Pago, ProcesarPago]):
    _prefijo = "pago"

    _reclamos: PagoRepository

    async def _manejar(self, comando: ProcesarPago, traza: TraceContext | None) -> Desenlace:
        reclamo = await self._reclamar(comando, traza)
        if isinstance(reclamo, Desenlace):
            return reclamo
        pago = reclamo.pago
        assert pago is not None  # noqa: S101 - the port returns the payment it claimed
        try:
            resultado = (
                await self._hallado_antes_de_llamar(pago, reclamo.ahora, reclamo.fin_llamadas_previas)
                if pago.es_reintento()
                else None
            )
            del reclamo  # not held through the gateway call (thousands are in flight with a slow gateway)
            if resultado is None:  # the gateway call is awaited here: no helper's frame held through it
                resultado = await self._pasarela.procesar_pago(pago)
        except (ClaveNoRenovadaError, EsperaDeAsentamientoError, ResultadoIndeterminadoError) as exc:
            return await self._sin_resultado(pago, exc)
        ahora = self._ahora(pago)
        if resultado.exitoso:
            pago.marcar_exitoso(resultado.referencia_pago or "", ahora)
        else:
            pago.marcar_fallido(resultado.mensaje_error or "Pago rechazado", ahora, resultado.referencia_pago)
        return await self._guardar(pago, traza)

    async def _reclamar(self, comando: ProcesarPago, traza: TraceContext | None) -> Reclamo | Desenlace:
        """The claim of the payment for this worker, or the command's outcome when it cannot be.
        Its own frame: the payment asked for is not held through the gateway call (thousands are in
        flight at once with a slow gateway, and every object per payment counts)."""
        enviado_mono = time.monotonic()  # to count the lease's remaining time from
        enviado = self._reloj()
        solicitado = Pago.crear(
            id_pago=comando.id_pago, id_afiliado=comando.id_afiliado, importe=comando.importe, ahora=enviado
        )
        solicitado.iniciar_procesamiento(Lease(self._owner, enviado + self._lease), enviado)
        reclamo = await self._reclamos.reclamar(solicitado)
        if not reclamo.reclamado:
            if reclamo.anulado_por is not None:
                return await self._anulado(solicitado, reclamo, traza)
            return _no_reclamado(solicitado, reclamo)
        pago = reclamo.pago
        assert pago is not None  # noqa: S101 - the port returns the payment it claimed
        if pago.lease is not None and reclamo.ahora is not None:
            # The holder's deadline on this host's monotonic clock: what the database left of the
            # lease at the claim, counted from before the claim was sent (never past the database's).
            restante = (pago.lease.expira - reclamo.ahora).total_seconds()
            pago.lease = Lease(self._owner, pago.lease.expira, enviado_mono + restante)
        return reclamo

    async def _anulado(self, pago: Pago, reclamo: Reclamo, traza: TraceContext | None) -> Desenlace:
        """A reversal came before it and annulled it: it fails now, without a gateway call."""
        pago.marcar_fallido(ANULADO_ANTES_DE_PAGAR, reclamo.ahora or self._reloj())
        if (eventos := await self._reclamos.cerrar_anulado(pago, traza)) is None:
            return EN_CURSO  # another delivery closed it meanwhile: the next one finds it final
        if self._publicar is not None:
            self._publicar(eventos)
        log.info("pago.anulado_antes_de_pagar", id_pago=str(pago.id_pago), id_reverso=str(reclamo.anulado_por))
        return Desenlace(Accion.ACK, PROCESADO.motivo, estado=pago.estado.value)

    async def _buscar(self, item: Pago) -> str | None:
        return await self._pasarela.buscar_transferencia(item)

    async def _guardar(self, pago: Pago, traza: TraceContext | None) -> Desenlace:
        eventos = await self._reclamos.guardar_resultado(pago, traza)
        if eventos is None:
            # Final already, or claimed again since (this claim's lease ran out): nothing was stored
            # nor will be published of this outcome; whoever holds the payment now settles it.
            log.warning(
                "pago.resultado_no_guardado", id_pago=str(pago.id_pago), reclamo=pago.reclamo, estado=pago.estado.value
            )
            return YA_PROCESADO
        if self._publicar is not None:
            self._publicar(eventos)
        log.info(
            "pago.procesado",
            id_pago=str(pago.id_pago),
            event_id=str(pago.eventos[-1].event_id),
            estado=pago.estado.value,
            intentos=pago.intentos,
        )
        return Desenlace(Accion.ACK, PROCESADO.motivo, estado=pago.estado.value)


class ClaveNoRenovadaError(Exception):
    """The new key generation could not be recorded: the payment is no longer this worker's."""


class EsperaDeAsentamientoError(Exception):
    """The current key may not be sent any more, and a call made under it may still be finishing at
    the gateway, unlisted: no lookup proves anything yet, so no new key either. Nothing was sent."""


def _obsoleto(item: Reclamable, escritura: str) -> Desenlace:
    """A write of a claim that was taken since changed nothing: the item is someone else's now."""
    tipo = "pago" if isinstance(item, Pago) else "reverso"
    log.warning(f"{tipo}.escritura_obsoleta", **item.ids, escritura=escritura, reclamo=item.reclamo)
    return EN_CURSO


REQUIERE_ATENCION = Desenlace(Accion.ACK, "requiere_atencion")
_CERO = timedelta(0)


def _no_reclamado(solicitado: Pago, reclamo: Reclamo) -> Desenlace:
    guardado = reclamo.pago
    if guardado is None:
        return EN_CURSO
    if not guardado.mismos_terminos(solicitado):
        return Desenlace(
            Accion.DLQ,
            "conflicto_con_pago_existente",
            f"el pago {guardado.id_pago} ya existe como {guardado.importe} para {guardado.id_afiliado!r}; "
            f"el comando pide {solicitado.importe} para {solicitado.id_afiliado!r}",
        )
    if guardado.estado.es_final:
        return YA_PROCESADO
    ahora = reclamo.ahora or solicitado.fecha_creacion  # the database's time of the claim
    if guardado.requiere_atencion and not (guardado.lease and guardado.lease.vigente(ahora)):
        # Automatic retries are over for it: the command is settled, the payment waits for an operator.
        return REQUIERE_ATENCION
    return EN_CURSO
