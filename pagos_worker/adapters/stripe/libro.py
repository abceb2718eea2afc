"""`LibroDeLaPasarela` on Stripe: the transfers of a window, every page, with every reversal; and
the reversals made in it whatever their transfer's date, by their balance transactions.

A reconciliation reads at most its share of the account's request budget: each request takes a
turn of a local bucket (`cuota_por_s`: the share × the account's rate) and then one of the budget
every replica shares, as a payout's does, so payouts are never starved. A page Stripe does not give
(a 429, an outage, the circuit open) is asked again after a backoff, for up to `espera_maxima_s`.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pagos_worker import observability as metrics
from pagos_worker.adapters.stripe.adapter import StripePasarelaDePagos
from pagos_worker.adapters.stripe.resilience import TokenBucket, backoff
from pagos_worker.application.ports.conciliacion import PasarelaInalcanzableError, ReversoVisto, TransferenciaVista
from pagos_worker.application.ports.pasarela import ResultadoIndeterminadoError

_POR_PAGINA = "100"
_SALDO = "<balance_transactions>"  # not a path under /v1/transfers: the balance transactions' list
_T = TypeVar("_T")


class _Cuota:
    """The reader's share of the budget, in front of the account's; counts what it lets through."""

    def __init__(self, rate: float) -> None:
        self._bucket = TokenBucket(rate, 1)
        self.peticiones = 0

    async def acquire(self) -> None:
        await self._bucket.acquire()
        self.peticiones += 1
        metrics.CONCILIACION_PETICIONES.inc()


class StripeLibroDeLaPasarela:
    def __init__(
        self,
        pasarela: StripePasarelaDePagos,
        *,
        cuota_por_s: float,
        espera_maxima_s: float = 600.0,
        espera_base_s: float = 0.5,
        espera_tope_s: float = 30.0,
        tramos: int = 1,
    ) -> None:
        """`tramos`: how many stretches of a window are read side by side (see `transferencias`)."""
        self._pasarela = pasarela
        self._tramos = max(1, tramos)
        self._cuota = _Cuota(cuota_por_s)
        self._espera_maxima = espera_maxima_s
        self._base, self._tope = espera_base_s, espera_tope_s

    @property
    def peticiones(self) -> int:
        return self._cuota.peticiones

    async def transferencias(self, desde: datetime, hasta: datetime) -> AsyncIterator[list[TransferenciaVista]]:
        async def vistas(data: list[Any]) -> list[TransferenciaVista]:
            return [await self._vista(t) for t in data if isinstance(t, dict) and isinstance(t.get("id"), str)]

        async for pagina in self._por_tramos({"limit": _POR_PAGINA}, "", desde, hasta, vistas):
            yield pagina

    async def del_pago(self, id_pago: uuid.UUID) -> list[TransferenciaVista]:
        return await self.del_pago_texto(str(id_pago))

    async def del_pago_texto(self, transfer_group: str) -> list[TransferenciaVista]:
        vistas: list[TransferenciaVista] = []
        async for data in self._paginas({"transfer_group": transfer_group, "limit": _POR_PAGINA}):
            vistas += [await self._vista(t) for t in data if isinstance(t, dict) and isinstance(t.get("id"), str)]
        return vistas

    async def de_los_pagos(self, ids: Sequence[uuid.UUID]) -> AsyncIterator[tuple[uuid.UUID, list[TransferenciaVista]]]:
        """`del_pago` of each, `tramos` of them side by side (one look-up is a round trip to Stripe:
        one after another they left the share idle), yielded as each is read."""
        pendientes = iter(ids)
        cola: asyncio.Queue[tuple[uuid.UUID, list[TransferenciaVista]] | BaseException | None] = asyncio.Queue()

        async def buscar() -> None:
            try:
                for id_pago in pendientes:  # one shared iterator: each id taken by one of them
                    await cola.put((id_pago, await self.del_pago(id_pago)))
                await cola.put(None)
            except Exception as exc:  # noqa: BLE001 - handed to the caller, which raises it
                await cola.put(exc)

        async for hallado in _recoger(cola, [buscar for _ in range(min(self._tramos, len(ids)))]):
            yield hallado

    async def reversados_en(self, desde: datetime, hasta: datetime) -> AsyncIterator[list[str]]:
        params = {
            "type": "transfer_refund",
            "limit": _POR_PAGINA,
            "expand[]": "data.source.transfer",  # the reversal, and the transfer it names: its group
        }

        async def grupos(data: list[Any]) -> list[str]:
            return [g for m in data if isinstance(m, dict) and (g := _grupo_reversado(m)) is not None]

        async for pagina in self._por_tramos(params, _SALDO, desde, hasta, grupos):
            yield pagina

    async def _por_tramos(
        self,
        params: dict[str, str],
        ruta: str,
        desde: datetime,
        hasta: datetime,
        convertir: Callable[[list[Any]], Awaitable[list[_T]]],
    ) -> AsyncIterator[list[_T]]:
        """Every page of a list over [desde, hasta), read as `tramos` stretches of the window side by
        side: one list's pages follow each other (each names the last one's end), so a single reader
        makes one request per round trip, far below its share when Stripe takes 200 ms a page;
        several keep the share busy, and the local bucket still bounds them together. At most two
        pages a stretch wait for the caller (memory stays bounded)."""
        inicio, fin = int(desde.timestamp()), int(hasta.timestamp())
        cortes = sorted({inicio + (fin - inicio) * i // self._tramos for i in range(self._tramos)} | {fin})
        cola: asyncio.Queue[list[_T] | BaseException | None] = asyncio.Queue(2 * self._tramos)

        async def leer(a: int, b: int) -> None:
            try:
                async for data in self._paginas({**params, "created[gte]": str(a), "created[lt]": str(b)}, ruta):
                    await cola.put(await convertir(data))
                await cola.put(None)
            except Exception as exc:  # noqa: BLE001 - handed to the caller, which raises it
                await cola.put(exc)

        lectores = [functools.partial(leer, a, b) for a, b in itertools.pairwise(cortes)]
        async for pagina in _recoger(cola, lectores):
            yield pagina

    async def _paginas(self, params: dict[str, str], ruta: str = "") -> AsyncIterator[list[Any]]:
        while True:
            listing = await self._pagina(params, ruta)
            data = listing["data"]
            yield data
            if listing.get("has_more") is not True:
                return
            ultimo = data[-1] if data else None
            if not (isinstance(ultimo, dict) and isinstance(ultimo.get("id"), str)):
                raise PasarelaInalcanzableError("Stripe dijo has_more sin un id desde el que seguir")
            params = {**params, "starting_after": ultimo["id"]}

    async def _pagina(self, params: dict[str, str], ruta: str) -> dict[str, Any]:
        inicio, intento = time.monotonic(), 0
        while True:
            try:
                if ruta is _SALDO:
                    return await self._pasarela.pagina_de_saldo(params, delante=self._cuota)
                return await self._pasarela.pagina(params, ruta, delante=self._cuota)
            except ResultadoIndeterminadoError as exc:  # the circuit's refusal too
                intento += 1
                if time.monotonic() - inicio >= self._espera_maxima:
                    raise PasarelaInalcanzableError(
                        f"Stripe sin responder durante {self._espera_maxima:g} s: {exc}"
                    ) from None
                await asyncio.sleep(backoff(intento, base=self._base, maximo=self._tope))

    async def _vista(self, t: dict[str, Any]) -> TransferenciaVista:
        reversals = t.get("reversals")
        listados = reversals.get("data") if isinstance(reversals, dict) else None
        datos: list[Any] = listados if isinstance(listados, list) else []
        if isinstance(reversals, dict) and reversals.get("has_more") is True:
            datos = []  # the first page again, and every one after it: all of them, whatever shown
            async for data in self._paginas({"limit": _POR_PAGINA}, f"/{t['id']}/reversals"):
                datos += data
        return TransferenciaVista(
            referencia=str(t["id"]),
            transfer_group=t["transfer_group"] if isinstance(t.get("transfer_group"), str) else None,
            unidades_menores=_entero(t.get("amount")),
            moneda=str(t["currency"]).upper() if isinstance(t.get("currency"), str) else None,
            destino=t["destination"] if isinstance(t.get("destination"), str) else None,
            creada=_fecha(t.get("created")),
            revertido=_entero(t.get("amount_reversed")),
            reversos=tuple(_reverso(r) for r in datos if isinstance(r, dict) and isinstance(r.get("id"), str)),
        )


async def _recoger(
    cola: asyncio.Queue[_T | BaseException | None], lectores: Sequence[Callable[[], Coroutine[Any, Any, None]]]
) -> AsyncIterator[_T]:
    """What the readers put in `cola` (each ends with None, or the exception it met), as it comes;
    the readers are cancelled when the caller stops or one of them fails."""
    tareas = [asyncio.create_task(lector()) for lector in lectores]
    try:
        quedan = len(tareas)
        while quedan:
            if (cosa := await cola.get()) is None:
                quedan -= 1
            elif isinstance(cosa, BaseException):
                raise cosa
            else:
                yield cosa
    finally:
        for tarea in tareas:
            tarea.cancel()
        await asyncio.gather(*tareas, return_exceptions=True)


def _reverso(r: dict[str, Any]) -> ReversoVisto:
    metadata = r.get("metadata")
    propio = metadata.get("id_reverso") if isinstance(metadata, dict) else None
    return ReversoVisto(
        referencia=str(r["id"]),
        unidades_menores=_entero(r.get("amount")),
        moneda=str(r["currency"]).upper() if isinstance(r.get("currency"), str) else None,
        id_reverso=propio if isinstance(propio, str) and propio else None,
        creado=_fecha(r.get("created")),
    )


def _grupo_reversado(movimiento: dict[str, Any]) -> str | None:
    """The `transfer_group` of the transfer a `transfer_refund` balance transaction gave back."""
    reverso = movimiento.get("source")
    transfer = reverso.get("transfer") if isinstance(reverso, dict) else None
    grupo = transfer.get("transfer_group") if isinstance(transfer, dict) else None
    return grupo if isinstance(grupo, str) and grupo else None


def _entero(valor: object) -> int | None:
    return valor if isinstance(valor, int) and not isinstance(valor, bool) else None


def _fecha(valor: object) -> datetime | None:
    return datetime.fromtimestamp(valor, UTC) if isinstance(valor, int) else None
