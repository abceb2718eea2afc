"""The connected accounts' balances, per currency: each transfer credits its destination's, each
reversal debits it (Stripe refuses a reversal the balance cannot cover, `balance_insufficient`).

An account whose id ends in `_sin_saldo` spends what it gets at once, as if the affiliate paid it
out to the bank (money Stripe's reversals do not pull back). `fijar` sets a balance (the
simulator's `POST /_simulador/saldos`, for tests).

In the ledger's file: one row per account and currency, a few pages for the thousands of
affiliates a run pays, so the row a transfer updates is in the page cache (~3 µs a transfer; a
`WITHOUT ROWID` table took twice that). Rows at zero are pruned with the keys (`podar`): an
account without a row has nothing.
"""

from __future__ import annotations

import sqlite3

from pagos_dev.simulador.fallas import SIN_SALDO

ESQUEMA_SALDOS = """
CREATE TABLE IF NOT EXISTS saldos (
    cuenta TEXT NOT NULL, moneda TEXT NOT NULL, saldo INTEGER NOT NULL,
    PRIMARY KEY (cuenta, moneda));
"""
# A ledger written before balances existed: what its transfers credited (reversals came later).
_DESDE_LOS_TRANSFERS = """
INSERT INTO saldos (cuenta, moneda, saldo)
SELECT t.destination, json_extract(CAST(c.cuerpo AS TEXT), '$.currency'),
       sum(json_extract(CAST(c.cuerpo AS TEXT), '$.amount'))
FROM transfers t JOIN cuerpos c ON c.seq = t.seq
WHERE substr(t.destination, -length(?)) <> ?
GROUP BY 1, 2
"""
_SUMAR = (
    "INSERT INTO saldos (cuenta, moneda, saldo) VALUES (?, ?, ?)"
    " ON CONFLICT (cuenta, moneda) DO UPDATE SET saldo = saldo + excluded.saldo"
)


class Saldos:
    def __init__(self, db: sqlite3.Connection, *, nueva: bool) -> None:
        """`nueva`: the table was just made, in a ledger that may hold transfers already."""
        self._db = db
        if nueva:
            self._db.execute(_DESDE_LOS_TRANSFERS, (SIN_SALDO, SIN_SALDO))

    def acreditar(self, cuenta: str, moneda: str, monto: int) -> None:
        if not cuenta.endswith(SIN_SALDO):  # paid out as soon as it arrives
            self._db.execute(_SUMAR, (cuenta, moneda, monto))

    def debitar(self, cuenta: str, moneda: str, monto: int) -> None:
        self._db.execute(_SUMAR, (cuenta, moneda, -monto))

    def sumar(self, cuenta: str, moneda: str, monto: int) -> None:
        """`monto` (negative: taken) whatever the account, as a transfer's deletion undoes one."""
        self._db.execute(_SUMAR, (cuenta, moneda, monto))

    def saldo(self, cuenta: str, moneda: str) -> int:
        fila = self._db.execute("SELECT saldo FROM saldos WHERE cuenta = ? AND moneda = ?", (cuenta, moneda)).fetchone()
        return 0 if fila is None else int(fila[0])

    def fijar(self, cuenta: str, moneda: str, saldo: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO saldos (cuenta, moneda, saldo) VALUES (?, ?, ?)", (cuenta, moneda, saldo)
        )

    def todos(self, cuenta: str | None = None) -> list[dict[str, str | int]]:
        filas = self._db.execute(
            "SELECT cuenta, moneda, saldo FROM saldos WHERE ? IS NULL OR cuenta = ? ORDER BY cuenta, moneda",
            (cuenta, cuenta),
        )
        return [{"cuenta": c, "moneda": m, "saldo": s} for c, m, s in filas]

    def podar(self) -> int:
        """Forget the balances at zero (an account without a row has nothing); how many."""
        return self._db.execute("DELETE FROM saldos WHERE saldo = 0").rowcount
