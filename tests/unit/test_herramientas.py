"""The pinned Go tools (pagos_dev/herramientas.py): reused once built, even without Go; without Go
and not built, an error that names Go and what it would have built."""

from __future__ import annotations

import pytest

from pagos_dev.herramientas import HERRAMIENTAS, HerramientaNoDisponibleError, binario


def test_sin_go_el_error_nombra_go_y_lo_que_construiria(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "vacio"))
    with pytest.raises(HerramientaNoDisponibleError) as error:
        binario("kustomize", tmp_path)
    mensaje = str(error.value)
    assert "Go is not on PATH" in mensaje
    assert f"go install sigs.k8s.io/kustomize/kustomize/v5@{HERRAMIENTAS['kustomize'].version}" in mensaje
    assert "Go 1.26 or newer" in mensaje
    assert not any(tmp_path.rglob("kustomize"))


def test_lo_ya_construido_se_usa_sin_go(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "vacio"))
    h = HERRAMIENTAS["stripe-mock"]
    construido = tmp_path / f"{h.modulo}@{h.version}" / h.nombre
    construido.parent.mkdir(parents=True)
    construido.write_text("#!/bin/sh\n")
    construido.chmod(0o755)
    assert binario("stripe-mock", tmp_path) == construido
