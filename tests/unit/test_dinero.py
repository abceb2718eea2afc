from decimal import Decimal

import pytest

from pagos_worker.domain import Dinero, DineroInvalidoError, Moneda, MonedaNoSoportadaError


@pytest.mark.parametrize(
    ("monto", "moneda", "esperado"),
    [
        ("100.50", Moneda.USD, Decimal("100.50")),
        ("100.5", Moneda.EUR, Decimal("100.50")),
        ("7", Moneda.COP, Decimal("7.00")),
        ("0.01", Moneda.USD, Decimal("0.01")),
        ("1000000.00", Moneda.USD, Decimal("1000000.00")),
        ("100.500", Moneda.USD, Decimal("100.50")),  # trailing zeros lose nothing
        ("1E+2", Moneda.USD, Decimal("100.00")),
    ],
)
def test_dinero_valido_queda_en_la_precision_de_la_moneda(monto, moneda, esperado):
    dinero = Dinero(Decimal(monto), moneda)
    assert dinero.monto == esperado
    assert dinero.monto.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("monto", "moneda", "codigo"),
    [
        ("0", Moneda.USD, "monto_no_positivo"),
        ("-0.01", Moneda.USD, "monto_no_positivo"),
        ("100.505", Moneda.USD, "demasiados_decimales"),
        ("0.001", Moneda.EUR, "demasiados_decimales"),
        ("1000000.01", Moneda.USD, "monto_demasiado_grande"),
        ("4000000000.01", Moneda.COP, "monto_demasiado_grande"),
        ("1E+400", Moneda.USD, "monto_demasiado_grande"),
        ("NaN", Moneda.USD, "monto_invalido"),
        ("Infinity", Moneda.USD, "monto_invalido"),
    ],
)
def test_dinero_invalido_dice_por_que(monto, moneda, codigo):
    with pytest.raises(DineroInvalidoError) as info:
        Dinero(Decimal(monto), moneda)
    assert info.value.codigo == codigo


def test_dinero_nunca_acepta_float():
    with pytest.raises(DineroInvalidoError):
        Dinero(100.5, Moneda.USD)  # type: ignore[arg-type]


def test_unidades_menores_ida_y_vuelta():
    dinero = Dinero(Decimal("1234.56"), Moneda.COP)
    assert dinero.unidades_menores == 123456
    assert Dinero.de_unidades_menores(123456, Moneda.COP) == dinero


def test_igualdad_por_valor():
    assert Dinero(Decimal("5.0"), Moneda.USD) == Dinero(Decimal("5.00"), Moneda.USD)
    assert Dinero(Decimal(5), Moneda.USD) != Dinero(Decimal(5), Moneda.EUR)


def test_moneda_no_soportada():
    with pytest.raises(MonedaNoSoportadaError, match="GBP"):
        Moneda.de_codigo("GBP")
    assert Moneda.de_codigo("COP") is Moneda.COP
