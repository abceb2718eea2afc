"""What an operator does to take a payout back (`pagos-worker pagos reversar`): publish a
`ReversarPago` to the commands topic, as any upstream service would, with who asked for it.

The worker is the authority: it admits the reversal against its payment, one at a time. What is
checked here first, on the read side, only spares an operator a reversal that could not succeed:
the payment was paid and is not wholly reversed, and the amount is not more than is left once
the reversals still in flight are counted. The `id_reverso` is the reversal's idempotency key: the
same command run again with it never reverses twice, and once the worker has recorded it,
nothing is sent again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from pagos_worker.application.commands import ReversarPago
from pagos_worker.application.operador import OperacionRechazadaError
from pagos_worker.application.ports.operador import CommandPublisher
from pagos_worker.application.queries import PagoViews, VistaPago, VistaReverso, pago_no_encontrado
from pagos_worker.domain.dinero import Dinero, Moneda
from pagos_worker.domain.reverso import MotivoReverso

_POR_ESTADO = {
    "PENDIENTE": "aún no está pagado: un reverso se pide una vez pagado",
    "PROCESANDO": "aún no está pagado: un reverso se pide una vez pagado",
    "FALLIDO": "no se pagó: no hay nada que reversar",
    "REVERSADO": "ya se reversó entero",
}


@dataclass(frozen=True, slots=True)
class ReversoPedido:
    """The command as asked for; the payment's currency; what was left to ask for before it (its
    amount, less what came back and what reversals in flight ask for); whether it was published
    now; and the reversal as the worker recorded it, when this id_reverso was known already."""

    comando: ReversarPago
    moneda: str
    queda: Decimal
    publicado: bool
    registrado: VistaReverso | None = None


class PedirReversoHandler:
    def __init__(self, views: PagoViews, comandos: CommandPublisher) -> None:
        self._views = views
        self._comandos = comandos

    async def __call__(
        self,
        id_pago: uuid.UUID,
        *,
        motivo: MotivoReverso,
        operador: str,
        monto: Decimal | None = None,
        descripcion: str | None = None,
        id_reverso: uuid.UUID | None = None,
    ) -> ReversoPedido:
        """Published only if the checks pass (`OperacionRechazadaError`, `PagoNoEncontradoError`
        or the domain's `DineroInvalidoError` otherwise, and nothing is sent). `id_reverso`: a new
        one unless given."""
        vista = await self._views.estado_pago(id_pago)
        if vista is None:
            raise await pago_no_encontrado(self._views, id_pago)
        if monto is not None:
            monto = Dinero(monto, Moneda(vista.moneda)).monto  # its currency's rules and precision
        comando = ReversarPago(id_reverso or uuid.uuid4(), id_pago, monto, motivo, descripcion, operador)
        queda, todo = _queda(vista, comando)
        if id_reverso is not None and (registrado := await self._views.reverso(id_reverso)) is not None:
            _mismo(comando, registrado)
            return ReversoPedido(comando, vista.moneda, queda, publicado=False, registrado=registrado)
        if (por_que := _POR_ESTADO.get(vista.estado)) is not None:
            raise OperacionRechazadaError(f"el pago {id_pago} está {vista.estado}: {por_que}")
        if todo is not None:
            raise OperacionRechazadaError(
                f"el reverso {todo.id_reverso} ya pide todo lo que queda del pago {id_pago} y está {todo.estado}: "
                "espere a que termine (pagos ver)"
            )
        if queda <= 0 or (monto is not None and monto > queda):
            en_curso = ", ".join(str(r.id_reverso) for r in vista.reversos if r.en_curso)
            cuentas = f"{_centimos(vista.monto)} pagados, {_centimos(vista.monto_reversado)} ya devueltos"
            quedan = (
                f"quedan {_centimos(queda)} {vista.moneda} por reversar del pago {id_pago} "
                f"({cuentas}{f', en curso: {en_curso}' if en_curso else ''})"
            )
            raise OperacionRechazadaError(
                quedan if monto is None else f"se pide reversar {monto} {vista.moneda} y {quedan}"
            )
        try:
            await self._comandos.publicar([comando])
        except Exception as exc:  # said with what the operator needs to retry it safely
            raise OperacionRechazadaError(
                f"no se pudo publicar el reverso {comando.id_reverso} ({type(exc).__name__}: {exc}); puede que "
                f"haya llegado: repítalo con --id-reverso {comando.id_reverso}, que no reversa dos veces"
            ) from exc
        return ReversoPedido(comando, vista.moneda, queda, publicado=True)


def _mismo(comando: ReversarPago, registrado: VistaReverso) -> None:
    """A known id_reverso is only repeated with the same terms: else the worker would refuse it."""
    if registrado.id_pago != comando.id_pago:
        raise OperacionRechazadaError(
            f"el reverso {comando.id_reverso} es del pago {registrado.id_pago}: pida uno nuevo sin --id-reverso"
        )
    if (registrado.monto_pedido, registrado.motivo, registrado.descripcion) != (
        comando.monto,
        comando.motivo.value,
        comando.descripcion,
    ):
        raise OperacionRechazadaError(
            f"el reverso {comando.id_reverso} ya existe con otros términos (monto {registrado.monto_pedido or 'todo'}, "
            f"motivo {registrado.motivo}, descripción {registrado.descripcion!r}): pida uno nuevo sin --id-reverso"
        )


def _queda(vista: VistaPago, comando: ReversarPago) -> tuple[Decimal, VistaReverso | None]:
    """What is left to ask for, and the reversal in flight that asks for all of it, if one does."""
    queda = vista.monto - vista.monto_reversado
    for reverso in vista.reversos:
        if reverso.en_curso and reverso.id_reverso != comando.id_reverso:
            pedido = reverso.monto if reverso.monto is not None else reverso.monto_pedido
            if pedido is None:
                return queda, reverso
            queda -= pedido
    return queda, None


def _centimos(monto: Decimal) -> Decimal:
    return monto.quantize(Decimal("0.01"))
