"""The transfer's form body is exactly what urlencode makes of it, whatever the affiliate's id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

from hypothesis import given
from hypothesis import strategies as st

from pagos_worker.adapters.stripe.adapter import transfer_form
from pagos_worker.domain import Dinero, Moneda, Pago

AHORA = datetime(2026, 11, 29, tzinfo=UTC)


@given(
    afiliado=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40),
    destino=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40),
    unidades=st.integers(min_value=1, max_value=100_000_000),
    moneda=st.sampled_from(list(Moneda)),
)
def test_igual_que_urlencode(afiliado, destino, unidades, moneda):
    importe = Dinero.de_unidades_menores(unidades, moneda)
    pago = Pago.crear(id_pago=uuid.uuid4(), id_afiliado=afiliado, importe=importe, ahora=AHORA)
    esperado = urlencode(
        {
            "amount": str(pago.importe.unidades_menores),
            "currency": moneda.value.lower(),
            "destination": destino,
            "description": f"Pago a afiliado {afiliado}",
            "transfer_group": str(pago.id_pago),
            "metadata[id_pago]": str(pago.id_pago),
            "metadata[id_afiliado]": afiliado,
        }
    ).encode()
    assert transfer_form(pago, destino) == esperado
    assert dict(parse_qsl(esperado.decode()))["metadata[id_afiliado]"] == afiliado
