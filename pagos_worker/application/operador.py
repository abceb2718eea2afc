"""What an operator on call does to a payment: settle it by hand from what the gateway shows, or
return a flagged one to automatic processing.

Both act like a worker would, never around one: the payment is taken under a lease of its own,
fenced on the row as it was read (state, lease, key generation), and its final state, event and
resolution are written in one transaction, only while that lease still holds it. The event then
leaves through the outbox like any other.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from pagos_worker.application.commands import ProcesarPago, ReversarPago
from pagos_worker.application.ports.operador import CommandPublisher, OperadorRepository, Resolucion
from pagos_worker.application.ports.pasarela import (
    ConsultaDeTransferencias,
    ResultadoIndeterminadoError,
    TransferenciaHallada,
)
from pagos_worker.application.queries import PagoNoEncontradoError
from pagos_worker.domain.errors import PagoEnCursoError
from pagos_worker.domain.pago import EstadoPago, Lease, Pago
from pagos_worker.domain.reverso import EstadoReverso, Reverso

log = structlog.get_logger(__name__)


_CERO = timedelta(0)


class OperacionRechazadaError(Exception):
    """The operator's command was refused; nothing was changed. The message says why, and what to do."""


@dataclass(frozen=True, slots=True)
class PagoResuelto:
    pago: Pago
    resolucion: Resolucion
    eventos: int  # outbox rows written (the relays publish them)
    diferencias_resueltas: tuple[int, ...] = ()  # the reconciliation's, closed with it


@dataclass(frozen=True, slots=True)
class PagoReanudado:
    pago: Pago
    comando_publicado: bool
    error: str | None = None  # why the command could not be published (the reconciler takes it)


@dataclass(frozen=True, slots=True)
class ReversoReanudado:
    """A flagged reversal's flag cleared: a refused one acknowledged (its ReversoFallido went to
    the saga already), or one whose outcome was unknown given back to automatic processing."""

    reverso: Reverso
    comando_publicado: bool
    error: str | None = None


class ResolverPagoHandler:
    def __init__(
        self,
        pagos: OperadorRepository,
        pasarela: ConsultaDeTransferencias,
        *,
        lease: timedelta,
        margen_fallido: timedelta = timedelta(minutes=5),
    ) -> None:
        """`margen_fallido`: FALLIDO only once the payment's last gateway call ended at least this
        long ago. A call our side gave up on (a timeout) may still be finishing at Stripe, and its
        transfer would not be listed yet: FALLIDO then would leave a paid payment failed."""
        self._pagos = pagos
        self._pasarela = pasarela
        self._lease = lease
        self._margen_fallido = margen_fallido

    async def __call__(
        self, id_pago: uuid.UUID, *, operador: str, motivo: str | None = None, fallido: str | None = None
    ) -> PagoResuelto:
        """EXITOSO with the one transfer the gateway holds for it; FALLIDO only when `fallido` says
        why and the gateway holds none. Refused (`OperacionRechazadaError`) otherwise."""
        pago, ahora = await self._tomar(id_pago, operador, fallido=fallido is not None)
        tomado = dataclasses.replace(pago, eventos=[])
        try:
            halladas = await self._consultar(pago)
            resolucion = self._decidir(pago, halladas, ahora, operador=operador, motivo=motivo, fallido=fallido)
            guardada = await self._pagos.guardar_resolucion(pago, resolucion)
        except BaseException:
            # Given back at once rather than when the lease runs out (if this fails, it runs out).
            try:
                await self._pagos.soltar(tomado)
            except Exception as exc:  # noqa: BLE001 - the original error is what the operator must see
                log.warning("operador.lease_no_soltado", id_pago=str(id_pago), error=repr(exc))
            raise
        if guardada is None:
            raise OperacionRechazadaError(
                f"el pago {id_pago} dejó de estar en manos del operador (su lease venció y otro lo tomó, o ya "
                "se resolvió): nada se escribió; consúltelo con `pagos ver`"
            )
        log.warning(
            "operador.pago_resuelto", id_pago=str(id_pago), estado=pago.estado.value, operador=operador,
            referencia=pago.referencia_pago, motivo=resolucion.motivo, diferencias=guardada.diferencias_resueltas,
        )  # fmt: skip
        return PagoResuelto(pago, resolucion, len(guardada.eventos), guardada.diferencias_resueltas)

    async def _tomar(self, id_pago: uuid.UUID, operador: str, *, fallido: bool) -> tuple[Pago, datetime]:
        """The payment held for the operator under a claim of its own, and the database's time it
        was read at: every time compared here is the database's, whatever this host's clock says."""
        leido = await self._pagos.obtener(id_pago)
        if leido is None:
            raise PagoNoEncontradoError(f"no existe el pago {id_pago}")
        if leido.pago.estado.es_final:
            raise OperacionRechazadaError(f"el pago {id_pago} ya está {leido.pago.estado}: no hay nada que resolver")
        ahora = leido.ahora
        pago = dataclasses.replace(leido.pago, eventos=[])
        owner = f"operador:{operador}:{uuid.uuid4().hex[:8]}"
        try:
            pago.tomar_a_mano(Lease(owner, ahora + self._lease), ahora)
        except PagoEnCursoError as exc:
            raise OperacionRechazadaError(f"{exc}; vuelva a intentarlo cuando ese lease venza") from None
        # An operator's own lookups pay nothing: only the workers' calls count (`fin_llamadas`).
        margen = self._margen_fallido if fallido else None
        if (
            margen is not None
            and leido.fin_llamadas is not None
            and (falta := leido.fin_llamadas + margen - ahora) > _CERO
        ):
            raise OperacionRechazadaError(
                f"la última llamada a la pasarela del pago {id_pago} pudo terminar hace menos de "
                f"{margen.total_seconds():.0f} s: Stripe puede estar terminando un transfer que "
                f"aún no lista. Vuelva a intentarlo en {falta.total_seconds():.0f} s "
                "(PAGOS_SETTLE_MARGIN_SECONDS)"
            )
        if (reclamo := await self._pagos.tomar(pago, leido, self._lease, margen)) is None:
            raise OperacionRechazadaError(f"el pago {id_pago} cambió mientras se leía; vuelva a intentarlo")
        pago.reclamo = reclamo
        return pago, ahora

    async def _consultar(self, pago: Pago) -> list[TransferenciaHallada]:
        try:
            return await self._pasarela.transferencias(pago)
        except ResultadoIndeterminadoError as exc:
            raise OperacionRechazadaError(f"la pasarela no pudo decir qué tiene del pago: {exc}") from None

    def _decidir(
        self,
        pago: Pago,
        halladas: list[TransferenciaHallada],
        ahora: datetime,
        *,
        operador: str,
        motivo: str | None,
        fallido: str | None,
    ) -> Resolucion:
        """Mark `pago` EXITOSO or FALLIDO (the aggregate's own transitions) and say why, or refuse."""
        if len(halladas) > 1:
            referencias = ", ".join(t.referencia for t in halladas)
            raise OperacionRechazadaError(
                f"la pasarela tiene {len(halladas)} transfers para el pago {pago.id_pago} ({referencias}): pagado "
                "más de una vez. No se resuelve a mano: revíselo en Stripe (runbook PagoPagadoDosVeces)"
            )
        if halladas:
            [transfer] = halladas
            if transfer.revertido:
                return self._revertido(pago, halladas, ahora, operador=operador, motivo=motivo, fallido=fallido)
            if fallido is not None:
                raise OperacionRechazadaError(
                    f"la pasarela tiene el transfer {transfer.referencia} para el pago: no puede quedar FALLIDO "
                    "(resuélvalo sin --fallido para dejarlo EXITOSO)"
                )
            if not transfer.coincide_con(pago):
                raise OperacionRechazadaError(
                    f"el transfer {transfer.referencia} paga {transfer.unidades_menores} {transfer.moneda} (unidades "
                    f"menores) y el pago es de {pago.importe}: revíselo en Stripe"
                )
            if (destino := self._pasarela.destino(pago)) is None or transfer.destino != destino:
                raise OperacionRechazadaError(
                    f"el transfer {transfer.referencia} va a {transfer.destino} y la cuenta del afiliado "
                    f"{pago.id_afiliado!r} es {destino or 'desconocida (no configurada)'}: no prueba que se le pagó. "
                    "Revíselo en Stripe"
                )
            pago.marcar_exitoso(transfer.referencia, ahora)
            por_que = motivo or f"transfer {transfer.referencia} hallado en la pasarela"
        elif fallido is not None and pago.clave_desde is None:
            # Stored before transfers carried transfer_group: a payout of it is invisible to the lookup.
            raise OperacionRechazadaError(
                f"el pago {pago.id_pago} es anterior a transfer_group: la consulta no ve sus transfers, así que no "
                "prueba que no se pagó. Búsquelo en Stripe por metadata[id_pago] antes de decidir"
            )
        elif fallido is not None:
            pago.marcar_fallido(fallido, ahora)
            por_que = motivo or fallido
        else:
            raise OperacionRechazadaError(
                f"la pasarela no tiene ningún transfer para el pago {pago.id_pago}: nada lo muestra pagado. "
                'Para dejarlo FALLIDO: --fallido "motivo"; para que se reintente: `pagos reanudar`'
            )
        return Resolucion(operador, ahora, por_que, pago.estado, tuple(halladas))

    def _revertido(
        self,
        pago: Pago,
        halladas: list[TransferenciaHallada],
        ahora: datetime,
        *,
        operador: str,
        motivo: str | None,
        fallido: str | None,
    ) -> Resolucion:
        """Its one transfer was paid, then taken back in Stripe. Wholly reversed (the payment's whole
        amount), the affiliate was not paid: FALLIDO if the operator says why. Partly reversed, or of
        another amount, neither state says it: refused."""
        [transfer] = halladas
        entero = transfer.coincide_con(pago) and transfer.revertido == transfer.unidades_menores
        if entero and fallido is not None:
            pago.marcar_fallido(fallido, ahora)
            return Resolucion(operador, ahora, motivo or fallido, pago.estado, tuple(halladas))
        importe = f"{transfer.unidades_menores} {transfer.moneda}" if transfer.unidades_menores is not None else "?"
        que_hacer = (
            'el afiliado no quedó pagado: para dejarlo FALLIDO, --fallido "motivo"'
            if entero
            else f"el pago es de {pago.importe} y ningún estado lo dice: revíselo en Stripe"
        )
        raise OperacionRechazadaError(
            f"el transfer {transfer.referencia} del pago fue revertido en Stripe ({transfer.revertido} de "
            f"{importe}, unidades menores): {que_hacer}"
        )


class ReanudarPagoHandler:
    """Clears a flagged payment's flag and publishes its command again, so that a worker claims it
    at once (a lookup at the gateway first, then the same idempotency key). Should the command not
    be published, the reconciler takes the payment once its lease is `PAGOS_RECONCILE_GRACE_SECONDS`
    old."""

    def __init__(self, pagos: OperadorRepository, comandos: CommandPublisher) -> None:
        self._pagos = pagos
        self._comandos = comandos

    async def __call__(self, id_pago: uuid.UUID) -> PagoReanudado | ReversoReanudado:
        leido = await self._pagos.obtener(id_pago)
        if leido is None:
            if (reverso := await self._pagos.obtener_reverso(id_pago)) is not None:
                return await self._reverso(*reverso)
            raise PagoNoEncontradoError(f"no existe el pago ni el reverso {id_pago}")
        guardado = leido.pago
        if guardado.estado.es_final:
            raise OperacionRechazadaError(f"el pago {id_pago} ya está {guardado.estado}: no hay nada que reanudar")
        if not guardado.requiere_atencion:
            raise OperacionRechazadaError(
                f"el pago {id_pago} no está marcado para atención: sus reintentos automáticos siguen"
            )
        lease = guardado.lease
        if guardado.estado is EstadoPago.PROCESANDO and lease is not None and lease.vigente(leido.ahora):
            raise OperacionRechazadaError(f"el pago {id_pago} está en curso en {lease.owner}; vuelva a intentarlo")
        pago = dataclasses.replace(guardado, eventos=[])
        pago.reanudar()
        if not await self._pagos.reanudar(pago, leido):
            raise OperacionRechazadaError(f"el pago {id_pago} cambió mientras se leía; vuelva a intentarlo")
        log.warning("operador.pago_reanudado", id_pago=str(id_pago))
        try:
            await self._comandos.publicar([ProcesarPago(pago.id_pago, pago.id_afiliado, pago.importe)])
        except Exception as exc:  # noqa: BLE001 - resumed all the same: the reconciler takes it
            return PagoReanudado(pago, comando_publicado=False, error=f"{type(exc).__name__}: {exc}")
        return PagoReanudado(pago, comando_publicado=True)

    async def _reverso(self, reverso: Reverso, ahora: datetime) -> ReversoReanudado:
        """A refused reversal (FALLIDO) is acknowledged; one whose outcome was unknown (PROCESANDO)
        goes back to automatic processing: its command is published again, and a worker looks it up
        at the gateway before any call (the same key)."""
        ident = reverso.id_reverso
        if not reverso.requiere_atencion:
            raise OperacionRechazadaError(f"el reverso {ident} no está marcado para atención")
        if reverso.lease is not None and reverso.lease.vigente(ahora):
            raise OperacionRechazadaError(
                f"el reverso {ident} está en curso en {reverso.lease.owner}; vuelva a intentarlo"
            )
        if not await self._pagos.reanudar_reverso(reverso):
            raise OperacionRechazadaError(f"el reverso {ident} cambió mientras se leía; vuelva a intentarlo")
        log.warning("operador.reverso_reanudado", id_reverso=str(ident), estado=reverso.estado.value)
        if reverso.estado is not EstadoReverso.PROCESANDO:
            return ReversoReanudado(reverso, comando_publicado=False)  # acknowledged: nothing more to do
        comando = ReversarPago(
            ident, reverso.id_pago, reverso.monto_pedido, reverso.motivo, reverso.descripcion, reverso.operador
        )
        try:
            await self._comandos.publicar([comando])
        except Exception as exc:  # noqa: BLE001 - resumed all the same: the reconciler takes it
            return ReversoReanudado(reverso, comando_publicado=False, error=f"{type(exc).__name__}: {exc}")
        return ReversoReanudado(reverso, comando_publicado=True)
