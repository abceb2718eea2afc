"""A pinned Go tool built for real: what `go install` made must be the module the pin names."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from pagos_dev import herramientas
from pagos_dev.herramientas import HerramientaNoDisponibleError, binario

pytestmark = pytest.mark.integration


@pytest.mark.skipif(shutil.which("go") is None, reason="SKIPPED WITHOUT GO: Go is not on PATH")
def test_otro_hash_que_el_fijado_no_deja_binario(monkeypatch, tmp_path):
    pin = herramientas.HERRAMIENTAS["stripe-mock"]
    falso = dataclasses.replace(pin, h1="h1:" + "A" * 43 + "=")
    monkeypatch.setitem(herramientas.HERRAMIENTAS, "stripe-mock", falso)
    with pytest.raises(HerramientaNoDisponibleError, match="the module's hash differs from the pin") as error:
        binario("stripe-mock", tmp_path)
    assert pin.h1 in str(error.value)  # what it was built from
    assert not any(p.name == "stripe-mock" for p in tmp_path.rglob("*"))
