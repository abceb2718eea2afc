"""The `Pago` aggregate: one payout to an affiliate and its life cycle.

PENDIENTE → PROCESANDO → EXITOSO | FALLIDO. A payment in PROCESANDO is held by a lease (owner,
expiry): while the lease is live no other worker may process it; once it has expired the payment may
be resumed (with the same gateway idempotency key, so the gateway never pays twice).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TypedDict

from pagos_worker.domain.dinero import Dinero
from pagos_worker.domain.errors import (
    PagoEnCursoError,
    PagoRequiereAtencionError,
    PagoYaProcesadoError,
    TransicionInvalidaError,
)
from pagos_worker.domain.events import EventoPago, PagoExitoso, PagoFallido
from pagos_worker.domain.reclamo import Lease, PoliticaAtencion, Reclamable, exigir_utc, nuevo_event_id

__all__ = ["EstadoPago", "Lease", "Pago", "PoliticaAtencion"]

# Why a payment annulled before it was paid fails (a `ReversarPago` came first): no gateway call.
ANULADO_ANTES_DE_PAGAR = "anulado antes de pagar"


class EstadoPago(StrEnum):
    PENDIENTE = "PENDIENTE"
    PROCESANDO = "PROCESANDO"
    EXITOSO = "EXITOSO"
    FALLIDO = "FALLIDO"
    REVERSADO = "REVERSADO"  # paid, and its whole amount came back (transfer reversals)

    @property
    def es_final(self) -> bool:
        return self is not EstadoPago.PENDIENTE and self is not EstadoPago.PROCESANDO


@dataclass(eq=False, kw_only=True)
class Pago(Reclamable):
    id_pago: uuid.UUID
    id_afiliado: str
    importe: Dinero
    estado: EstadoPago = EstadoPago.PENDIENTE
    referencia_pago: str | None = None
    mensaje_error: str | None = None
    fecha_procesamiento: datetime | None = None
    # What came back of it so far (transfer reversals): the whole amount makes it REVERSADO.
    monto_reversado: Decimal = Decimal(0)
    eventos: list[EventoPago] = field(default_factory=list)

    @classmethod
    def crear(cls, *, id_pago: uuid.UUID, id_afiliado: str, importe: Dinero, ahora: datetime) -> Pago:
        exigir_utc(ahora)
        return cls(id_pago=id_pago, id_afiliado=id_afiliado, importe=importe, fecha_creacion=ahora)

    def mismos_terminos(self, otro: Pago) -> bool:
        """True when `otro` asks for the same payout (same affiliate, amount and currency)."""
        return self.id_afiliado == otro.id_afiliado and self.importe == otro.importe

    def iniciar_procesamiento(self, lease: Lease, ahora: datetime) -> None:
        if self.estado.es_final:
            raise PagoYaProcesadoError(f"el pago {self.id_pago} ya está {self.estado}")
        if self.estado is EstadoPago.PROCESANDO and self.lease is not None and self.lease.vigente(ahora):
            raise PagoEnCursoError(f"el pago {self.id_pago} está en curso en {self.lease.owner}")
        if self.requiere_atencion:
            raise PagoRequiereAtencionError(f"el pago {self.id_pago} espera a un operador")
        self.estado = EstadoPago.PROCESANDO
        self.lease = lease
        self.intentos += 1

    def marcar_exitoso(self, referencia_pago: str, ahora: datetime) -> None:
        self._finalizar(EstadoPago.EXITOSO, ahora)
        self.referencia_pago = referencia_pago
        self.eventos.append(PagoExitoso(**self._datos_evento(ahora)))

    def marcar_fallido(self, mensaje_error: str, ahora: datetime, referencia_pago: str | None = None) -> None:
        self._finalizar(EstadoPago.FALLIDO, ahora)
        self.referencia_pago = referencia_pago
        self.mensaje_error = mensaje_error
        self.eventos.append(PagoFallido(**self._datos_evento(ahora), mensaje_error=mensaje_error))

    def reanudar(self) -> None:
        """An operator returns a flagged payment to automatic processing."""
        if self.estado.es_final:
            raise PagoYaProcesadoError(f"el pago {self.id_pago} ya está {self.estado}")
        self.requiere_atencion = False

    def tomar_a_mano(self, lease: Lease, ahora: datetime) -> None:
        """An operator takes the payment to settle it by hand: like a claim (no one else may process
        it while the lease lives), but flagged or not, and with no attempt at the gateway counted."""
        exigir_utc(ahora)
        if self.estado.es_final:
            raise PagoYaProcesadoError(f"el pago {self.id_pago} ya está {self.estado}")
        if self.estado is EstadoPago.PROCESANDO and self.lease is not None and self.lease.vigente(ahora):
            raise PagoEnCursoError(
                f"el pago {self.id_pago} está en curso en {self.lease.owner} hasta {self.lease.expira.isoformat()}"
            )
        self.estado = EstadoPago.PROCESANDO
        self.lease = lease

    @property
    def en_proceso(self) -> bool:
        return self.estado is EstadoPago.PROCESANDO

    @property
    def identidad(self) -> str:
        return f"el pago {self.id_pago}"

    @property
    def ids(self) -> dict[str, str]:
        return {"id_pago": str(self.id_pago)}

    @property
    def por_reversar(self) -> Decimal:
        """What of it may still be reversed: its amount, less what came back already."""
        return self.importe.monto - self.monto_reversado

    def _finalizar(self, estado: EstadoPago, ahora: datetime) -> None:
        exigir_utc(ahora)
        if self.estado is not EstadoPago.PROCESANDO:
            raise TransicionInvalidaError(f"el pago {self.id_pago} no puede pasar de {self.estado} a {estado}")
        self.estado = estado
        self.fecha_procesamiento = ahora
        self.lease = None
        self.requiere_atencion = False

    def _datos_evento(self, ahora: datetime) -> _DatosEvento:
        return {
            "event_id": nuevo_event_id(),
            "timestamp": ahora,
            "id_pago": self.id_pago,
            "id_afiliado": self.id_afiliado,
            "importe": self.importe,
            "referencia_pago": self.referencia_pago,
        }


class _DatosEvento(TypedDict):
    event_id: uuid.UUID
    timestamp: datetime
    id_pago: uuid.UUID
    id_afiliado: str
    importe: Dinero
    referencia_pago: str | None
