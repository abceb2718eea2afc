"""The `conciliacion` bench's two books, written straight into their stores: the service's payments
and reversals into PostgreSQL (COPY), and Stripe's transfers and reversals into the simulator's
SQLite ledger (executemany, in its schema, before it starts), so that its list API serves them as
Stripe would. Each payment's slot says what is planted there (`bench_conciliacion_plan.plan`);
the answer the reconciliation must give is handed back."""

from __future__ import annotations

import random
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from pagos_dev.simulador.ledger import Ledger
from pagos_dev.simulador.reverso import Reverso
from pagos_dev.simulador.transfer import Transfer, lista_de_reversals
from pagos_dev.tools.bench_conciliacion_plan import CLASE_DE, CON_REVERSO, REVERSOS_PROPIOS, Clave, plan

_LOTE = 20_000
_MONEDAS = ("USD",) * 6 + ("EUR",) * 3 + ("COP",)
_PAGOS = ["id_pago", "id_afiliado", "monto", "moneda", "estado", "referencia_pago", "fecha_creacion",
          "fecha_procesamiento", "monto_reversado"]  # fmt: skip
_REVERSOS = ["id_reverso", "id_pago", "monto_pedido", "motivo", "estado", "monto", "moneda", "referencia_reverso",
             "fecha_creacion", "fecha_procesamiento"]  # fmt: skip


@dataclass
class Lote:
    pagos: list[tuple[Any, ...]] = field(default_factory=list)
    reversos: list[tuple[Any, ...]] = field(default_factory=list)
    transfers: list[tuple[Any, ...]] = field(default_factory=list)  # (seq, id, created, destination, group)
    cuerpos: list[tuple[int, bytes]] = field(default_factory=list)
    actuales: list[tuple[int, bytes]] = field(default_factory=list)
    reversals: list[tuple[str, int, bytes]] = field(default_factory=list)  # (id, seq_transfer, body)


@dataclass
class Siembra:
    """What was planted: the answer (`esperadas`, `coinciden`) and how much of each book."""

    esperadas: list[Clave] = field(default_factory=list)
    coinciden: int = 0
    pagos: int = 0
    transfers: int = 0
    reversos: int = 0
    sin_exito: int = 0
    _seq: int = 0

    def seq(self) -> int:
        self._seq += 1
        return self._seq


def _menores(monto: int) -> Decimal:
    return Decimal(monto).scaleb(-2)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass
class _Pago:
    """One slot: a payment of ours and what Stripe holds of it, before it is written down."""

    i: int
    plantada: str | None
    id_pago: str
    afiliado: str
    moneda: str
    monto: int
    t: datetime

    @property
    def created(self) -> int:
        return int(self.t.timestamp())

    @property
    def procesado(self) -> datetime:
        return self.t + timedelta(seconds=1)


def _transfer(s: Siembra, lote: Lote, p: _Pago, *, monto: int, destino: str) -> tuple[int, dict[str, Any]]:
    seq = s.seq()
    tr = Transfer(f"tr_bench{seq:016d}", monto, p.moneda.lower(), destino, None, {"id_pago": p.id_pago}, p.created,
                  p.id_pago)  # fmt: skip
    cuerpo = tr.as_stripe()
    lote.transfers.append((seq, tr.id, p.created, destino, p.id_pago))
    lote.cuerpos.append((seq, orjson.dumps(cuerpo)))
    s.transfers += 1
    return seq, cuerpo


def _reversal(lote: Lote, seq: int, cuerpo: dict[str, Any], monto: int, id_reverso: str | None) -> None:
    """A reversal at Stripe (ours with `metadata[id_reverso]`, the dashboard's without), 2 s after
    its transfer, shown in the transfer as the simulator shows it."""
    trr = f"trr_bench{seq:016d}"
    metadata = {"id_reverso": id_reverso} if id_reverso else {}
    rev = Reverso(trr, monto, cuerpo["currency"], cuerpo["id"], metadata, cuerpo["created"] + 2).as_stripe()
    lote.reversals.append((trr, seq, orjson.dumps(rev)))
    actual = {**cuerpo, "amount_reversed": monto, "reversed": monto >= cuerpo["amount"],
              "reversals": lista_de_reversals(cuerpo["id"], [rev], total=1)}  # fmt: skip
    lote.actuales.append((seq, orjson.dumps(actual)))


def _reverso_propio(s: Siembra, lote: Lote, p: _Pago, *, seq: int, cuerpo: dict[str, Any], id_rev: str) -> int:
    """A reversal of ours (a row of `reversos`) and, unless planted otherwise, Stripe's side of it;
    what it gave back (the payment's `monto_reversado`). One in two is of the whole amount."""
    reversado = p.monto if p.i % (2 * REVERSOS_PROPIOS) == 0 else p.monto // 2
    ref: str | None = f"trr_bench{seq:016d}"
    if p.plantada != "reverso_faltante":
        _reversal(lote, seq, cuerpo, reversado + 1 if p.plantada == "importe_reverso" else reversado, id_rev)
    estado = "EXITOSO"
    if p.plantada == "reverso_sin_registro":  # made at Stripe, recorded here as failed
        estado, reversado, ref = "FALLIDO", 0, None
    monto = _menores(max(reversado, 1))
    fin = p.procesado + timedelta(seconds=1)
    lote.reversos.append((uuid.UUID(id_rev), uuid.UUID(p.id_pago), monto, "fraude", estado, monto, p.moneda, ref,
                          p.procesado, fin))  # fmt: skip
    s.reversos += 1
    return reversado


def _slot(s: Siembra, lote: Lote, rng: random.Random, i: int, *, plantada: str | None, t: datetime) -> None:
    p = _Pago(i, plantada, _uuid(rng), f"af{rng.randrange(1000)}", rng.choice(_MONEDAS), rng.randrange(100, 10**6), t)
    id_rev = _uuid(rng) if plantada in CON_REVERSO or (plantada is None and i % REVERSOS_PROPIOS == 0) else None
    if plantada is not None:
        s.esperadas.append((CLASE_DE[plantada], p.id_pago, id_rev if plantada in CON_REVERSO else None))
    else:
        s.coinciden += 1
    estado, reversado = "EXITOSO", 0
    referencia: str | None = f"tr_perdida{i:016d}"
    if plantada != "exitoso_sin_transferencia":
        destino = "acct_otro" if plantada == "destino_distinto" else f"acct_{p.afiliado}"
        monto = p.monto + 1 if plantada == "importe_distinto" else p.monto
        seq, cuerpo = _transfer(s, lote, p, monto=monto, destino=destino)
        referencia = cuerpo["id"]
        if plantada == "transferencias_multiples":
            _transfer(s, lote, p, monto=monto, destino=destino)
        if plantada == "reverso_externo":
            _reversal(lote, seq, cuerpo, p.monto // 3, None)
        if id_rev is not None:
            reversado = _reverso_propio(s, lote, p, seq=seq, cuerpo=cuerpo, id_rev=id_rev)
            estado = "REVERSADO" if reversado == p.monto else estado
    if plantada == "transferencia_sin_exito":
        estado, referencia = "FALLIDO", None
        s.sin_exito += 1
        if s.sin_exito % 2:
            return  # every other one: a transfer of a payment the service never had
    lote.pagos.append((uuid.UUID(p.id_pago), p.afiliado, _menores(p.monto), p.moneda, estado, referencia,
                       t - timedelta(seconds=1), p.procesado, _menores(reversado)))  # fmt: skip
    s.pagos += 1


def lotes(pagos: int, desde: datetime, hasta: datetime, siembra: Siembra, semilla: int = 26) -> Iterator[Lote]:
    """Both books, `_LOTE` payments at a time, in the order of their transfers' `created` (as the
    simulator's ledger grows), spread over [desde, hasta - 10 s)."""
    rng = random.Random(semilla)  # noqa: S311 - test data
    plantadas = plan(pagos)
    tramo = (hasta - desde).total_seconds() - 10
    lote = Lote()
    for i in range(pagos):
        t = desde + timedelta(seconds=int(i * tramo / pagos))
        _slot(siembra, lote, rng, i, plantada=plantadas.get(i), t=t.astimezone(UTC))
        if len(lote.pagos) >= _LOTE:
            yield lote
            lote = Lote()
    yield lote


def abrir_ledger(archivo: Path) -> sqlite3.Connection:
    """The simulator's ledger file, its schema created by the simulator's own code."""
    Ledger(archivo).cerrar()
    db = sqlite3.connect(archivo)
    db.execute("PRAGMA synchronous=OFF")
    return db


def escribir_ledger(db: sqlite3.Connection, lote: Lote) -> None:
    db.executemany("INSERT INTO transfers (seq, id, created, destination, transfer_group) VALUES (?,?,?,?,?)",
                   lote.transfers)  # fmt: skip
    db.executemany("INSERT INTO cuerpos VALUES (?, ?)", lote.cuerpos)
    db.executemany("INSERT INTO cuerpos_actuales VALUES (?, ?)", lote.actuales)
    db.executemany("INSERT INTO reversos (id, seq_transfer, cuerpo) VALUES (?, ?, ?)", lote.reversals)
    db.commit()


async def escribir_postgres(conn: asyncpg.Connection, lote: Lote) -> None:
    await conn.copy_records_to_table("pagos", records=lote.pagos, columns=_PAGOS)
    if lote.reversos:
        await conn.copy_records_to_table("reversos", records=lote.reversos, columns=_REVERSOS)


async def sembrar(database_url_dsn: str, ledger: Path, pagos: int, desde: datetime, hasta: datetime) -> Siembra:
    siembra = Siembra()
    db = abrir_ledger(ledger)
    conn = await asyncpg.connect(database_url_dsn)
    try:
        for lote in lotes(pagos, desde, hasta, siembra):
            escribir_ledger(db, lote)
            await escribir_postgres(conn, lote)
        await conn.execute("ANALYZE pagos; ANALYZE reversos")
    finally:
        await conn.close()
        db.close()
    return siembra
