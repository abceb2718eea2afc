"""The simulator's ledger: transfers made, their reversals, the connected accounts' balances and
idempotent results, in SQLite so that its memory stays bounded (a file of the caller's, kept
across restarts, or a temporary one).

Writes go into an open transaction; `escrito()` waits for the commit that follows them, one for
every request of a couple of milliseconds (a response is sent once what it says is on disk: a
killed simulator keeps every transfer it answered for). WAL with synchronous=NORMAL:
a test tool survives its process dying, not the machine's.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from pagos_dev.simulador import errores
from pagos_dev.simulador.claves import ESQUEMA_CLAVES, Claves, ResultadoIdempotente
from pagos_dev.simulador.consultas import ACTUAL, Cursor, Filtro, Pagina, consulta_de_pagina
from pagos_dev.simulador.fallas import SIN_SALDO
from pagos_dev.simulador.reverso import Reverso
from pagos_dev.simulador.reversos import ESQUEMA_REVERSOS, Reversos
from pagos_dev.simulador.saldos import ESQUEMA_SALDOS, Saldos
from pagos_dev.simulador.transfer import Transfer

ESPERA_COMMIT_S = 0.002
# Every table grows at its end: an index on a random value (an idempotency key, a destination, a
# transfer group) dirtied a random page per insert, and writing those pages to the WAL and then to
# the file cost ~70 µs a transfer. Keys are found in memory (`claves`); filters scan the narrow
# `transfers` table, newest first (the bodies are apart, in `cuerpos`), along the index on `created`
# (which grows at its end too: lists are in `created` order, and a window of it is found at once).
_ESQUEMA = """
CREATE TABLE IF NOT EXISTS transfers (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, created INTEGER NOT NULL,
    destination TEXT NOT NULL, transfer_group TEXT);
CREATE TABLE IF NOT EXISTS cuerpos (seq INTEGER PRIMARY KEY, cuerpo BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS transfers_por_created ON transfers (created);
"""
_ACTUAL_POR_ID = (
    f"SELECT {ACTUAL} FROM transfers t JOIN cuerpos c ON c.seq = t.seq"  # noqa: S608 - fixed names
    " LEFT JOIN cuerpos_actuales a ON a.seq = t.seq WHERE t.id = ?"
)


class Ledger:
    def __init__(self, archivo: Path | None = None, *, ttl_claves_s: float = 24 * 3600) -> None:
        self._temporal = None if archivo else Path(tempfile.mkdtemp(prefix="simulador-"))
        self.archivo = archivo or Path(self._temporal or ".") / "ledger.sqlite3"
        self.archivo.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.archivo, check_same_thread=False)
        try:
            sin_saldos = self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'saldos'").fetchone() is None
            self._db.executescript(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                + _ESQUEMA
                + ESQUEMA_CLAVES
                + ESQUEMA_REVERSOS
                + ESQUEMA_SALDOS
            )
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{self.archivo}: no es un ledger SQLite del simulador ({exc})") from None
        self.cantidad: int = self._db.execute("SELECT count(*) FROM transfers").fetchone()[0]
        self.transfers = _Transfers(self._db)
        self.claves = Claves(self._db, ttl_claves_s)
        self.reversos = Reversos(self._db)
        self.saldos = Saldos(self._db, nueva=sin_saldos)
        self._confirmacion: asyncio.Future[None] | None = None
        # Transfers not listed yet (a list lag asked for): seq -> when they are (monotonic). Kept
        # in memory: a restarted simulator lists everything. Empty, lists cost what they did.
        self._ocultos: dict[int, float] = {}

    def crear_transfer(self, transfer: Transfer, *, listado_tras_s: float = 0.0) -> tuple[bytes, int]:
        """Its JSON as Stripe's (what is stored is what every read returns), and its place; left
        out of `listar` for `listado_tras_s` (found by id all the same)."""
        cuerpo = orjson.dumps(transfer.as_stripe())
        seq = self._db.execute(
            "INSERT INTO transfers (id, created, destination, transfer_group) VALUES (?, ?, ?, ?)",
            (transfer.id, transfer.created, transfer.destination, transfer.transfer_group),
        ).lastrowid
        self._db.execute("INSERT INTO cuerpos VALUES (?, ?)", (seq, cuerpo))
        self.saldos.acreditar(transfer.destination, transfer.currency, transfer.amount)
        self.cantidad += 1
        if listado_tras_s > 0:
            self._ocultos[int(seq or 0)] = time.monotonic() + listado_tras_s
        return cuerpo, int(seq or 0)

    def guardar_resultado(self, clave: str, resultado: ResultadoIdempotente, seq_transfer: int | None = None) -> None:
        self.claves.guardar(clave, resultado, seq_transfer)

    def resultado(self, clave: str) -> ResultadoIdempotente | None:
        return self.claves.resultado(clave)

    def revertir(self, seq_transfer: int, transfer: dict[str, Any], reverso: Reverso) -> bytes:
        """The reversal's body; the transfer (`transfer`, as it is now) shows it from then on, and
        its destination's balance is debited."""
        cuerpo = self.reversos.crear(seq_transfer, transfer, reverso)
        self.saldos.debitar(transfer["destination"], reverso.currency, reverso.amount)
        return cuerpo

    def borrar(self, id_transfer: str) -> dict[str, Any] | None:
        """The transfer gone, as if it had never been made (a test's drift, not Stripe's: Stripe
        deletes no transfer): its reversals with it, its destination's balance as it would be
        without them, and the key that made it answering a 404 from then on (`Claves.anular`; a
        reversal's key is met by the 404 of its transfer's path before it is looked up). What was
        done; None if there is no such transfer."""
        lugar, cuerpo = self.lugar_de(id_transfer), self.obtener(id_transfer)
        if lugar is None or cuerpo is None:
            return None
        seq, transfer = lugar[1], orjson.loads(cuerpo)
        reversos = self.reversos.borrar(seq)
        cuenta, moneda = transfer["destination"], transfer["currency"]
        credito = 0 if cuenta.endswith(SIN_SALDO) else transfer["amount"]  # what `crear_transfer` credited
        self.saldos.sumar(cuenta, moneda, transfer["amount_reversed"] - credito)
        mensaje = f"No such transfer: '{id_transfer}' (deleted from the simulator's ledger by /_simulador/transfers)"
        claves = self.claves.anular(seq, errores.ErrorStripeError(404, mensaje, code="resource_missing").cuerpo())
        for tabla in ("cuerpos_actuales", "cuerpos", "transfers"):
            self._db.execute(f"DELETE FROM {tabla} WHERE seq = ?", (seq,))  # noqa: S608 - fixed names
        self.cantidad -= 1
        self._ocultos.pop(seq, None)
        saldo = self.saldos.saldo(cuenta, moneda)
        return {"id": id_transfer, "deleted": True, "reversos": reversos, "claves": claves,
                "saldo": {"cuenta": cuenta, "moneda": moneda, "saldo": saldo}}  # fmt: skip

    def podar(self) -> int:
        """Forget the keys past their time to live (a reversal's as a transfer's) and the balances
        at zero; how many keys. Transfers and reversals stay, on disk: memory holds none of them."""
        borradas = self.claves.podar()
        self.saldos.podar()
        self.confirmar()
        return borradas

    def obtener(self, id_transfer: str) -> bytes | None:
        """The transfer as it is now (its reversals included)."""
        fila = self._db.execute(_ACTUAL_POR_ID, (id_transfer,)).fetchone()
        return None if fila is None else bytes(fila[0])

    def seq_de(self, id_transfer: str) -> int | None:
        fila = self._db.execute("SELECT seq FROM transfers WHERE id = ?", (id_transfer,)).fetchone()
        return None if fila is None else int(fila[0])

    def lugar_de(self, id_transfer: str) -> Cursor | None:
        """The transfer's place in a list (a cursor's)."""
        fila = self._db.execute("SELECT created, seq FROM transfers WHERE id = ?", (id_transfer,)).fetchone()
        return None if fila is None else (int(fila[0]), int(fila[1]))

    def destino_de(self, id_transfer: str) -> tuple[int, str] | None:
        """The transfer's place and destination account."""
        fila = self._db.execute("SELECT seq, destination FROM transfers WHERE id = ?", (id_transfer,)).fetchone()
        return None if fila is None else (int(fila[0]), str(fila[1]))

    def listar(self, filtro: Filtro, pagina: Pagina) -> tuple[list[bytes], bool]:
        """Newest first; `has_more` says whether more lie beyond the page, in its direction."""
        sql, argumentos = consulta_de_pagina(filtro, pagina, self._aun_ocultos() if self._ocultos else ())
        cuerpos = [bytes(f[0]) for f in self._db.execute(sql, argumentos)]
        mas = len(cuerpos) > pagina.limit
        cuerpos = cuerpos[: pagina.limit]
        return (cuerpos[::-1] if pagina.hacia_atras else cuerpos), mas

    def _aun_ocultos(self) -> list[int]:
        ahora = time.monotonic()
        self._ocultos = {seq: hasta for seq, hasta in self._ocultos.items() if hasta > ahora}
        return list(self._ocultos)

    async def escrito(self) -> None:
        """Until what was written so far is committed, with whatever else is written within
        `ESPERA_COMMIT_S` (a commit costs as much as ten rows: one a request doubled the CPU)."""
        if self._confirmacion is None:
            loop = asyncio.get_running_loop()
            self._confirmacion = loop.create_future()
            loop.call_later(ESPERA_COMMIT_S, self._confirmar_turno)
        await asyncio.shield(self._confirmacion)

    def _confirmar_turno(self) -> None:
        confirmacion, self._confirmacion = self._confirmacion, None
        self.confirmar()
        if confirmacion is not None and not confirmacion.done():
            confirmacion.set_result(None)

    def confirmar(self) -> None:
        if self._db.in_transaction:
            self._db.commit()

    def cerrar(self) -> None:
        self.confirmar()
        self._db.close()
        if self._temporal is not None:
            shutil.rmtree(self._temporal, ignore_errors=True)


class _Transfers(Mapping[str, Transfer]):
    """The transfers by id, in creation order: a read-only view for tests and tools."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __getitem__(self, id_transfer: str) -> Transfer:
        fila = self._db.execute(_ACTUAL_POR_ID, (id_transfer,)).fetchone()
        if fila is None:
            raise KeyError(id_transfer)
        return Transfer.de_stripe(orjson.loads(fila[0]))

    def __iter__(self) -> Iterator[str]:
        return iter([f[0] for f in self._db.execute("SELECT id FROM transfers ORDER BY seq")])

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM transfers").fetchone()[0])
