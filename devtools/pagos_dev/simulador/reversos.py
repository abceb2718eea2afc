"""Transfer reversals in the ledger's file, and the bodies of the transfers they changed.

A transfer's first body (in `cuerpos`) never changes: it is what a replay of its creation answers,
as Stripe replays the response it saved. Once reversed, the transfer as it is now (`amount_reversed`,
`reversed`, its newest reversals) is kept beside it in `cuerpos_actuales`, which every read prefers.
Reversals are few next to transfers: their index on the transfer costs the hot path nothing.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from pagos_dev.simulador.consultas import OPERADORES as _OPERADORES
from pagos_dev.simulador.consultas import Cursor, Pagina
from pagos_dev.simulador.reverso import Reverso
from pagos_dev.simulador.transfer import lista_de_reversals

ESQUEMA_REVERSOS = """
CREATE TABLE IF NOT EXISTS reversos (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, seq_transfer INTEGER NOT NULL, cuerpo BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS reversos_por_transfer ON reversos (seq_transfer, seq);
CREATE TABLE IF NOT EXISTS cuerpos_actuales (seq INTEGER PRIMARY KEY, cuerpo BLOB NOT NULL);
"""
_CREATED = "json_extract(CAST(cuerpo AS TEXT), '$.created')"  # a transfer's few reversals: no column
EN_EL_TRANSFER = 10  # Stripe: "the 10 most recent reversals are always available" on the transfer


class Reversos:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.cantidad: int = self._db.execute("SELECT count(*) FROM reversos").fetchone()[0]

    def crear(self, seq_transfer: int, transfer: dict[str, Any], reverso: Reverso) -> bytes:
        """The reversal's body; `transfer` (as it is now) is left as it is after it."""
        cuerpo = orjson.dumps(reverso.as_stripe())
        self._db.execute(
            "INSERT INTO reversos (id, seq_transfer, cuerpo) VALUES (?, ?, ?)", (reverso.id, seq_transfer, cuerpo)
        )
        self.cantidad += 1
        total = self._db.execute("SELECT count(*) FROM reversos WHERE seq_transfer = ?", (seq_transfer,)).fetchone()
        recientes, _ = self.pagina(seq_transfer, Pagina(EN_EL_TRANSFER))
        transfer["amount_reversed"] += reverso.amount
        transfer["reversed"] = transfer["amount_reversed"] >= transfer["amount"]
        transfer["reversals"] = lista_de_reversals(transfer["id"], [orjson.loads(r) for r in recientes], total=total[0])
        self._db.execute(
            "INSERT OR REPLACE INTO cuerpos_actuales VALUES (?, ?)", (seq_transfer, orjson.dumps(transfer))
        )
        return cuerpo

    def borrar(self, seq_transfer: int) -> list[str]:
        """The transfer's reversals gone (it is being deleted); their ids, oldest first."""
        ids = [f[0] for f in self._db.execute("SELECT id FROM reversos WHERE seq_transfer = ? ORDER BY seq",
                                               (seq_transfer,))]  # fmt: skip
        self._db.execute("DELETE FROM reversos WHERE seq_transfer = ?", (seq_transfer,))
        self.cantidad -= len(ids)
        return ids

    def obtener(self, seq_transfer: int, id_reverso: str) -> bytes | None:
        fila = self._db.execute(
            "SELECT cuerpo FROM reversos WHERE id = ? AND seq_transfer = ?", (id_reverso, seq_transfer)
        ).fetchone()
        return None if fila is None else bytes(fila[0])

    def lugar_de(self, seq_transfer: int, id_reverso: str) -> Cursor | None:
        """A reversal's place in its list, if it is one of that transfer's."""
        fila = self._db.execute(
            f"SELECT {_CREATED}, seq FROM reversos WHERE id = ? AND seq_transfer = ?",  # noqa: S608 - fixed names
            (id_reverso, seq_transfer),
        ).fetchone()
        return None if fila is None else (int(fila[0]), int(fila[1]))

    def pagina(self, seq_transfer: int, pagina: Pagina) -> tuple[list[bytes], bool]:
        """Newest first (by `created`, then creation order), as `Ledger.listar`: `has_more` says
        whether more lie beyond the page."""
        return self._pagina(["seq_transfer = ?"], [seq_transfer], pagina)

    def _pagina(self, condiciones: list[str], argumentos: list[object], pagina: Pagina) -> tuple[list[bytes], bool]:
        if pagina.despues_de is not None:
            condiciones.append(f"({_CREATED}, seq) < (?, ?)")
            argumentos.extend(pagina.despues_de)
        if pagina.antes_de is not None:
            condiciones.append(f"({_CREATED}, seq) > (?, ?)")
            argumentos.extend(pagina.antes_de)
        orden = "ASC" if pagina.hacia_atras else "DESC"
        consulta = (
            f"SELECT cuerpo FROM reversos WHERE {' AND '.join(condiciones) or 'TRUE'}"  # noqa: S608 - fixed names
            f" ORDER BY {_CREATED} {orden}, seq {orden} LIMIT ?"
        )
        cuerpos = [bytes(f[0]) for f in self._db.execute(consulta, [*argumentos, pagina.limit + 1])]
        mas = len(cuerpos) > pagina.limit
        cuerpos = cuerpos[: pagina.limit]
        return (cuerpos[::-1] if pagina.hacia_atras else cuerpos), mas

    def por_id(self, id_reverso: str) -> bytes | None:
        fila = self._db.execute("SELECT cuerpo FROM reversos WHERE id = ?", (id_reverso,)).fetchone()
        return None if fila is None else bytes(fila[0])

    def lugar_global(self, id_reverso: str) -> Cursor | None:
        """A reversal's place among every transfer's (the balance transactions' list)."""
        consulta = f"SELECT {_CREATED}, seq FROM reversos WHERE id = ?"  # noqa: S608 - fixed names
        fila = self._db.execute(consulta, (id_reverso,)).fetchone()
        return None if fila is None else (int(fila[0]), int(fila[1]))

    def por_fecha(
        self, created: dict[str, int], pagina: Pagina, *, source: str | None = None, currency: str | None = None
    ) -> tuple[list[bytes], bool]:
        """Every transfer's reversals, newest first, within `created` (gt, gte, lt, lte, eq): the
        balance transactions' list. Reversals are few: a scan of their table."""
        condiciones: list[str] = []
        argumentos: list[object] = []
        for operador, valor in created.items():
            condiciones.append(f"{_CREATED} {_OPERADORES[operador]} ?")
            argumentos.append(valor)
        if source is not None:
            condiciones.append("id = ?")
            argumentos.append(source)
        if currency is not None:
            condiciones.append("json_extract(CAST(cuerpo AS TEXT), '$.currency') = ?")
            argumentos.append(currency.lower())
        return self._pagina(condiciones, argumentos, pagina)
