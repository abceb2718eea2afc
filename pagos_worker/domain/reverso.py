"""The `Reverso` aggregate: taking (part of) a payout back from the affiliate, the saga's compensation.

PENDIENTE → PROCESANDO → EXITOSO | FALLIDO, or ANULADO when there was nothing to take back (the
payment failed, or is not known yet). A reversal is admitted against its payment as it stands: it
waits while the payment is not final or another reversal of it is at the gateway (one at a time, so
the sum reversed can never pass the amount paid), fails at once when it asks for more than is left,
and is otherwise claimed like a payment (`Reclamable`: lease, fence, key generations).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TypedDict

from pagos_worker.domain.dinero import Dinero
from pagos_worker.domain.errors import DineroInvalidoError, TransicionInvalidaError
from pagos_worker.domain.events import EventoReverso, PagoAnulado, PagoReversado, ReversoFallido
from pagos_worker.domain.pago import EstadoPago, Pago
from pagos_worker.domain.reclamo import Lease, Reclamable, exigir_utc, nuevo_event_id


class EstadoReverso(StrEnum):
    PENDIENTE = "PENDIENTE"  # recorded, waiting for its payment to be final (or another reversal)
    PROCESANDO = "PROCESANDO"
    EXITOSO = "EXITOSO"  # the money came back
    FALLIDO = "FALLIDO"
    ANULADO = "ANULADO"  # nothing was paid: the payment failed, or will fail when it comes

    @property
    def es_final(self) -> bool:
        return self not in (EstadoReverso.PENDIENTE, EstadoReverso.PROCESANDO)


class MotivoReverso(StrEnum):
    DUPLICADO = "duplicado"
    MONTO_INCORRECTO = "monto_incorrecto"
    CUENTA_INCORRECTA = "cuenta_incorrecta"
    FRAUDE = "fraude"
    SOLICITUD_DEL_AFILIADO = "solicitud_del_afiliado"
    COMPENSACION = "compensacion"


class CodigoReversoFallido(StrEnum):
    SALDO_INSUFICIENTE = "saldo_insuficiente"  # the affiliate's balance cannot cover it (attention)
    EXCEDE_LO_PAGADO = "excede_lo_pagado"  # more than is left to reverse: no gateway call
    PAGO_NO_EXITOSO = "pago_no_exitoso"  # the payment holds no payout to reverse
    MONTO_INVALIDO = "monto_invalido"  # an amount its payment's currency cannot have (COP decimals)
    RECHAZADO_POR_LA_PASARELA = "rechazado_por_la_pasarela"


class Admision(StrEnum):
    """What a reversal's arrival (or redelivery) decided."""

    RECLAMADO = "reclamado"  # this worker holds it: to the gateway
    ESPERA = "espera"  # its payment is not final, or another reversal of it is at the gateway
    ANULADO = "anulado"
    FALLIDO = "fallido"


@dataclass(eq=False, kw_only=True)
class Reverso(Reclamable):
    id_reverso: uuid.UUID
    id_pago: uuid.UUID
    monto_pedido: Decimal | None  # as asked: None is everything not yet reversed
    motivo: MotivoReverso
    descripcion: str | None = None
    operador: str | None = None  # who asked for it by hand (`pagos reversar`), if anyone
    estado: EstadoReverso = EstadoReverso.PENDIENTE
    importe: Dinero | None = None  # fixed when it is first claimed (in its payment's currency)
    referencia_reverso: str | None = None
    codigo: CodigoReversoFallido | None = None
    mensaje_error: str | None = None
    fecha_procesamiento: datetime | None = None
    # Of its payment, read at the claim (not its own): the payout to reverse, and what came back of
    # the payment before it (one reversal at a time: still so when it ends).
    referencia_transfer: str | None = None
    reversado_previo: Decimal = Decimal(0)
    eventos: list[EventoReverso] = field(default_factory=list)

    @property
    def en_proceso(self) -> bool:
        return self.estado is EstadoReverso.PROCESANDO

    @property
    def identidad(self) -> str:
        return f"el reverso {self.id_reverso}"

    @property
    def ids(self) -> dict[str, str]:
        return {"id_pago": str(self.id_pago), "id_reverso": str(self.id_reverso)}

    def mismos_terminos(self, otro: Reverso) -> bool:
        """True when `otro` asks for the same reversal (a duplicate, not a conflict)."""
        return (
            self.id_pago == otro.id_pago
            and self.monto_pedido == otro.monto_pedido
            and self.motivo == otro.motivo
            and (self.descripcion or None) == (otro.descripcion or None)
        )

    def admitir(self, pago: Pago | None, *, otro_en_curso: bool, lease: Lease, ahora: datetime) -> Admision:
        """Decide a PENDIENTE reversal against its payment as it stands now (None: not known yet,
        or known only as annulled). Claimed, it is PROCESANDO under `lease` with its amount fixed."""
        exigir_utc(ahora)
        if self.estado is not EstadoReverso.PENDIENTE:
            raise TransicionInvalidaError(f"{self.identidad} ya está {self.estado}")
        if pago is None or pago.estado is EstadoPago.FALLIDO:
            self._finalizar(EstadoReverso.ANULADO, ahora)
            self.eventos.append(PagoAnulado(**self._datos_evento(ahora)))
            return Admision.ANULADO
        if not pago.estado.es_final or otro_en_curso:
            return Admision.ESPERA
        if not pago.referencia_pago:
            return self._fallar(CodigoReversoFallido.PAGO_NO_EXITOSO, "el pago no tiene transfer que revertir", ahora)
        monto = pago.por_reversar if self.monto_pedido is None else self.monto_pedido
        if monto <= 0 or monto > pago.por_reversar:
            return self._fallar(
                CodigoReversoFallido.EXCEDE_LO_PAGADO,
                f"se pide revertir {monto} {pago.importe.moneda} y quedan {pago.por_reversar} por revertir",
                ahora,
            )
        try:
            self.importe = Dinero(monto, pago.importe.moneda)
        except DineroInvalidoError as exc:
            return self._fallar(CodigoReversoFallido.MONTO_INVALIDO, str(exc), ahora)
        self.estado = EstadoReverso.PROCESANDO
        self.lease = lease
        self.intentos += 1
        self.referencia_transfer = pago.referencia_pago
        self.reversado_previo = pago.monto_reversado
        return Admision.RECLAMADO

    def marcar_exitoso(self, referencia_reverso: str, ahora: datetime) -> None:
        self._exigir_en_proceso()
        assert self.importe is not None  # noqa: S101 - fixed when it was claimed
        self._finalizar(EstadoReverso.EXITOSO, ahora)
        self.referencia_reverso = referencia_reverso
        self.eventos.append(
            PagoReversado(
                **self._datos_evento(ahora),
                importe=self.importe,
                monto_reversado_total=self.reversado_previo + self.importe.monto,
                referencia_reverso=referencia_reverso,
            )
        )

    def marcar_fallido(
        self, codigo: CodigoReversoFallido, mensaje_error: str, ahora: datetime, referencia: str | None = None
    ) -> None:
        """The gateway refused it for good: the money is still with the affiliate, and an operator
        looks too (the affiliate's balance, or a refusal that may mean a reversal made elsewhere)."""
        self._exigir_en_proceso()
        self._fallar(codigo, mensaje_error, ahora)
        self.referencia_reverso = referencia
        self.requiere_atencion = True

    def _fallar(self, codigo: CodigoReversoFallido, mensaje_error: str, ahora: datetime) -> Admision:
        self._finalizar(EstadoReverso.FALLIDO, ahora)
        self.codigo = codigo
        self.mensaje_error = mensaje_error
        evento = ReversoFallido(**self._datos_evento(ahora), codigo=codigo.value, mensaje_error=mensaje_error)
        self.eventos.append(evento)
        return Admision.FALLIDO

    def _finalizar(self, estado: EstadoReverso, ahora: datetime) -> None:
        exigir_utc(ahora)
        self.estado = estado
        self.fecha_procesamiento = ahora
        self.lease = None
        self.requiere_atencion = False

    def _datos_evento(self, ahora: datetime) -> _DatosEventoReverso:
        return {
            "event_id": nuevo_event_id(),
            "timestamp": ahora,
            "id_pago": self.id_pago,
            "id_reverso": self.id_reverso,
            "motivo": self.motivo.value,
        }


class _DatosEventoReverso(TypedDict):
    event_id: uuid.UUID
    timestamp: datetime
    id_pago: uuid.UUID
    id_reverso: uuid.UUID
    motivo: str
