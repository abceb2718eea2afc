"""The ReversarPago command handler: admit the reversal against its payment, reverse it through the
gateway, store the outcome and its event. Claims, leases, fencing, the lookup before a retry and the
attention list are the payments' own (`ManejadorDeReclamos`)."""

from __future__ import annotations

import time

import structlog

from pagos_worker.application.commands import ReversarPago
from pagos_worker.application.handlers import (
    EN_CURSO,
    PROCESADO,
    REQUIERE_ATENCION,
    YA_PROCESADO,
    Accion,
    ClaveNoRenovadaError,
    Desenlace,
    EsperaDeAsentamientoError,
    ManejadorDeReclamos,
)
from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.application.ports.pasarela import ResultadoIndeterminadoError
from pagos_worker.application.ports.reversos import Llegada, ReclamoDeReverso, ReversoRepository
from pagos_worker.application.ports.tracing import TraceContext
from pagos_worker.domain.reclamo import Lease
from pagos_worker.domain.reverso import CodigoReversoFallido, EstadoReverso, Reverso

log = structlog.get_logger(__name__)

# Its payment may stay unsettled for long (flagged for an operator): held, longer at each delivery.
ESPERANDO_PAGO = Desenlace(Accion.ESPERAR, "esperando_pago")


class ReversarPagoHandler(ManejadorDeReclamos[Reverso, ReversarPago]):
    _prefijo = "reverso"
    _reclamos: ReversoRepository

    async def _manejar(self, comando: ReversarPago, traza: TraceContext | None) -> Desenlace:
        enviado_mono = time.monotonic()
        enviado = self._reloj()
        pedido = Reverso(
            id_reverso=comando.id_reverso,
            id_pago=comando.id_pago,
            monto_pedido=comando.monto,
            motivo=comando.motivo,
            descripcion=comando.descripcion,
            operador=comando.operador,
            fecha_creacion=enviado,
        )
        reclamo = await self._reclamos.reclamar(pedido, Lease(self._owner, enviado + self._lease), traza)
        if reclamo.llegada is not Llegada.RECLAMADO:
            return self._sin_reclamar(comando, reclamo)
        reverso = reclamo.reverso
        assert reverso is not None  # noqa: S101 - the port returns what it claimed
        assert reverso.lease is not None  # noqa: S101 - claimed: under this worker's lease
        # The holder's deadline on this host's monotonic clock (see `ProcesarPagoHandler._reclamar`).
        restante = (reverso.lease.expira - reclamo.ahora).total_seconds()
        reverso.lease = Lease(self._owner, reverso.lease.expira, enviado_mono + restante)
        try:
            resultado = None
            if reverso.es_reintento():
                resultado = await self._hallado_antes_de_llamar(reverso, reclamo.ahora, reclamo.fin_llamadas_previas)
            if resultado is None:
                resultado = await self._pasarela.revertir(reverso)
        except (ClaveNoRenovadaError, EsperaDeAsentamientoError, ResultadoIndeterminadoError) as exc:
            return await self._sin_resultado(reverso, exc)
        ahora = self._ahora(reverso)
        if resultado.exitoso:
            reverso.marcar_exitoso(resultado.referencia_pago or "", ahora)
        else:
            codigo = CodigoReversoFallido(resultado.codigo or CodigoReversoFallido.RECHAZADO_POR_LA_PASARELA)
            mensaje = resultado.mensaje_error or "Reverso rechazado"
            reverso.marcar_fallido(codigo, mensaje, ahora, resultado.referencia_pago)  # Stripe's request id
        if (eventos := await self._reclamos.guardar_resultado(reverso, traza)) is None:
            log.warning("reverso.resultado_no_guardado", **reverso.ids, reclamo=reverso.reclamo)
            return YA_PROCESADO
        return self._hecho(reverso, eventos)

    def _sin_reclamar(self, comando: ReversarPago, reclamo: ReclamoDeReverso) -> Desenlace:
        llegada = reclamo.llegada
        if llegada in (Llegada.ANULADO, Llegada.FALLIDO):
            assert reclamo.reverso is not None  # noqa: S101 - decided and stored just now
            return self._hecho(reclamo.reverso, reclamo.eventos)
        if llegada is Llegada.CONFLICTO:
            guardado = reclamo.reverso
            assert guardado is not None  # noqa: S101 - the conflict is with it
            return Desenlace(
                Accion.DLQ,
                "conflicto_con_reverso_existente",
                f"el reverso {guardado.id_reverso} ya existe para el pago {guardado.id_pago} por "
                f"{guardado.monto_pedido or 'todo lo pendiente'} ({guardado.motivo}); el comando pide "
                f"{comando.monto or 'todo lo pendiente'} del pago {comando.id_pago} ({comando.motivo})",
            )
        if llegada is Llegada.ESPERA:
            log.info("reverso.esperando_pago", id_pago=str(comando.id_pago), id_reverso=str(comando.id_reverso))
            return ESPERANDO_PAGO
        return {Llegada.YA_PROCESADO: YA_PROCESADO, Llegada.REQUIERE_ATENCION: REQUIERE_ATENCION}.get(llegada, EN_CURSO)

    def _hecho(self, reverso: Reverso, eventos: list[OutboxEvent]) -> Desenlace:
        if self._publicar is not None:
            self._publicar(eventos)
        registrar = log.error if reverso.requiere_atencion else log.info
        registrar(
            "reverso.procesado",
            **reverso.ids,
            estado=reverso.estado.value,
            codigo=reverso.codigo.value if reverso.codigo else None,
            monto=str(reverso.importe) if reverso.importe else None,
            requiere_atencion=reverso.requiere_atencion,
        )
        exitoso = reverso.estado is EstadoReverso.EXITOSO
        resultado = reverso.codigo.value if reverso.codigo else reverso.estado.value.lower()
        return Desenlace(
            Accion.ACK, PROCESADO.motivo, reverso=resultado, reversado=reverso.importe if exitoso else None
        )

    async def _buscar(self, item: Reverso) -> str | None:
        return await self._pasarela.buscar_reverso(item)
