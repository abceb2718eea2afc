"""A transfer reversal as Stripe returns it: every property of `components.schemas.transfer_reversal`,
and the expansions Stripe offers for it (`expand[]`), objects with the properties the spec requires."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

EXPANDIBLES = frozenset({"balance_transaction", "destination_payment_refund", "source_refund", "transfer"})


@dataclass(frozen=True, slots=True)
class Reverso:
    id: str
    amount: int
    currency: str
    transfer: str
    metadata: dict[str, str]
    created: int

    def as_stripe(self) -> dict[str, Any]:
        sufijo = self.id.removeprefix("trr_")
        return {
            "id": self.id,
            "object": "transfer_reversal",
            "amount": self.amount,
            "balance_transaction": "txn_" + sufijo,  # the platform's: the money coming back
            "created": self.created,
            "currency": self.currency,
            "destination_payment_refund": "pyr_" + sufijo,  # the connected account's side
            "metadata": self.metadata,
            "source_refund": None,  # a reversal asked for, not one a refund caused
            "transfer": self.transfer,
        }


def expandir(objeto: dict[str, Any], campos: list[str], transfer: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """`transfer`: the transfer as it is now, by id."""
    for campo in campos:
        valor = objeto.get(campo)
        if isinstance(valor, str):  # null stays null (source_refund)
            objeto[campo] = transfer(valor) if campo == "transfer" else _EXPANSIONES[campo](objeto)
    return objeto


def balance_transaction(r: dict[str, Any]) -> dict[str, Any]:
    """The platform's credit (`balance_type`, which balance it moves: newer than ../shared's spec,
    in Stripe's today and in stripe-mock's fixtures)."""
    return {
        "id": r["balance_transaction"], "object": "balance_transaction", "amount": r["amount"],
        "available_on": r["created"], "balance_type": "payments", "created": r["created"], "currency": r["currency"],
        "description": None, "exchange_rate": None, "fee": 0, "fee_details": [], "net": r["amount"],
        "reporting_category": "transfer_reversal", "source": r["id"], "status": "available", "type": "transfer_refund",
    }  # fmt: skip


def _reembolso_de_destino(r: dict[str, Any]) -> dict[str, Any]:
    """What the connected account sees: a refund of the payment the transfer made on its side."""
    return {
        "id": r["destination_payment_refund"], "object": "refund", "amount": r["amount"], "balance_transaction": None,
        "charge": "py_" + r["transfer"].removeprefix("tr_"), "created": r["created"], "currency": r["currency"],
        "metadata": {}, "reason": None, "status": "succeeded",
    }  # fmt: skip


_EXPANSIONES = {"balance_transaction": balance_transaction, "destination_payment_refund": _reembolso_de_destino}
