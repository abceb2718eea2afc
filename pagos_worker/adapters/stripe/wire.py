"""Stripe's side of the wire: the transfer as a form, and what its answers say."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

import orjson
import structlog

from pagos_worker.domain.pago import Pago

log = structlog.get_logger(__name__)


def transfer_del_pago(transfers: list[Any], pago: Pago) -> str | None:
    """The payment's transfer among those listed: the oldest, if (wrongly) more than one."""
    grupo = str(pago.id_pago)
    suyos = [t for t in transfers if isinstance(t, dict) and t.get("transfer_group") == grupo and t.get("id")]
    if not suyos:
        return None
    suyos.sort(key=lambda t: (t.get("created") or 0, str(t["id"])))
    if len(suyos) > 1:
        log.error("stripe.transfers_multiples", id_pago=grupo, transfers=[str(t["id"]) for t in suyos])
    return str(suyos[0]["id"])


def json_o_nada(crudo: bytes) -> Any:  # noqa: ANN401 - any JSON value, or None
    try:
        return orjson.loads(crudo) if crudo else None
    except orjson.JSONDecodeError:
        return None


def formulario(pago: Pago, destino: str) -> bytes:
    """The transfer as Stripe's form encoding — what `urlencode` makes of it, for a fraction of its
    cost: the keys are fixed and only the free-text values need quoting."""
    afiliado = quote_plus(pago.id_afiliado)
    return (
        f"amount={pago.importe.unidades_menores}&currency={pago.importe.moneda.value.lower()}"
        f"&destination={quote_plus(destino)}&description=Pago+a+afiliado+{afiliado}"
        f"&transfer_group={pago.id_pago}"
        f"&metadata%5Bid_pago%5D={pago.id_pago}&metadata%5Bid_afiliado%5D={afiliado}"
    ).encode()


def retry_after(headers: Mapping[str, str]) -> float | None:  # Retry-After in seconds, if any
    try:
        return max(0.0, float(headers["retry-after"]))
    except (KeyError, ValueError):
        return None
