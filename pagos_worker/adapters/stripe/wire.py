"""Stripe's side of the wire: the transfer as a form, and what its answers say."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus, urlencode

import orjson

from pagos_worker.domain.pago import Pago
from pagos_worker.domain.reverso import Reverso


def transfers_of(transfers: list[Any], pago: Pago) -> list[dict[str, Any]]:
    """The payment's transfers among those listed (`transfer_group` = its id), oldest first."""
    group = str(pago.id_pago)
    own = [t for t in transfers if isinstance(t, dict) and t.get("transfer_group") == group and t.get("id")]
    own.sort(key=lambda t: (t.get("created") or 0, str(t["id"])))
    return own


def json_or_none(raw: bytes) -> Any:  # noqa: ANN401 - any JSON value, or None
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


def transfer_form(pago: Pago, destination: str) -> bytes:
    """The transfer as Stripe's form encoding — what `urlencode` makes of it, for a fraction of its
    cost: the keys are fixed and only the free-text values need quoting."""
    affiliate = quote_plus(pago.id_afiliado)
    return (
        f"amount={pago.importe.unidades_menores}&currency={pago.importe.moneda.value.lower()}"
        f"&destination={quote_plus(destination)}&description=Pago+a+afiliado+{affiliate}"
        f"&transfer_group={pago.id_pago}"
        f"&metadata%5Bid_pago%5D={pago.id_pago}&metadata%5Bid_afiliado%5D={affiliate}"
    ).encode()


def reversal_form(reverso: Reverso) -> bytes:
    """A transfer reversal of the reversal's amount, named in its metadata (what the lookup before a
    retry matches on: `metadata[id_reverso]`)."""
    assert reverso.importe is not None  # noqa: S101 - fixed when it was claimed
    campos = {
        "amount": str(reverso.importe.unidades_menores),
        "description": reverso.descripcion or f"Reverso {reverso.motivo.value} del pago {reverso.id_pago}",
        "metadata[id_reverso]": str(reverso.id_reverso),
        "metadata[id_pago]": str(reverso.id_pago),
        "metadata[motivo]": reverso.motivo.value,
    }
    return urlencode(campos).encode()


def reversals_of(reversals: list[Any], reverso: Reverso) -> list[dict[str, Any]]:
    """The reversal's own among a transfer's reversals listed (`metadata[id_reverso]` = its id)."""
    propio = str(reverso.id_reverso)
    return [
        r
        for r in reversals
        if isinstance(r, dict) and isinstance(r.get("metadata"), dict) and r["metadata"].get("id_reverso") == propio
    ]


def retry_after(headers: Mapping[str, str]) -> float | None:  # Retry-After in seconds, if any
    try:
        return max(0.0, float(headers["retry-after"]))
    except (KeyError, ValueError):
        return None
