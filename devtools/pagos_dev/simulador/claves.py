"""Idempotency keys' saved results: appended to the ledger's file (so they survive a restart)
and found through an in-memory map from a key's hash to its row, ~110 bytes a key, pruned with the
keys' time to live (an index on the keys, random values, dirtied a random page a request)."""

from __future__ import annotations

import itertools
import sqlite3
import time
from dataclasses import dataclass

ESQUEMA_CLAVES = """
CREATE TABLE IF NOT EXISTS idempotencia (
    clave TEXT NOT NULL, huella TEXT NOT NULL, status INTEGER NOT NULL, cuerpo BLOB,
    seq_transfer INTEGER, request_id TEXT NOT NULL, guardado REAL NOT NULL, ruta TEXT);
"""
RUTA_TRANSFERS = "/v1/transfers"  # saved as NULL: the keys of most requests, and of a ledger older than `ruta`
_RESULTADO = (
    "SELECT i.clave, i.huella, i.status, coalesce(i.cuerpo, c.cuerpo), i.request_id, i.guardado, i.ruta"
    " FROM idempotencia i LEFT JOIN cuerpos c ON c.seq = i.seq_transfer WHERE i.rowid = ?"
)


@dataclass(frozen=True, slots=True)
class ResultadoIdempotente:
    """The first response to a key: replayed for every later request with that key."""

    huella: str
    status: int
    body: bytes
    request_id: str
    ruta: str = RUTA_TRANSFERS  # the endpoint it answered: a key serves one only


class Claves:
    def __init__(self, db: sqlite3.Connection, ttl_s: float) -> None:
        self._db = db
        if "ruta" not in {fila[1] for fila in self._db.execute("PRAGMA table_info(idempotencia)")}:
            self._db.execute("ALTER TABLE idempotencia ADD COLUMN ruta TEXT")  # a ledger of before reversals
        self.ttl_claves_s = ttl_s
        # hash(key) -> its row, in the order they were saved (so in time order).
        self._claves: dict[int, int] = {}
        self.podar()
        vigentes = self._db.execute("SELECT rowid, clave FROM idempotencia ORDER BY rowid")
        self._claves.update((hash(clave), rowid) for rowid, clave in vigentes)

    def guardar(self, clave: str, resultado: ResultadoIdempotente, seq_transfer: int | None = None) -> None:
        """A 200 that made a transfer is kept as its place (its body is the transfer's)."""
        fila = self._db.execute(
            "INSERT INTO idempotencia VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (clave, resultado.huella, resultado.status, None if seq_transfer else resultado.body, seq_transfer,
             resultado.request_id, time.time(), None if resultado.ruta == RUTA_TRANSFERS else resultado.ruta),
        ).lastrowid  # fmt: skip
        self._claves.pop(hash(clave), None)  # an expired one saved again goes to the end
        self._claves[hash(clave)] = int(fila or 0)

    def anular(self, seq_transfer: int, error: bytes) -> int:
        """The keys whose answer is that transfer (deleted) answer `error`, a 404, from then on, as
        replays: forgetting them would let a retry make it again (pay twice), and replaying their
        first answer would show a transfer that is not there. How many (one, or none)."""
        return self._db.execute(
            "UPDATE idempotencia SET status = 404, cuerpo = ?, seq_transfer = NULL WHERE seq_transfer = ?",
            (error, seq_transfer),
        ).rowcount

    def resultado(self, clave: str) -> ResultadoIdempotente | None:
        """What the key saved, unless it is older than the keys' time to live."""
        fila_id = self._claves.get(hash(clave))
        if fila_id is None:
            return None
        fila = self._db.execute(_RESULTADO, (fila_id,)).fetchone()
        if fila is None or fila[0] != clave or fila[5] < time.time() - self.ttl_claves_s:
            return None
        return ResultadoIdempotente(fila[1], fila[2], bytes(fila[3]), fila[4], fila[6] or RUTA_TRANSFERS)

    def podar(self) -> int:
        """Forget the keys older than their time to live; how many."""
        limite = self._ultima_caducada(time.time() - self.ttl_claves_s)
        if limite is None:
            return 0
        borradas = self._db.execute("DELETE FROM idempotencia WHERE rowid <= ?", (limite,)).rowcount
        viejas = [h for h, _ in itertools.takewhile(lambda par: par[1] <= limite, self._claves.items())]
        for h in viejas:
            del self._claves[h]
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
