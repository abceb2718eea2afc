"""The open-file limit at start: raised as far as the hard limit allows, and a warning that names
what to change when the configured concurrency still cannot fit."""

from __future__ import annotations

import resource

import pytest
from structlog.testing import capture_logs

from pagos_worker.entrypoints import limits


@pytest.fixture
def rlimit(monkeypatch):
    """A fake RLIMIT_NOFILE: `valor` is (soft, hard); `falla` makes setrlimit refuse."""
    estado = {"valor": (1024, 4096), "falla": False}

    def setrlimit(_: int, nuevo: tuple[int, int]) -> None:
        if estado["falla"]:
            raise ValueError("not allowed")
        estado["valor"] = nuevo

    monkeypatch.setattr(limits.resource, "getrlimit", lambda _: estado["valor"])
    monkeypatch.setattr(limits.resource, "setrlimit", setrlimit)
    return estado


def test_se_eleva_hasta_el_limite_duro(rlimit):
    with capture_logs() as lineas:
        assert limits.elevar_limite_de_descriptores(2000, 10) == (4096, 2000 + 10 + limits.MARGEN)
    assert rlimit["valor"] == (4096, 4096)
    assert lineas == []


def test_si_no_cabe_lo_dice_con_que_cambiar(rlimit):
    with capture_logs() as lineas:
        blando, necesarios = limits.elevar_limite_de_descriptores(10_000, 20)
    assert (blando, necesarios) == (4096, 10_000 + 20 + limits.MARGEN)
    [aviso] = lineas
    assert aviso["event"] == "descriptores.insuficientes"
    assert "PAGOS_PASARELA_CONCURRENCY" in aviso["consejo"]


def test_si_no_se_puede_elevar_sigue_y_lo_dice(rlimit):
    rlimit["falla"] = True
    with capture_logs() as lineas:
        assert limits.elevar_limite_de_descriptores(100, 10)[0] == 1024
    assert [linea["event"] for linea in lineas] == ["descriptores.no_elevado"]


def test_sin_limite_duro_se_pide_lo_necesario(rlimit):
    rlimit["valor"] = (1024, resource.RLIM_INFINITY)
    assert limits.elevar_limite_de_descriptores(10_000, 20)[0] == 10_000 + 20 + limits.MARGEN
