"""`POST /v1/transfers/{id}/reversals`: the parameters it takes, what Stripe checks before the
endpoint runs (`validar`, and the transfer must exist: a failure saves nothing under the key) and
what it does once it runs (`CrearReverso`, an `Operacion` for `creacion.Creador`).

Its refusals, decided when it runs (on the transfer and the balance as they are then) and saved
under the key as a transfer's declines are, all `invalid_request_error` with status 400:

- Nothing left to reverse: no code, "The transfer tr_… is already fully reversed." That is the
  message Stripe answers (quoted in stripe/stripe-ruby#1058, which asks Stripe for a code because
  there is none; alphagov/pay-connector asserts it against Stripe's test mode).
- More than what is left: no code either, param `amount`. Stripe documents that it errs ("when
  trying to reverse more money than is left on a transfer") but not its words: these follow its
  refund's ("Refund amount ($5.01) is greater than charge amount ($5.00)", param `amount`).
- The connected account's balance cannot cover it: code `balance_insufficient`, which Stripe's
  error codes describe as "the associated account does not have a sufficient balance available".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from pagos_dev.simulador import errores, montos
from pagos_dev.simulador.ids import nuevo_id_ordenado
from pagos_dev.simulador.ledger import Ledger
from pagos_dev.simulador.parametros import Tipo
from pagos_dev.simulador.reverso import Reverso

REVERTIR = {
    "amount": Tipo.ENTERO, "description": Tipo.TEXTO, "expand": Tipo.LISTA, "metadata": Tipo.HASH,
    "refund_application_fee": Tipo.BOOLEANO,  # taken, and nothing to do: the platform charged no fee
}  # fmt: skip


def validar(params: dict[str, Any]) -> None:
    if "amount" in params and params["amount"] < 1:
        raise errores.invalido("Invalid positive integer", "amount", "parameter_invalid_integer")


@dataclass(frozen=True, slots=True)
class CrearReverso:
    id_transfer: str
    seq_transfer: int
    destino: str  # the transfer's: its faults, and the balance debited
    params: dict[str, Any]
    ledger: Ledger
    reloj: Callable[[], float]  # `created`

    def rechazo(self, codigo: str | None) -> None:  # noqa: ARG002 - the protocol's
        """A reversal has no declines of its own: a decline by rate is the transfers'."""
        return

    def hacer(self) -> tuple[int, bytes, int | None]:
        transfer = orjson.loads(self.ledger.obtener(self.id_transfer) or b"null")
        if transfer is None:  # deleted (`/_simulador/transfers`) while this request waited
            return 404, errores.no_existe("transfer", self.id_transfer, "id").cuerpo(), None
        moneda, pendiente = transfer["currency"], transfer["amount"] - transfer["amount_reversed"]
        amount = self.params.get("amount", pendiente)
        if pendiente <= 0:
            error = errores.invalido(f"The transfer {self.id_transfer} is already fully reversed.")
        elif amount > pendiente:
            mensaje = (f"Transfer reversal amount ({montos.texto(amount, moneda)}) is greater than the amount "
                       f"left to reverse on the transfer ({montos.texto(pendiente, moneda)})")  # fmt: skip
            error = errores.invalido(mensaje, "amount")
        elif self.ledger.saldos.saldo(self.destino, moneda) < amount:
            mensaje = (f"The connected account {self.destino} has insufficient funds to cover this reversal "
                       f"of {montos.texto(amount, moneda)}.")  # fmt: skip
            error = errores.invalido(mensaje, code="balance_insufficient")
        else:
            reverso = Reverso(nuevo_id_ordenado("trr"), amount, moneda, self.id_transfer,
                              self.params.get("metadata", {}), int(self.reloj()))  # fmt: skip
            return 200, self.ledger.revertir(self.seq_transfer, transfer, reverso), None
        return 400, error.cuerpo(), None
