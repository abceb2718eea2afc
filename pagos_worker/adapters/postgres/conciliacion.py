"""`RegistroDeConciliaciones` on PostgreSQL: Stripe's pages are copied into this session's
temporary tables (COPY) and compared with the service's books by set-based SQL
(`conciliacion_sql.py`), so a day of a million payouts never sits in the process's memory.

A run is one session on a connection of its own (not the pool's: its temporary tables and its
advisory lock live as long as it does), with a statement timeout long enough for a set-based
pass over the window.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from pagos_worker.adapters.postgres import conciliacion_sql as sql
from pagos_worker.adapters.postgres.database import ConnectionLimits, asyncpg_dsn
from pagos_worker.adapters.stripe.destinos import Destinos
from pagos_worker.application.ports.conciliacion import Clasificacion, Diferencia, TransferenciaVista
from pagos_worker.domain.conciliacion import ClaseDiferencia

CLAVE_DEL_BLOQUEO = 0x636F_6E63  # "conc": one reconciliation at a time, across replicas and the CLI
_TIMEOUT_SENTENCIA = "15min"
MOSTRAR = 10_000  # a set-based pass over a day of a million payments


def _uuid(texto: str | None) -> uuid.UUID | None:
    """The id as this service writes it (`str(uuid)`), or None: a `transfer_group` of another form
    is not one of our payments."""
    try:
        valor = uuid.UUID(texto) if texto else None
    except ValueError:
        return None
    return valor if str(valor) == texto else None


class PostgresSesionDeConciliacion:
    def __init__(self, conn: asyncpg.Connection, destinos: Destinos, mostrar: int) -> None:
        self._conn = conn
        self._mostrar = mostrar
        self._destinos = destinos
        self._id: int | None = None
        self._ventana: tuple[datetime, datetime] | None = None

    async def preparar(self) -> None:
        await self._conn.execute(sql.TEMPORALES)
        mapa, self._plantilla = self._destinos.como_tabla()
        await self._conn.copy_records_to_table("conc_destinos", records=list(mapa.items()))

    async def ahora(self) -> datetime:
        return await self._conn.fetchval("SELECT now()")  # type: ignore[no-any-return]

    async def bloquear(self) -> bool:
        return bool(await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", CLAVE_DEL_BLOQUEO))

    async def ultima_programada(self) -> datetime | None:
        ultima: datetime | None = await self._conn.fetchval(sql.ULTIMA_PROGRAMADA)
        return ultima

    async def iniciar(self, desde: datetime, hasta: datetime, origen: str) -> int:
        self._ventana = (desde, hasta)
        await self._conn.execute(sql.INTERRUMPIDAS)
        self._id = await self._conn.fetchval(sql.INICIAR, desde, hasta, origen)
        return self._id

    async def cargar(self, pagina: list[TransferenciaVista]) -> None:
        assert self._ventana is not None  # noqa: S101 - started
        if not pagina:
            return
        desde, hasta = self._ventana
        transfers = [
            (t.referencia, t.transfer_group, _uuid(t.transfer_group), t.unidades_menores, t.moneda, t.destino,
             t.creada, t.revertido, t.creada is not None and desde <= t.creada < hasta)
            for t in pagina
        ]  # fmt: skip
        reversos = [
            (r.referencia, t.referencia, r.unidades_menores, r.moneda, r.id_reverso, _uuid(r.id_reverso), r.creado)
            for t in pagina
            for r in t.reversos
        ]
        await self._conn.copy_records_to_table("conc_transfers", records=transfers, columns=sql.COLUMNAS_TRANSFERS)
        if reversos:
            await self._conn.copy_records_to_table("conc_reversos", records=reversos, columns=sql.COLUMNAS_REVERSOS)

    async def por_buscar(self, limite: int) -> list[uuid.UUID]:
        assert self._ventana is not None  # noqa: S101 - started
        filas = await self._conn.fetch(sql.POR_BUSCAR, *self._ventana, limite)
        return [f[0] for f in filas]

    async def buscar_tambien(self, grupos: list[str]) -> None:
        ids = [(u,) for g in grupos if (u := _uuid(g)) is not None]
        if ids:
            await self._conn.executemany("INSERT INTO conc_reversados VALUES ($1) ON CONFLICT DO NOTHING", ids)

    async def cargar_del_pago(self, id_pago: uuid.UUID, transferencias: list[TransferenciaVista]) -> None:
        """Every transfer of the payment, whenever created: they replace those of the window."""
        async with self._conn.transaction():
            await self._conn.execute(sql.OLVIDAR_PAGO, id_pago)
            await self._conn.execute("INSERT INTO conc_buscados VALUES ($1)", id_pago)
            await self.cargar([t for t in transferencias if t.transfer_group == str(id_pago)])

    async def clasificar(self, asentado: datetime) -> Clasificacion:
        assert self._ventana is not None  # noqa: S101 - started
        # Temporary tables are never analyzed by autovacuum: without statistics the plans are guesses.
        await self._conn.execute("ANALYZE conc_transfers; ANALYZE conc_reversos; TRUNCATE conc_diferencias")
        await self._conn.execute(sql.DOBLES)
        desde, hasta = self._ventana
        valores = {"desde": desde, "hasta": hasta, "plantilla": self._plantilla, "asentado": asentado}
        for sentencia, parametros in sql.CLASIFICAR:
            await self._conn.execute(sentencia, *(valores[p] for p in parametros))
        conteos = dict.fromkeys(ClaseDiferencia, 0)
        for fila in await self._conn.fetch("SELECT clase, count(*) FROM conc_diferencias GROUP BY clase"):
            conteos[ClaseDiferencia(fila[0])] = fila[1]
        conteos[ClaseDiferencia.COINCIDE] = await self._conn.fetchval(sql.COINCIDEN)
        filas = await self._conn.fetch(sql.DIFERENCIAS, self._mostrar)
        return Clasificacion(conteos, [_diferencia(f) for f in filas])

    async def registrar(self, clasificacion: Clasificacion, peticiones: int) -> None:
        conteos = orjson.dumps({str(c): n for c, n in clasificacion.conteos.items()}).decode()
        async with self._conn.transaction():
            await self._conn.execute(sql.REGISTRAR_DIFERENCIAS, self._id)
            estado = await self._conn.fetchval(sql.COMPLETAR, self._id, peticiones, conteos)
        if estado is None:
            raise RuntimeError(f"la conciliación {self._id} ya no estaba en curso")

    async def fallar(self, error: str, peticiones: int) -> None:
        if self._id is not None:
            await self._conn.execute(sql.FALLAR, self._id, error[:2000], peticiones)


def _diferencia(fila: Mapping[str, Any]) -> Diferencia:
    return Diferencia(
        clase=ClaseDiferencia(fila["clase"]),
        id_pago=fila["id_pago"],
        id_reverso=fila["id_reverso"],
        referencia=fila["referencia"],
        servicio=orjson.loads(fila["servicio"]),
        pasarela=orjson.loads(fila["pasarela"]),
    )


class PostgresRegistroDeConciliaciones:
    def __init__(
        self, database_url: str, limits: ConnectionLimits, destinos: Destinos, *, mostrar: int = MOSTRAR
    ) -> None:
        """`mostrar`: how many differences a run hands back at most (all are recorded): a day gone
        wrong (a misconfigured account) must not fill the process's memory with them."""
        self._mostrar = mostrar
        self._dsn = asyncpg_dsn(database_url)
        self._limits = limits
        self._destinos = destinos

    @asynccontextmanager
    async def sesion(self) -> AsyncIterator[PostgresSesionDeConciliacion]:
        ajustes = {**self._limits.server_settings(), "statement_timeout": _TIMEOUT_SENTENCIA}
        ajustes["application_name"] = "pagos-worker-conciliacion"
        conn = await asyncpg.connect(
            self._dsn, server_settings=ajustes, timeout=self._limits.connect_timeout_s, command_timeout=None
        )
        try:
            sesion = PostgresSesionDeConciliacion(conn, self._destinos, self._mostrar)
            await sesion.preparar()
            yield sesion
        finally:
            await conn.close(timeout=self._limits.command_timeout_s)  # its temporary tables and lock go with it
