"""The platform's balance transactions: `GET /v1/balance_transactions` (newest first, limit 1-100,
`starting_after` or `ending_before`, filters `type`, `created`, `source`, `currency`) and
`GET /v1/balance_transactions/{id}`, with `expand[]=data.source` (and `data.source.transfer`).

A transfer's `balance_transaction` debits the platform (type `transfer`, negative), a reversal's
credits it back (type `transfer_refund`, positive): the ids the transfer and the reversal name
(`txn_` + their own suffix) are these objects. The list serves the reversals' (`transfer_refund`,
what a reconciliation asks for by date); a transfer's is found by id. Asked for another type, or
none, the list holds the reversals' alone: this simulator makes no charge, payout or fee."""

from __future__ import annotations

from typing import Any

import orjson

from pagos_dev.simulador import errores, reverso, transfer
from pagos_dev.simulador.lecturas import OBTENER, REVERSALS, lista, pagina_pedida
from pagos_dev.simulador.ledger import Ledger
from pagos_dev.simulador.parametros import Tipo

LISTAR = {**REVERSALS, "created": Tipo.RANGO, "currency": Tipo.TEXTO, "payout": Tipo.TEXTO,
          "source": Tipo.TEXTO, "type": Tipo.TEXTO}  # fmt: skip
OBTENER_MOVIMIENTO = OBTENER
_EXPANDIBLES = {"source", "source.transfer"}


def listar(ledger: Ledger, params: dict[str, Any]) -> bytes:
    campos = _campos(params.get("expand", []), en_lista=True)
    pagina = pagina_pedida(params, lambda txn: ledger.reversos.lugar_global("trr_" + _sufijo(txn)),
                           "balance_transaction")  # fmt: skip
    created = params.get("created", {})
    vacia = params.get("type", "transfer_refund") != "transfer_refund" or "payout" in params
    if "source" in params:
        vacia = vacia or not str(params["source"]).startswith("trr_")
    cuerpos: list[bytes] = []
    mas = False
    if not vacia:
        rango = created if isinstance(created, dict) else {"eq": created}
        fuente, moneda = params.get("source"), params.get("currency")
        cuerpos, mas = ledger.reversos.por_fecha(rango, pagina, source=fuente, currency=moneda)
    datos = [orjson.dumps(_movimiento(ledger, orjson.loads(c), campos)) for c in cuerpos]
    return lista(datos, mas=mas, url="/v1/balance_transactions")


def obtener(ledger: Ledger, id_txn: str, params: dict[str, Any]) -> bytes:
    campos = _campos(params.get("expand", []), en_lista=False)
    sufijo = _sufijo(id_txn)
    cuerpo = ledger.reversos.por_id("trr_" + sufijo) if sufijo else None
    if cuerpo is not None:
        return orjson.dumps(_movimiento(ledger, orjson.loads(cuerpo), campos))
    actual = ledger.obtener("tr_" + sufijo) if sufijo else None
    if actual is None:
        raise errores.no_existe("balance_transaction", id_txn, "id")
    t = orjson.loads(actual)
    movimiento = transfer.expandir(t, ["balance_transaction"])["balance_transaction"]
    if "source" in campos:
        movimiento["source"] = orjson.loads(actual)
    return orjson.dumps(movimiento)


def _movimiento(ledger: Ledger, r: dict[str, Any], campos: list[str]) -> dict[str, Any]:
    movimiento = reverso.balance_transaction(r)
    if "source" in campos:
        if "source.transfer" in campos:
            r = reverso.expandir(r, ["transfer"], lambda t: dict(orjson.loads(ledger.obtener(t) or b"{}")))
        movimiento["source"] = r
    return movimiento


def _sufijo(id_txn: str) -> str:
    return id_txn.removeprefix("txn_") if id_txn.startswith("txn_") else ""


def _campos(expand: list[str], *, en_lista: bool) -> list[str]:
    campos = []
    for ruta in expand:
        campo = ruta.removeprefix("data.") if en_lista else ruta
        if campo not in _EXPANDIBLES or (en_lista and not ruta.startswith("data.")):
            raise errores.invalido(f"This property cannot be expanded ({ruta[:100]}).", "expand")
        campos.append(campo)
    if "source.transfer" in campos and "source" not in campos:
        campos.append("source")
    return campos
