"""The `Pago` aggregate: one payout to an affiliate and its life cycle.

PENDIENTE → PROCESANDO → EXITOSO | FALLIDO. A payment in PROCESANDO is held by a lease (owner,
expiry): while the lease is live no other worker may process it; once it has expired the payment may
be resumed (with the same gateway idempotency key, so the gateway never pays twice).
"""

from __future__ import annotations

import os
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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


class EstadoPago(StrEnum):
    PENDIENTE = "PENDIENTE"
    PROCESANDO = "PROCESANDO"
    EXITOSO = "EXITOSO"
    FALLIDO = "FALLIDO"

    @property
    def es_final(self) -> bool:
        return self in (EstadoPago.EXITOSO, EstadoPago.FALLIDO)


@dataclass(frozen=True, slots=True)
class PoliticaAtencion:
    """When a payment whose outcome stays unknown must be looked at by an operator: after this many
    attempts, or this long after it arrived; from then on only an operator resumes it. And how long
    one idempotency key may be used: safely below the 24 h after which the gateway may forget it."""

    max_intentos: int = 5
    max_antiguedad: timedelta = timedelta(hours=1)
    vida_clave: timedelta = timedelta(hours=20)
    # A call our side gave up on may still be finishing at the gateway, and its transfer may not be
    # listed yet: a lookup proves nothing was paid only this long after the last call ended.
    margen_asentamiento: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Lease:
    """Who is processing a payment, and until when that claim holds. Stored, `expira` is the
    database's clock; a holder keeps it on its own host's clock (the remaining time the database
    gave, counted from before the claim was sent), for its own checks only."""

    owner: str
    expira: datetime
    # The holder's own deadline, on its host's monotonic clock (set by the holder at the claim from
    # the time the database left of the lease): what its calls are bounded by, whatever happens to
    # its host's wall clock. None where the lease was read, not taken.
    plazo: float | None = None

    def vigente(self, ahora: datetime) -> bool:
        return ahora < self.expira


@dataclass(eq=False, kw_only=True)
class Pago:
    id_pago: uuid.UUID
    id_afiliado: str
    importe: Dinero
    fecha_creacion: datetime
    estado: EstadoPago = EstadoPago.PENDIENTE
    referencia_pago: str | None = None
    mensaje_error: str | None = None
    fecha_procesamiento: datetime | None = None
    lease: Lease | None = None
    intentos: int = 0
    ultimo_error: str | None = None
    requiere_atencion: bool = False
    # The gateway's idempotency key is per payment and generation: a new generation only once the
    # gateway may have forgotten the previous key and a lookup showed no transfer (never reused).
    generacion_clave: int = 1
    clave_desde: datetime | None = None  # when the current generation was first used
    clave_agotada: bool = False  # its answer cannot change (a saved 500): the next generation is due
    # The number of the claim this copy was taken under: the fencing token that every write of the
    # claim carries (a holder that outlived its lease, whose claim was taken since, writes nothing).
    reclamo: int = 0
    eventos: list[EventoPago] = field(default_factory=list)

    @classmethod
    def crear(cls, *, id_pago: uuid.UUID, id_afiliado: str, importe: Dinero, ahora: datetime) -> Pago:
        _exigir_utc(ahora)
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

    def resultado_desconocido(
        self,
        motivo: str,
        ahora: datetime,
        politica: PoliticaAtencion,
        *,
        clave_agotada: bool = False,
        sin_prueba: bool = False,
    ) -> None:
        """The gateway gave no definitive answer. The payment stays PROCESANDO (never FALLIDO: it may
        have been paid), its lease ends now so that it can be resumed at once with the same
        idempotency key (unless `clave_agotada`: that key's answer cannot change, and the next
        generation is due), and past the policy's limits it is flagged for an operator; at once
        when the gateway holds something that proves neither outcome (`sin_prueba`)."""
        if self.estado is not EstadoPago.PROCESANDO or self.lease is None:
            raise TransicionInvalidaError(f"el pago {self.id_pago} no está en proceso")
        self.ultimo_error = motivo
        self.clave_agotada = self.clave_agotada or clave_agotada
        self.lease = Lease(self.lease.owner, ahora)
        vencido = self.intentos >= politica.max_intentos or ahora - self.fecha_creacion >= politica.max_antiguedad
        if sin_prueba or vencido:
            self.requiere_atencion = True

    def es_reintento(self) -> bool:
        """Claimed again after an attempt whose outcome is not known (an indeterminate answer, or
        a worker that died with the payment in its hands): the gateway may hold a payout for it."""
        return self.estado is EstadoPago.PROCESANDO and self.intentos > 1

    def clave_vencida(self, ahora: datetime, politica: PoliticaAtencion) -> bool:
        """No call may be sent under the current key: it is spent (its answer cannot change), or
        so old that the gateway may forget it before a call sent now could land."""
        desde = self.clave_desde or self.fecha_creacion
        return self.clave_agotada or ahora - desde >= politica.vida_clave

    def renovar_clave(self, ahora: datetime) -> None:
        """A new idempotency key generation, for a payment whose key the gateway may have forgotten
        and for which a lookup at the gateway has just shown no payout. Never reused: n+1 each time."""
        if self.estado is not EstadoPago.PROCESANDO or self.lease is None:
            raise TransicionInvalidaError(f"el pago {self.id_pago} no está en proceso")
        _exigir_utc(ahora)
        self.generacion_clave += 1
        self.clave_desde = ahora
        self.clave_agotada = False

    def reanudar(self) -> None:
        """An operator returns a flagged payment to automatic processing."""
        if self.estado.es_final:
            raise PagoYaProcesadoError(f"el pago {self.id_pago} ya está {self.estado}")
        self.requiere_atencion = False

    def tomar_a_mano(self, lease: Lease, ahora: datetime) -> None:
        """An operator takes the payment to settle it by hand: like a claim (no one else may process
        it while the lease lives), but flagged or not, and with no attempt at the gateway counted."""
        _exigir_utc(ahora)
        if self.estado.es_final:
            raise PagoYaProcesadoError(f"el pago {self.id_pago} ya está {self.estado}")
        if self.estado is EstadoPago.PROCESANDO and self.lease is not None and self.lease.vigente(ahora):
            raise PagoEnCursoError(
                f"el pago {self.id_pago} está en curso en {self.lease.owner} hasta {self.lease.expira.isoformat()}"
            )
        self.estado = EstadoPago.PROCESANDO
        self.lease = lease

    def soltar(self, ahora: datetime) -> None:
        """Give the payment back untouched: its lease ends now (flagged, it stays flagged)."""
        if self.estado is not EstadoPago.PROCESANDO or self.lease is None:
            raise TransicionInvalidaError(f"el pago {self.id_pago} no está en proceso")
        self.lease = Lease(self.lease.owner, ahora)

    def no_intentado(self, motivo: str, ahora: datetime) -> None:
        """The gateway was not called at all (it refused before sending: its circuit is open). The
        claim's attempt is given back, and the lease ends now so that it can be resumed at once."""
        if self.estado is not EstadoPago.PROCESANDO or self.lease is None:
            raise TransicionInvalidaError(f"el pago {self.id_pago} no está en proceso")
        self.intentos = max(0, self.intentos - 1)
        self.ultimo_error = motivo
        self.lease = Lease(self.lease.owner, ahora)

    def _finalizar(self, estado: EstadoPago, ahora: datetime) -> None:
        _exigir_utc(ahora)
        if self.estado is not EstadoPago.PROCESANDO:
            raise TransicionInvalidaError(f"el pago {self.id_pago} no puede pasar de {self.estado} a {estado}")
        self.estado = estado
        self.fecha_procesamiento = ahora
        self.lease = None
        self.requiere_atencion = False

    def _datos_evento(self, ahora: datetime) -> _DatosEvento:
        return {
            "event_id": _nuevo_event_id(),
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


# Random UUIDs without a system call each (uuid4 reads os.urandom): seeded from it once, and again
# in any forked child so that two processes never share a sequence.
_ids = random.Random()  # noqa: S311 - identifiers, not secrets
os.register_at_fork(after_in_child=_ids.seed)


def _nuevo_event_id() -> uuid.UUID:
    return uuid.UUID(int=_ids.getrandbits(128), version=4)


def _exigir_utc(ahora: datetime) -> None:
    if ahora.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
