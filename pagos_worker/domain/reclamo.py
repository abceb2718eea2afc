"""What a payment and a reversal share: a call to the gateway held by a fenced, leased claim.

Whoever holds the claim (a lease: owner and expiry) may call the gateway for it; once the lease has
expired another may claim it again, under the next claim number (the fencing token every write of a
claim carries) and the same idempotency key. An outcome that stays unknown is retried with that
key, flagged for an operator past the policy's limits, and given a new key generation only once the
gateway may have forgotten the old one and the calls made under it are a settle margin old.
"""

from __future__ import annotations

import os
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from pagos_worker.domain.errors import TransicionInvalidaError


@dataclass(frozen=True, slots=True)
class PoliticaAtencion:
    """When an item whose outcome stays unknown must be looked at by an operator: after this many
    attempts, or this long after it arrived; from then on only an operator resumes it. And how long
    one idempotency key may be used: safely below the 24 h after which the gateway may forget it."""

    max_intentos: int = 5
    max_antiguedad: timedelta = timedelta(hours=1)
    vida_clave: timedelta = timedelta(hours=20)
    # A call our side gave up on may still be finishing at the gateway, and what it made may not be
    # listed yet: a lookup proves nothing was done only this long after the last call ended.
    margen_asentamiento: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Lease:
    """Who is processing an item, and until when that claim holds. Stored, `expira` is the
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
class Reclamable:
    """The claim's state of an item that calls the gateway (a `Pago`, a `Reverso`)."""

    fecha_creacion: datetime
    lease: Lease | None = None
    intentos: int = 0
    ultimo_error: str | None = None
    requiere_atencion: bool = False
    # The gateway's idempotency key is per item and generation: a new generation only once the
    # gateway may have forgotten the previous key and a lookup showed nothing done (never reused).
    generacion_clave: int = 1
    clave_desde: datetime | None = None  # when the current generation was first used
    clave_agotada: bool = False  # its answer cannot change (a saved 500): the next generation is due
    # The number of the claim this copy was taken under: the fencing token that every write of the
    # claim carries (a holder that outlived its lease, whose claim was taken since, writes nothing).
    reclamo: int = 0

    @property
    def en_proceso(self) -> bool:
        """Whether it is in its PROCESANDO state (the subclass's own)."""
        raise NotImplementedError

    @property
    def identidad(self) -> str:
        """How errors name it: `el pago …`, `el reverso …`."""
        raise NotImplementedError

    @property
    def ids(self) -> dict[str, str]:
        """Its ids, as log lines carry them (`id_pago`, and `id_reverso` for a reversal)."""
        raise NotImplementedError

    def resultado_desconocido(
        self,
        motivo: str,
        ahora: datetime,
        politica: PoliticaAtencion,
        *,
        clave_agotada: bool = False,
        sin_prueba: bool = False,
    ) -> None:
        """The gateway gave no definitive answer. It stays PROCESANDO (never failed: the call may
        have been made), its lease ends now so that it can be resumed at once with the same
        idempotency key (unless `clave_agotada`: that key's answer cannot change, and the next
        generation is due), and past the policy's limits it is flagged for an operator; at once
        when the gateway holds something that proves neither outcome (`sin_prueba`)."""
        self._exigir_en_proceso()
        assert self.lease is not None  # noqa: S101 - checked by _exigir_en_proceso
        self.ultimo_error = motivo
        self.clave_agotada = self.clave_agotada or clave_agotada
        self.lease = Lease(self.lease.owner, ahora)
        vencido = self.intentos >= politica.max_intentos or ahora - self.fecha_creacion >= politica.max_antiguedad
        if sin_prueba or vencido:
            self.requiere_atencion = True

    def es_reintento(self) -> bool:
        """Claimed again after an attempt whose outcome is not known (an indeterminate answer, or
        a worker that died with it in its hands): the gateway may hold what that attempt did."""
        return self.en_proceso and self.intentos > 1

    def clave_vencida(self, ahora: datetime, politica: PoliticaAtencion) -> bool:
        """No call may be sent under the current key: it is spent (its answer cannot change), or
        so old that the gateway may forget it before a call sent now could land."""
        desde = self.clave_desde or self.fecha_creacion
        return self.clave_agotada or ahora - desde >= politica.vida_clave

    def renovar_clave(self, ahora: datetime) -> None:
        """A new idempotency key generation, for an item whose key the gateway may have forgotten
        and for which a lookup at the gateway has just shown nothing done. Never reused: n+1."""
        self._exigir_en_proceso()
        exigir_utc(ahora)
        self.generacion_clave += 1
        self.clave_desde = ahora
        self.clave_agotada = False

    def soltar(self, ahora: datetime) -> None:
        """Give it back untouched: its lease ends now (flagged, it stays flagged)."""
        self._exigir_en_proceso()
        assert self.lease is not None  # noqa: S101 - checked by _exigir_en_proceso
        self.lease = Lease(self.lease.owner, ahora)

    def no_intentado(self, motivo: str, ahora: datetime) -> None:
        """The gateway was not called at all (it refused before sending: its circuit is open). The
        claim's attempt is given back, and the lease ends now so that it can be resumed at once."""
        self._exigir_en_proceso()
        assert self.lease is not None  # noqa: S101 - checked by _exigir_en_proceso
        self.intentos = max(0, self.intentos - 1)
        self.ultimo_error = motivo
        self.lease = Lease(self.lease.owner, ahora)

    def _exigir_en_proceso(self) -> None:
        if not self.en_proceso or self.lease is None:
            raise TransicionInvalidaError(f"{self.identidad} no está en proceso")


# Random UUIDs without a system call each (uuid4 reads os.urandom): seeded from it once, and again
# in any forked child so that two processes never share a sequence.
_ids = random.Random()  # noqa: S311 - identifiers, not secrets
os.register_at_fork(after_in_child=_ids.seed)


def nuevo_event_id() -> uuid.UUID:
    return uuid.UUID(int=_ids.getrandbits(128), version=4)


def exigir_utc(ahora: datetime) -> None:
    if ahora.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
