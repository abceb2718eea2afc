"""Reconcile the service's books with Stripe's over a window of time (`pagos-worker conciliar`, and
the scheduled pass): Stripe's transfers created in the window are streamed into the service's
store page by page, the few payments whose transfers may lie outside it are looked up (several at once),
and the store classifies everything at once. It never moves money or changes a payment: it records
the run and its differences, all at the end and together, so a run cut short is never taken for a
complete one (it stays EN_CURSO or FALLIDA, and the next run starts over).

The window is [desde, hasta) in whole seconds (Stripe's `created`), and `hasta` must not be later
than the database's now less the settle margin: until then a transfer may still be on its way into
Stripe's lists, and its absence proves nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from pagos_worker.application.ports.conciliacion import (
    Diferencia,
    LibroDeLaPasarela,
    RegistroDeConciliaciones,
    SesionDeConciliacion,
)
from pagos_worker.domain.conciliacion import ClaseDiferencia

UN_DIA = timedelta(days=1)


class VentanaInvalidaError(ValueError):
    """The window asked for is empty, reversed, or not settled yet."""


class ConciliacionEnCursoError(Exception):
    """Another reconciliation holds the lock (a replica's scheduled pass, or an operator's)."""


class ConciliacionAlDiaError(Exception):
    """A scheduled pass completed less than an interval ago (another replica's): this one skips."""


@dataclass(frozen=True, slots=True)
class Ventana:
    desde: datetime
    hasta: datetime


def _al_segundo(t: datetime) -> datetime:
    return t.replace(microsecond=0)


def resolver_ventana(desde: datetime | None, hasta: datetime | None, *, ahora: datetime, margen: timedelta) -> Ventana:
    """The window asked for: by default the last whole UTC day that is settled; one bound alone
    means the day that starts or ends there."""
    limite = ahora - margen
    if desde is None and hasta is None:
        hasta = limite.replace(hour=0, minute=0, second=0, microsecond=0)
    if hasta is None:
        assert desde is not None  # noqa: S101 - one of them is set here
        hasta = desde + UN_DIA
    if desde is None:
        desde = hasta - UN_DIA
    desde, hasta = _al_segundo(desde), _al_segundo(hasta)
    if desde >= hasta:
        raise VentanaInvalidaError(f"la ventana está vacía: --desde {desde.isoformat()} no es anterior a --hasta")
    if hasta > limite:
        raise VentanaInvalidaError(
            f"--hasta {hasta.isoformat()} es posterior a ahora menos el margen de asentamiento "
            f"({margen.total_seconds():g} s): lo que Stripe lista hasta ahí aún puede cambiar; "
            f"como muy tarde {_al_segundo(limite).isoformat()}"
        )
    return Ventana(desde, hasta)


def ventana_programada(ahora: datetime, *, retroceso: timedelta, margen: timedelta) -> Ventana:
    """The scheduled pass's window: the `retroceso` that ends the settle margin ago."""
    hasta = _al_segundo(ahora - margen)
    return Ventana(hasta - retroceso, hasta)


@dataclass(frozen=True, slots=True)
class ResultadoConciliacion:
    id: int
    ventana: Ventana
    conteos: Mapping[ClaseDiferencia, int]
    diferencias: list[Diferencia]
    peticiones: int
    duracion_s: float

    @property
    def total_diferencias(self) -> int:
        return sum(n for c, n in self.conteos.items() if c is not ClaseDiferencia.COINCIDE)

    @property
    def coincide_todo(self) -> bool:
        return not any(n for c, n in self.conteos.items() if c is not ClaseDiferencia.COINCIDE)


class ConciliarHandler:
    def __init__(
        self,
        registro: RegistroDeConciliaciones,
        libro: LibroDeLaPasarela,
        *,
        margen: timedelta,
        lote: int = 100,
    ) -> None:
        self._registro = registro
        self._libro = libro
        self._margen = margen
        self._lote = lote

    async def __call__(
        self,
        desde: datetime | None = None,
        hasta: datetime | None = None,
        *,
        origen: str = "cli",
        retroceso: timedelta | None = None,
        cada: timedelta | None = None,
        progreso: Callable[[int], None] | None = None,
    ) -> ResultadoConciliacion:
        """Reconcile [desde, hasta) (`resolver_ventana`), or with `retroceso` the scheduled pass's
        window. Raises `VentanaInvalidaError`, `ConciliacionEnCursoError`, and whatever stopped the
        run (`PasarelaInalcanzableError`, an outage of the store) after marking it FALLIDA.
        `cada`: the schedule's interval; every replica keeps one, and a scheduled run completed less
        than that ago (by the database's clock, under the lock) makes this one `ConciliacionAlDiaError`.
        `progreso` is told how many of Stripe's transfers have been read so far."""
        inicio, antes = time.monotonic(), self._libro.peticiones
        async with self._registro.sesion() as sesion:
            ahora = await sesion.ahora()
            if retroceso is not None:
                ventana = ventana_programada(ahora, retroceso=retroceso, margen=self._margen)
            else:
                ventana = resolver_ventana(desde, hasta, ahora=ahora, margen=self._margen)
            if not await sesion.bloquear():
                raise ConciliacionEnCursoError("otra conciliación está en curso; inténtelo cuando termine")
            if cada is not None and (ultima := await sesion.ultima_programada()) is not None and ahora - ultima < cada:
                raise ConciliacionAlDiaError(f"la última pasada programada empezó a las {ultima:%H:%M:%S} UTC")
            id_conciliacion = await sesion.iniciar(ventana.desde, ventana.hasta, origen)
            try:
                asentado = ahora - self._margen
                conteos, diferencias = await self._conciliar(sesion, ventana, asentado, progreso, antes)
            except BaseException as exc:
                # Best effort: the store may be what failed, and a run left EN_CURSO says the same.
                with contextlib.suppress(Exception):
                    await sesion.fallar(f"{type(exc).__name__}: {exc}", self._libro.peticiones - antes)
                raise
        return ResultadoConciliacion(
            id_conciliacion, ventana, conteos, diferencias, self._libro.peticiones - antes, time.monotonic() - inicio
        )

    async def _conciliar(
        self,
        sesion: SesionDeConciliacion,
        ventana: Ventana,
        asentado: datetime,
        progreso: Callable[[int], None] | None,
        antes: int,
    ) -> tuple[Mapping[ClaseDiferencia, int], list[Diferencia]]:
        leidas = 0
        async for pagina in self._libro.transferencias(ventana.desde, ventana.hasta):
            await sesion.cargar(pagina)
            leidas += len(pagina)
            if progreso is not None:
                progreso(leidas)
        # Reversals come days after their transfer: those made in the window, of a transfer older
        # than it, are found by date among Stripe's balance transactions, and their payments looked up.
        async for grupos in self._libro.reversados_en(ventana.desde, ventana.hasta):
            await sesion.buscar_tambien(grupos)
        while por_buscar := await sesion.por_buscar(self._lote):
            async for id_pago, transferencias in self._libro.de_los_pagos(por_buscar):
                await sesion.cargar_del_pago(id_pago, transferencias)
        clasificacion = await sesion.clasificar(asentado)
        await sesion.registrar(clasificacion, self._libro.peticiones - antes)
        return clasificacion.conteos, clasificacion.diferencias
