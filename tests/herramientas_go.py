"""The pinned Go tools in the tests (pagos_dev/herramientas.py): built on first use, once per machine
and pin, and skipped, saying why, only where Go is absent (a failed build is an error). The run's
summary counts the tests that need them: the kustomize rendering (every test using the `kustomize`
fixture, marked `kustomize` here) and the stripe-mock suite (marker `stripe_mock`)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pagos_dev.herramientas import HERRAMIENTAS, HerramientaNoDisponibleError, binario
from pagos_dev.settings import DevSettings

_GRUPOS = {"kustomize": ("kustomize rendering", "kustomize"), "stripe_mock": ("stripe-mock suite", "stripe-mock")}
_resultados: dict[str, dict[str, str]] = {marca: {} for marca in _GRUPOS}  # nodeid: passed, failed or skipped
_motivos: dict[str, set[str]] = {marca: set() for marca in _GRUPOS}


@pytest.fixture(scope="session")
def herramienta_go() -> Callable[[str], Path]:
    """`herramienta_go("kustomize")`: the pinned binary's path."""
    directorio = DevSettings().go_tools_dir
    if not directorio.is_absolute():
        directorio = Path(__file__).resolve().parents[1] / directorio

    def obtener(nombre: str) -> Path:
        try:
            return binario(nombre, directorio)
        except HerramientaNoDisponibleError as exc:
            if shutil.which("go") is None:
                pytest.skip(f"SKIPPED WITHOUT GO: {exc}")
            raise

    return obtener


def renderizar(kustomize: Path, directorio: Path) -> list[dict[str, Any]]:
    """`kustomize build` of a directory with the pinned binary: the rendered objects."""
    out = subprocess.run(  # noqa: S603 - the pinned kustomize, fixed arguments
        [kustomize, "build", str(directorio)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d is not None]


def marcar(items: list[pytest.Item]) -> None:
    """The tests that render with the pinned kustomize get its marker (tests/conftest.py's hook)."""
    for item in items:
        if "kustomize" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kustomize)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for marca, resultados in _resultados.items():
        if marca not in report.keywords:
            continue
        if report.failed:
            resultados[report.nodeid] = "failed"
        elif report.skipped:
            resultados.setdefault(report.nodeid, "skipped")
            if isinstance(report.longrepr, tuple):
                _motivos[marca].add(str(report.longrepr[2]).removeprefix("Skipped: "))
        elif report.when == "call":
            resultados.setdefault(report.nodeid, "passed")


def resumen() -> list[str]:
    """One line for each group that ran: `stripe-mock suite: 14 passed, 0 failed, 0 skipped (…)`."""
    lineas = []
    for marca, (titulo, herramienta) in _GRUPOS.items():
        if not (resultados := list(_resultados[marca].values())):
            continue
        cuentas = ", ".join(f"{resultados.count(r)} {r}" for r in ("passed", "failed", "skipped"))
        linea = f"{titulo}: {cuentas} ({herramienta} {HERRAMIENTAS[herramienta].version})"
        lineas.append(linea + "".join(f"; {m}" for m in sorted(_motivos[marca])))
    return lineas
