"""The simulator's own endpoints for tests and tools, beside Stripe's API (no API key):
`/_simulador/saldos`, the connected accounts' balances (`saldos`), and `DELETE
/_simulador/transfers/{id}`, a transfer gone from the ledger (`Ledger.borrar`): drift for the
reconciliation's tests, a payment we hold as paid with no transfer at Stripe."""

from __future__ import annotations

from typing import Any

import orjson

from pagos_dev.simulador import formularios
from pagos_dev.simulador.http import Peticion, Respuesta
from pagos_dev.simulador.ledger import Ledger
from pagos_dev.simulador.montos import MONEDAS

_SALDO = f"se esperaba {{'cuenta': 'acct_…', 'moneda': una de {', '.join(MONEDAS)}, 'saldo': un entero}}"


def ver_saldos(ledger: Ledger, request: Peticion) -> Respuesta:
    """`GET`: every balance, or those of `?cuenta=acct_…`."""
    cuenta = dict(formularios.urlencoded(request.consulta)).get("cuenta")
    return Respuesta.json({"saldos": ledger.saldos.todos(cuenta)})


async def fijar_saldo(ledger: Ledger, request: Peticion) -> Respuesta:
    """`POST {"cuenta": "acct_…", "moneda": "usd", "saldo": 0}` (minor units): the account's
    balance in that currency from now on, written to disk before the answer."""
    try:
        pedido: Any = orjson.loads(request.cuerpo)
    except orjson.JSONDecodeError as exc:
        return Respuesta.json({"error": f"JSON inválido: {exc}"}, 400)
    if not isinstance(pedido, dict) or set(pedido) != {"cuenta", "moneda", "saldo"}:
        return Respuesta.json({"error": _SALDO}, 400)
    cuenta, moneda, saldo = pedido["cuenta"], pedido["moneda"], pedido["saldo"]
    valido = isinstance(cuenta, str) and cuenta.startswith("acct_") and moneda in MONEDAS
    if not valido or not isinstance(saldo, int) or isinstance(saldo, bool):
        return Respuesta.json({"error": _SALDO}, 400)
    ledger.saldos.fijar(cuenta, moneda, saldo)
    await ledger.escrito()
    return Respuesta.json({"cuenta": cuenta, "moneda": moneda, "saldo": saldo})


async def borrar_transfer(ledger: Ledger, id_transfer: str) -> Respuesta:
    """`DELETE /_simulador/transfers/{id}`: what went with it (reversals, keys) and the destination's
    balance after; a 404 if there is no such transfer."""
    hecho = ledger.borrar(id_transfer)
    if hecho is None:
        return Respuesta.json({"error": f"no existe el transfer {id_transfer[:100]!r}"}, 404)
    await ledger.escrito()
    return Respuesta.json(hecho)
