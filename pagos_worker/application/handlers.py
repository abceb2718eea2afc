"""The ProcesarPago command handler: claim, pay through the gateway, store outcome and event."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import structlog

from pagos_worker.application.commands import ProcesarPago
from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.application.ports.pasarela import (
    PasarelaDePagos,
    PasarelaNoDisponibleError,
    ResultadoIndeterminadoError,
)
from pagos_worker.application.ports.repository import PagoRepository
from pagos_worker.clock import utcnow
from pagos_worker.domain.pago import Lease, Pago, PoliticaAtencion

log = structlog.get_logger(__name__)


class Accion(StrEnum):
    """What the transport must do with the command's message."""

    ACK = "ack"
    REINTENTAR = "reintentar"  # negative ack: the broker redelivers it later
    DLQ = "dlq"  # publish to the dead-letter topic with the reason, then ack


@dataclass(frozen=True, slots=True)
class Desenlace:
    accion: Accion
    motivo: str
    detalle: str = ""
    estado: str | None = None  # the final state, when this delivery produced it


PROCESADO = Desenlace(Accion.ACK, "procesado")
YA_PROCESADO = Desenlace(Accion.ACK, "ya_procesado")
EN_CURSO = Desenlace(Accion.REINTENTAR, "en_curso")


class ProcesarPagoHandler:
    def __init__(
        self,
        pagos: PagoRepository,
        pasarela: PasarelaDePagos,
        *,
        owner: str,
        lease: timedelta,
        atencion: PoliticaAtencion | None = None,
        publicar: Callable[[Sequence[OutboxEvent]], None] | None = None,
        reloj: Callable[[], datetime] = utcnow,
    ) -> None:
        """`publicar`: handed the events of each stored outcome right after their commit (the
        process's `ImmediatePublisher`); without it the relays publish them."""
        self._pagos = pagos
        self._publicar = publicar
        self._pasarela = pasarela
        self._owner = owner
        self._lease = lease
        self._atencion = atencion or PoliticaAtencion()
        self._reloj = reloj

    async def __call__(self, comando: ProcesarPago) -> Desenlace:
        ahora = self._reloj()
        solicitado = Pago.crear(
            id_pago=comando.id_pago, id_afiliado=comando.id_afiliado, importe=comando.importe, ahora=ahora
        )
        solicitado.iniciar_procesamiento(Lease(self._owner, ahora + self._lease), ahora)
        reclamo = await self._pagos.reclamar(solicitado)
        if not reclamo.reclamado:
            return _no_reclamado(solicitado, reclamo.pago)
        pago = reclamo.pago
        assert pago is not None  # noqa: S101 - the port returns the payment it claimed
        try:
            resultado = await self._pasarela.procesar_pago(pago)
        except PasarelaNoDisponibleError as exc:
            pago.no_intentado(str(exc), self._reloj())
            await self._pagos.liberar(pago)
            log.warning("pago.no_intentado", id_pago=str(pago.id_pago), error=str(exc))
            return Desenlace(Accion.REINTENTAR, "pasarela_no_disponible", str(exc))
        except ResultadoIndeterminadoError as exc:
            pago.resultado_desconocido(str(exc), self._reloj(), self._atencion)
            await self._pagos.liberar(pago)
            registrar = log.error if pago.requiere_atencion else log.warning
            registrar(
                "pago.resultado_indeterminado",
                id_pago=str(pago.id_pago),
                error=str(exc),
                intentos=pago.intentos,
                requiere_atencion=pago.requiere_atencion,
            )
            return Desenlace(Accion.REINTENTAR, "resultado_indeterminado", str(exc))
        if resultado.exitoso:
            pago.marcar_exitoso(resultado.referencia_pago or "", self._reloj())
        else:
            pago.marcar_fallido(resultado.mensaje_error or "Pago rechazado", self._reloj(), resultado.referencia_pago)
        eventos = await self._pagos.guardar_resultado(pago)
        if eventos is None:
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


def _no_reclamado(solicitado: Pago, guardado: Pago | None) -> Desenlace:
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
    return EN_CURSO
