"""The migrations form one numbered chain: every file of migrations/versions is `NNNN_<slug>.py`, its
revision is that 4-digit number and its down_revision the number before it (None for 0001), with
no gap, so Alembic sees one head, the last file. Alembic's `revision` makes random hex ids unless
given `--rev-id` (docs/deploy/migrations.md, the checklist). Read from the source, as the other
migration rules are (test_reglas_de_migracion.py), and the head asked of Alembic itself."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from pagos_worker.adapters.postgres.database import DEFAULT_MIGRATIONS_DIR

MIGRACIONES = DEFAULT_MIGRATIONS_DIR  # what `pagos-worker migrate` applies
_NOMBRE = re.compile(r"(\d{4})_[a-z0-9_]+\.py")
_FALTA = "(missing)"


def _asignado(fuente: str, nombre: str) -> object:
    """The constant a module assigns to `nombre` at its top level (`x: T = v` or `x = v`)."""
    for nodo in ast.parse(fuente).body:
        if isinstance(nodo, ast.AnnAssign) and nodo.value is not None:
            destinos, valor = [nodo.target], nodo.value
        elif isinstance(nodo, ast.Assign):
            destinos, valor = nodo.targets, nodo.value
        else:
            continue
        if any(isinstance(d, ast.Name) and d.id == nombre for d in destinos):
            return ast.literal_eval(valor)
    return _FALTA


def problemas(versiones: Path) -> list[str]:
    """What breaks the chain in a versions directory."""
    archivos = sorted(versiones.glob("*.py"))
    malos = [f"{p.name}: not NNNN_<slug>.py" for p in archivos if not _NOMBRE.fullmatch(p.name)]
    anterior: str | None = None
    for n, archivo in enumerate(archivos, start=1):
        esperado = f"{n:04d}"
        fuente = archivo.read_text()
        if not archivo.name.startswith(f"{esperado}_"):
            malos.append(f"{archivo.name}: number {esperado} expected here (a gap, or a number repeated)")
        if (revision := _asignado(fuente, "revision")) != esperado:
            malos.append(f"{archivo.name}: revision {revision!r}, not {esperado!r}")
        if (down := _asignado(fuente, "down_revision")) != anterior:
            malos.append(f"{archivo.name}: down_revision {down!r}, not {anterior!r}")
        anterior = esperado
    return malos


def cabezas(migraciones: Path) -> list[str]:
    config = Config()  # as `migrate` builds it (adapters/postgres/database.py)
    config.set_main_option("script_location", str(migraciones))
    return list(ScriptDirectory.from_config(config).get_heads())


def _copia(tmp_path: Path) -> Path:
    copia = tmp_path / "migrations"
    shutil.copytree(MIGRACIONES, copia, ignore=shutil.ignore_patterns("__pycache__"))
    return copia


def _rota(tmp_path: Path, rota: str) -> Path:
    """A copy of migrations/ with one file changed as ROTAS says."""
    archivo, antes, despues = ROTAS[rota]
    copia = _copia(tmp_path)
    ruta = copia / "versions" / archivo
    assert ruta.read_text().count(antes) == 1
    ruta.write_text(ruta.read_text().replace(antes, despues))
    return copia


def test_las_migraciones_son_una_cadena_numerada():
    versiones = sorted((MIGRACIONES / "versions").glob("*.py"))
    assert len(versiones) >= 12  # 0001..0012 at least: the glob did find them
    assert problemas(MIGRACIONES / "versions") == []
    assert cabezas(MIGRACIONES) == [versiones[-1].name[:4]]


ROTAS = {
    "hex": ("0012_conciliaciones.py", 'revision: str = "0012"', 'revision: str = "3f9a1c2b7d4e"'),
    "dos cabezas": ("0012_conciliaciones.py", '= "0011"', '= "0010"'),
    "un ciclo": ("0001_pagos_y_outbox.py", "down_revision: str | None = None", 'down_revision: str | None = "0012"'),
    "sin revision": ("0005_comandos_fallidos.py", 'revision: str = "0005"\n', ""),
}


@pytest.mark.parametrize(
    ("rota", "esperado"),
    [
        ("hex", "0012_conciliaciones.py: revision '3f9a1c2b7d4e', not '0012'"),
        ("dos cabezas", "0012_conciliaciones.py: down_revision '0010', not '0011'"),
        ("un ciclo", "0001_pagos_y_outbox.py: down_revision '0012', not None"),
        ("sin revision", "0005_comandos_fallidos.py: revision '(missing)', not '0005'"),
    ],
)
def test_una_revision_mal_puesta_se_ve(tmp_path, rota, esperado):
    assert problemas(_rota(tmp_path, rota) / "versions") == [esperado]


def test_alembic_ve_las_dos_cabezas(tmp_path):
    """The check against Alembic's own reading does fail on a chain that forks."""
    assert sorted(cabezas(_rota(tmp_path, "dos cabezas"))) == ["0011", "0012"]


def test_un_hueco_o_un_nombre_sin_numero_se_ven(tmp_path):
    versiones = _copia(tmp_path) / "versions"
    (versiones / "0008_traceparent.py").rename(versiones / "traceparent.py")
    (versiones / "0012_conciliaciones.py").rename(versiones / "0013_conciliaciones.py")
    malos = problemas(versiones)
    assert "traceparent.py: not NNNN_<slug>.py" in malos
    assert any(m.startswith("0013_conciliaciones.py: number") for m in malos), malos
