"""Ports of the reconciliation: Stripe's books read page by page (`LibroDeLaPasarela`), and the
service's books, where the comparison is made and its result recorded (`RegistroDeConciliaciones`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pagos_worker.domain.conciliacion import ClaseDiferencia


@dataclass(frozen=True, slots=True)
class ReversoVisto:
    """A transfer reversal as Stripe shows it; `id_reverso`: our `metadata[id_reverso]`, if any."""

    referencia: str
    unidades_menores: int | None
    moneda: str | None
    id_reverso: str | None
    creado: datetime | None = None


@dataclass(frozen=True, slots=True)
class TransferenciaVista:
    """A transfer as Stripe shows it, with every one of its reversals; amounts in minor units."""

    referencia: str
    transfer_group: str | None
    unidades_menores: int | None
    moneda: str | None
    destino: str | None
    creada: datetime | None
    revertido: int | None
    reversos: tuple[ReversoVisto, ...] = ()


class PasarelaInalcanzableError(Exception):
    """Stripe could not be read (an outage, 429s) for longer than the reconciliation waits: the run
    fails, and nothing of it is presented as complete."""


class LibroDeLaPasarela(Protocol):
    """Stripe's side, read within a share of the account's request budget; a 429 or an outage is
    waited out, up to a bound (then `PasarelaInalcanzableError`)."""

    @property
    def peticiones(self) -> int:
        """Requests sent so far."""
        ...

    def transferencias(self, desde: datetime, hasta: datetime) -> AsyncIterator[list[TransferenciaVista]]:
        """Every transfer created in [desde, hasta), a page at a time, each with all its reversals."""
        ...

    def de_los_pagos(self, ids: Sequence[uuid.UUID]) -> AsyncIterator[tuple[uuid.UUID, list[TransferenciaVista]]]:
        """For each of these payments, every transfer whose `transfer_group` is it, whenever it was
        created; in the order they are read (several at once), each id once."""
        ...

    def reversados_en(self, desde: datetime, hasta: datetime) -> AsyncIterator[list[str]]:
        """The `transfer_group` of the transfer of every reversal made in [desde, hasta), whenever
        that transfer was created (Stripe's balance transactions of type `transfer_refund`)."""
        ...


@dataclass(frozen=True, slots=True)
class Diferencia:
    clase: ClaseDiferencia
    id_pago: uuid.UUID | None
    id_reverso: uuid.UUID | None
    referencia: str | None
    servicio: Mapping[str, Any]
    pasarela: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Clasificacion:
    """What one run found: a count per class (coincide included) and its differences (the first
    so many of them: the counts say how many there are)."""

    conteos: Mapping[ClaseDiferencia, int]
    diferencias: list[Diferencia] = field(default_factory=list)


class SesionDeConciliacion(Protocol):
    """One run's work on the service's books, on one connection of its own."""

    async def ahora(self) -> datetime:
        """The database's clock: the one that decides what is settled."""
        ...

    async def bloquear(self) -> bool:
        """Take the reconciliation's lock for this session (one run at a time): False if held."""
        ...

    async def ultima_programada(self) -> datetime | None:
        """When the last scheduled run that completed started (None if none has)."""
        ...

    async def iniciar(self, desde: datetime, hasta: datetime, origen: str) -> int:
        """Record the run EN_CURSO (committed at once); its id. Called with the lock held: any
        other run still EN_CURSO was cut short, and is marked FALLIDA."""
        ...

    async def cargar(self, pagina: list[TransferenciaVista]) -> None:
        """Add a page of Stripe's transfers (and their reversals) to this run's working set."""
        ...

    async def por_buscar(self, limite: int) -> list[uuid.UUID]:
        """Payments to look up one by one (a transfer of theirs may lie outside the window: one paid
        in it with none loaded, one with a transfer that is not the one recorded), not looked up yet."""
        ...

    async def buscar_tambien(self, grupos: list[str]) -> None:
        """Payments (their `transfer_group`s; any other text is ignored) to look up one by one as
        well: a reversal of theirs was made in the window."""
        ...

    async def cargar_del_pago(self, id_pago: uuid.UUID, transferencias: list[TransferenciaVista]) -> None:
        """Every transfer of the payment, whenever created, in place of those of the window."""
        ...

    async def clasificar(self, asentado: datetime) -> Clasificacion:
        """Compare both sides (set-based), keeping the differences for `registrar`. A reversal made
        at or after `asentado`, on either side, is left to a later run: its other side may be on
        its way."""
        ...

    async def registrar(self, clasificacion: Clasificacion, peticiones: int) -> None:
        """Write the differences (those not already recorded unresolved), the counts and COMPLETA:
        one transaction."""
        ...

    async def fallar(self, error: str, peticiones: int) -> None:
        """Mark the run FALLIDA (best effort: a run left EN_CURSO means the same)."""
        ...


class RegistroDeConciliaciones(Protocol):
    def sesion(self) -> AbstractAsyncContextManager[SesionDeConciliacion]:
        """A session on a connection of its own, closed (its lock released) at the end."""
        ...
