"""The benchmark's arithmetic (the figures it reports are only as good as this)."""

from __future__ import annotations

import pytest

from pagos_dev.tools.bench import _cuantil_de_histograma, _percentiles

INF = float("inf")


def test_cuantil_interpola_dentro_del_cubo():
    cubos = {0.005: 0, 0.01: 50, 0.02: 100, INF: 100}
    assert _cuantil_de_histograma(cubos, 0.5) == pytest.approx(10.0)
    assert _cuantil_de_histograma(cubos, 0.99) == pytest.approx(19.8)
    assert _cuantil_de_histograma({0.005: 90, 0.01: 100, INF: 100}, 0.5) == pytest.approx(2.8, abs=0.05)


def test_cuantil_sin_observaciones_o_por_encima_del_ultimo_cubo():
    assert _cuantil_de_histograma({}, 0.99) is None
    assert _cuantil_de_histograma({0.1: 0, INF: 0}, 0.99) is None
    assert _cuantil_de_histograma({0.1: 10, INF: 100}, 0.99) == pytest.approx(100.0)


def test_percentiles_en_ms():
    p = _percentiles([i / 1000 for i in range(1, 1001)])
    assert p["p50"] == pytest.approx(500.5, abs=0.1)
    assert p["p99"] == pytest.approx(990.0, abs=0.1)
    assert p["max"] == 1000.0
    assert _percentiles([0.1]) == {}
