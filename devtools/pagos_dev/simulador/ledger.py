"""The simulator's ledger: transfers made and idempotent results, in SQLite so that its memory
stays bounded (a file of the caller's, kept across restarts, or a temporary one).

Writes go into an open transaction; `escrito()` waits for the commit that follows them, one for
every request of a couple of milliseconds (a response is sent once what it says is on disk: a
killed simulator keeps every transfer it answered for). WAL with synchronous=NORMAL:
a test tool survives its process dying, not the machine's.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from pagos_dev.simulador.consultas import Filtro, Pagina, consulta_de_pagina
from pagos_dev.simulador.transfer import Transfer

ESPERA_COMMIT_S = 0.002
# Every table grows at its end: an index on a random value (an idempotency key, a destination, a
# transfer group) dirtied a random page per insert, and writing those pages to the WAL and then to
# the file cost ~70 µs a transfer. Keys are found through an in-memory map pruned with their time
# to live; filters scan the narrow `transfers` table, newest first (bodies are apart in `cuerpos`).
_ESQUEMA = """
CREATE TABLE IF NOT EXISTS transfers (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, created INTEGER NOT NULL,
    destination TEXT NOT NULL, transfer_group TEXT);
CREATE TABLE IF NOT EXISTS cuerpos (seq INTEGER PRIMARY KEY, cuerpo BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS idempotencia (
    clave TEXT NOT NULL, huella TEXT NOT NULL, status INTEGER NOT NULL, cuerpo BLOB,
    seq_transfer INTEGER, request_id TEXT NOT NULL, guardado REAL NOT NULL);
"""
_RESULTADO = (
    "SELECT i.clave, i.huella, i.status, coalesce(i.cuerpo, c.cuerpo), i.request_id, i.guardado"
    " FROM idempotencia i LEFT JOIN cuerpos c ON c.seq = i.seq_transfer WHERE i.rowid = ?"
)


@dataclass(frozen=True, slots=True)
class ResultadoIdempotente:
    """The first response to a key: replayed for every later request with that key."""

    huella: str
    status: int
    body: bytes
    request_id: str


class Ledger:
    def __init__(self, archivo: Path | None = None, *, ttl_claves_s: float = 24 * 3600) -> None:
        self.ttl_claves_s = ttl_claves_s
        self._temporal = None if archivo else Path(tempfile.mkdtemp(prefix="simulador-"))
        self.archivo = archivo or Path(self._temporal or ".") / "ledger.sqlite3"
        self.archivo.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.archivo, check_same_thread=False)
        try:
            self._db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" + _ESQUEMA)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{self.archivo}: no es un ledger SQLite del simulador ({exc})") from None
        self.cantidad: int = self._db.execute("SELECT count(*) FROM transfers").fetchone()[0]
        self.transfers = _Transfers(self._db)
        # hash(key) -> its row, in the order they were saved (so in time order): ~110 bytes a key.
        self._claves: dict[int, int] = {}
        self.podar()
        vigentes = self._db.execute("SELECT rowid, clave FROM idempotencia ORDER BY rowid")
        self._claves.update((hash(clave), rowid) for rowid, clave in vigentes)
        self._confirmacion: asyncio.Future[None] | None = None

    def crear_transfer(self, transfer: Transfer) -> tuple[bytes, int]:
        """Its JSON as Stripe's (what is stored is what every read returns), and its place."""
        cuerpo = orjson.dumps(transfer.as_stripe())
        seq = self._db.execute(
            "INSERT INTO transfers (id, created, destination, transfer_group) VALUES (?, ?, ?, ?)",
            (transfer.id, transfer.created, transfer.destination, transfer.transfer_group),
        ).lastrowid
        self._db.execute("INSERT INTO cuerpos VALUES (?, ?)", (seq, cuerpo))
        self.cantidad += 1
        return cuerpo, int(seq or 0)

    def guardar_resultado(self, clave: str, resultado: ResultadoIdempotente, seq_transfer: int | None = None) -> None:
        """A 200 that made a transfer is kept as its place (its body is the transfer's)."""
        fila = self._db.execute(
            "INSERT INTO idempotencia VALUES (?, ?, ?, ?, ?, ?, ?)",
            (clave, resultado.huella, resultado.status, None if seq_transfer else resultado.body, seq_transfer,
             resultado.request_id, time.time()),
        ).lastrowid  # fmt: skip
        self._claves.pop(hash(clave), None)  # an expired one saved again goes to the end
        self._claves[hash(clave)] = int(fila or 0)

    def resultado(self, clave: str) -> ResultadoIdempotente | None:
        """What the key saved, unless it is older than the keys' time to live."""
        fila_id = self._claves.get(hash(clave))
        if fila_id is None:
            return None
        fila = self._db.execute(_RESULTADO, (fila_id,)).fetchone()
        if fila is None or fila[0] != clave or fila[5] < time.time() - self.ttl_claves_s:
            return None
        return ResultadoIdempotente(fila[1], fila[2], bytes(fila[3]), fila[4])

    def podar(self) -> int:
        """Forget the keys older than their time to live; how many."""
        limite = self._ultima_caducada(time.time() - self.ttl_claves_s)
        if limite is None:
            return 0
        borradas = self._db.execute("DELETE FROM idempotencia WHERE rowid <= ?", (limite,)).rowcount
        viejas = [h for h, _ in itertools.takewhile(lambda par: par[1] <= limite, self._claves.items())]
        for h in viejas:
            del self._claves[h]
        self.confirmar()
        return borradas

    def _ultima_caducada(self, antes_de: float) -> int | None:
        """The last row saved before `antes_de`: rows are in time order, so a binary search."""
        bajo, alto = self._db.execute("SELECT min(rowid), max(rowid) FROM idempotencia").fetchone()
        if bajo is None or self._guardado_desde(bajo) >= antes_de:
            return None
        while bajo < alto:  # invariant: the row at or after `bajo` is expired
            medio = (bajo + alto + 1) // 2
            bajo, alto = (medio, alto) if self._guardado_desde(medio) < antes_de else (bajo, medio - 1)
        return int(bajo)

    def _guardado_desde(self, rowid: int) -> float:
        fila = self._db.execute(
            "SELECT guardado FROM idempotencia WHERE rowid >= ? ORDER BY rowid LIMIT 1", (rowid,)
        ).fetchone()
        return float("inf") if fila is None else float(fila[0])

    def obtener(self, id_transfer: str) -> bytes | None:
        fila = self._db.execute(
            "SELECT c.cuerpo FROM transfers t JOIN cuerpos c ON c.seq = t.seq WHERE t.id = ?", (id_transfer,)
        ).fetchone()
        return None if fila is None else bytes(fila[0])

    def seq_de(self, id_transfer: str) -> int | None:
        fila = self._db.execute("SELECT seq FROM transfers WHERE id = ?", (id_transfer,)).fetchone()
        return None if fila is None else int(fila[0])

    def listar(self, filtro: Filtro, pagina: Pagina) -> tuple[list[bytes], bool]:
        """Newest first; `has_more` says whether more lie beyond the page, in its direction."""
        sql, argumentos = consulta_de_pagina(filtro, pagina)
        cuerpos = [bytes(f[0]) for f in self._db.execute(sql, argumentos)]
        mas = len(cuerpos) > pagina.limit
        cuerpos = cuerpos[: pagina.limit]
        return (cuerpos[::-1] if pagina.hacia_atras else cuerpos), mas

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
        fila = self._db.execute(
            "SELECT c.cuerpo FROM transfers t JOIN cuerpos c ON c.seq = t.seq WHERE t.id = ?", (id_transfer,)
        ).fetchone()
        if fila is None:
            raise KeyError(id_transfer)
        return Transfer.de_stripe(orjson.loads(fila[0]))

    def __iter__(self) -> Iterator[str]:
        return iter([f[0] for f in self._db.execute("SELECT id FROM transfers ORDER BY seq")])

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM transfers").fetchone()[0])
