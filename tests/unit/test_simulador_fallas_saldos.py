"""The simulator's fault triggers by account name with `_sin_saldo`: pure functions, no I/O."""

from __future__ import annotations

import random

import pytest

from pagos_dev.simulador.fallas import Falla, Fallas, elegir


@pytest.mark.parametrize(
    ("destino", "falla", "codigo"),
    [
        ("acct_test_afiliado_sin_saldo", Falla.NINGUNA, None),  # a name, not a decline code
        ("acct_test_sin_saldo", Falla.NINGUNA, None),
        ("acct_test_error_500_sin_saldo", Falla.ERROR_500, None),
        ("acct_test_balance_insufficient_sin_saldo", Falla.RECHAZO, "balance_insufficient"),
        ("acct_test_unlisted_sin_saldo", Falla.NINGUNA, None),
        ("acct_test_afiliado", Falla.RECHAZO, "afiliado"),  # unchanged: any other name is a decline
        ("acct_afiliado_sin_saldo", Falla.NINGUNA, None),
    ],
)
def test_un_nombre_sin_saldo_elige_la_falla_del_resto_del_nombre(destino, falla, codigo):
    fallas = Fallas(tasa_rechazo=0)
    assert elegir(fallas, destino, 1, random.Random(1)) == (falla, codigo)


def test_sin_saldo_y_unlisted_juntos():
    fallas = Fallas(no_listado_s=60)
    assert fallas.retraso_de_listado("acct_test_unlisted_sin_saldo") == 60
    assert fallas.retraso_de_listado("acct_test_error_500_unlisted_sin_saldo") == 60
    assert fallas.retraso_de_listado("acct_test_afiliado_sin_saldo") == 0
