"""A transfer as Stripe returns it: every property of `components.schemas.transfer`, and the
expansions Stripe offers for it (`expand[]`), objects with the properties the spec requires."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pagos_dev.simulador import errores

EXPANDIBLES = frozenset(
    {"balance_transaction", "destination", "destination_payment", "reversals", "source_transaction"}
)


@dataclass(frozen=True, slots=True)
class Transfer:
    id: str
    amount: int
    currency: str
    destination: str
    description: str | None
    metadata: dict[str, str]
    created: int
    transfer_group: str | None = None
    source_type: str = "card"

    @classmethod
    def de_stripe(cls, objeto: dict[str, Any]) -> Transfer:
        return cls(
            objeto["id"], objeto["amount"], objeto["currency"], objeto["destination"], objeto["description"],
            objeto["metadata"], objeto["created"], objeto["transfer_group"], objeto["source_type"],
        )  # fmt: skip

    def as_stripe(self) -> dict[str, Any]:
        sufijo = self.id.removeprefix("tr_")
        return {
            "id": self.id,
            "object": "transfer",
            "amount": self.amount,
            "amount_reversed": 0,
            "balance_transaction": "txn_" + sufijo,
            "created": self.created,
            "currency": self.currency,
            "description": self.description,
            "destination": self.destination,
            "destination_payment": "py_" + sufijo,
            "livemode": False,
            "metadata": self.metadata,
            "reversals": lista_de_reversals(self.id, [], total=0),
            "reversed": False,
            "source_transaction": None,
            "source_type": self.source_type,
            "transfer_group": self.transfer_group,
        }


def lista_de_reversals(id_transfer: str, recientes: list[dict[str, Any]], *, total: int) -> dict[str, Any]:
    """`transfer.reversals`: the newest reversals, and how many there are. Stripe's own example
    of a transfer (docs.stripe.com/api/transfers/object) shows `total_count` in this list, which
    the spec's `TransferReversalList` leaves out: a transfer's sub-list still carries it."""
    return {"object": "list", "data": recientes, "has_more": total > len(recientes), "total_count": total,
            "url": f"/v1/transfers/{id_transfer}/reversals"}  # fmt: skip


def campos_a_expandir(expand: list[str], *, en_lista: bool, expandibles: frozenset[str] = EXPANDIBLES) -> list[str]:
    """The object's fields named by `expand` (`data.<field>` in a list); 400 for any other."""
    campos = []
    for ruta in expand:
        campo = ruta.removeprefix("data.") if en_lista else ruta
        if campo not in expandibles or (en_lista and not ruta.startswith("data.")):
            raise errores.invalido(f"This property cannot be expanded ({ruta[:100]}).", "expand")
        campos.append(campo)
    return campos


def expandir(objeto: dict[str, Any], campos: list[str]) -> dict[str, Any]:
    for campo in campos:
        valor = objeto.get(campo)
        if isinstance(valor, str):  # null stays null; `reversals` is already a list object
            objeto[campo] = _EXPANSIONES[campo](objeto)
    return objeto


def _balance_transaction(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": t["balance_transaction"], "object": "balance_transaction", "amount": -t["amount"],
        "available_on": t["created"], "balance_type": "payments", "created": t["created"], "currency": t["currency"],
        "description": None, "exchange_rate": None, "fee": 0, "fee_details": [], "net": -t["amount"],
        "reporting_category": "transfer", "source": t["id"], "status": "available", "type": "transfer",
    }  # fmt: skip


def _cuenta(t: dict[str, Any]) -> dict[str, Any]:
    return {"id": t["destination"], "object": "account", "type": "custom"}


def _pago_de_destino(t: dict[str, Any]) -> dict[str, Any]:
    """The payment the connected account received: a charge on its side."""
    direccion = dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))
    return {
        "id": t["destination_payment"], "object": "charge", "amount": t["amount"], "amount_captured": t["amount"],
        "amount_refunded": 0, "billing_details": {"address": direccion, "email": None, "name": None, "phone": None},
        "captured": True, "created": t["created"], "currency": t["currency"], "disputed": False, "livemode": False,
        "metadata": {}, "paid": True, "refunded": False, "status": "succeeded", "source_transfer": t["id"],
    }  # fmt: skip


_EXPANSIONES = {
    "balance_transaction": _balance_transaction,
    "destination": _cuenta,
    "destination_payment": _pago_de_destino,
}
