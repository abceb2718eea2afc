"""`POST /v1/transfers`: the parameters it takes, what Stripe checks before the endpoint runs
(`validar`: a failure saves nothing under the key) and what it does once it runs
(`CrearTransfer`, an `Operacion` for `creacion.Creador`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pagos_dev.simulador import errores, montos
from pagos_dev.simulador.fallas import Fallas
from pagos_dev.simulador.ids import nuevo_id_ordenado
from pagos_dev.simulador.ledger import Ledger
from pagos_dev.simulador.parametros import Tipo
from pagos_dev.simulador.transfer import Transfer

CREAR = {
    "amount": Tipo.ENTERO, "currency": Tipo.TEXTO, "description": Tipo.TEXTO, "destination": Tipo.TEXTO,
    "expand": Tipo.LISTA, "metadata": Tipo.HASH, "source_transaction": Tipo.TEXTO, "source_type": Tipo.TEXTO,
    "transfer_group": Tipo.TEXTO,
}  # fmt: skip
_RECHAZOS = {
    "balance_insufficient": "You have insufficient funds in your Stripe account for this transfer.",
    "account_invalid": "The destination account is not valid.",
}


def validar(params: dict[str, Any]) -> None:
    """What Stripe checks before the endpoint runs: a failure saves nothing under the key."""
    for campo in ("amount", "currency", "destination"):
        if campo not in params:
            raise errores.falta(campo)
        if params[campo] == "":
            raise errores.vacio(campo)
    montos.comprobar(params["amount"], params["currency"])
    if not params["destination"].startswith("acct_"):
        raise errores.no_existe("destination", params["destination"], "destination", status=400)
    if "source_transaction" in params:
        raise errores.no_existe("charge", params["source_transaction"], "source_transaction", status=400)
    if params.get("source_type", "card") not in {"bank_account", "card", "fpx"}:
        raise errores.invalido("Invalid source_type: must be one of bank_account, card or fpx", "source_type")


@dataclass(frozen=True, slots=True)
class CrearTransfer:
    params: dict[str, Any]
    ledger: Ledger
    fallas: Callable[[], Fallas]
    reloj: Callable[[], float]  # `created`

    @property
    def destino(self) -> str:
        return str(self.params["destination"])

    def rechazo(self, codigo: str | None) -> tuple[int, bytes]:
        mensaje = _RECHAZOS.get(codigo or "", "The transfer was declined.")
        return 400, errores.invalido(mensaje, code=codigo).cuerpo()

    def hacer(self) -> tuple[int, bytes, int | None]:
        params = self.params
        transfer = Transfer(
            nuevo_id_ordenado("tr"), params["amount"], params["currency"], params["destination"],
            params.get("description"), params.get("metadata", {}), int(self.reloj()),
            params.get("transfer_group"), params.get("source_type", "card"),
        )  # fmt: skip
        cuerpo, seq = self.ledger.crear_transfer(
            transfer, listado_tras_s=self.fallas().retraso_de_listado(self.destino)
        )
        return 200, cuerpo, seq
