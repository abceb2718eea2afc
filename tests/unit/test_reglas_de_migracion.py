"""The rules for a migration a release adds (docs/deploy/migrations.md), read from its source: an index
on a table that already exists is built concurrently (`indice_concurrente`), in a migration that
does nothing else (it runs outside the migration's transaction: anything beside it would be
committed, or left undone, apart from the revision), and no migration sets its own lock timeout
(env.py's, PAGOS_MIGRATION_LOCK_TIMEOUT_SECONDS, holds for all). Migrations up to 0012 ran in
production before these rules and are left as they ran (the guide says why)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

VERSIONES = Path(__file__).resolve().parents[2] / "migrations" / "versions"
ANTERIORES = 12  # 0001..0012: applied in production as they are
_INDICE_SQL = re.compile(r"\bCREATE\s+(UNIQUE\s+)?INDEX\s+(?!CONCURRENTLY\b)", re.IGNORECASE)


def _llamadas(arbol: ast.AST, nombre: str) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(arbol)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute | ast.Name)
        and (n.func.attr if isinstance(n.func, ast.Attribute) else n.func.id) == nombre
    ]  # fmt: skip


def _texto(nodo: ast.AST | None) -> str | None:
    return nodo.value if isinstance(nodo, ast.Constant) and isinstance(nodo.value, str) else None


def infracciones(fuente: str) -> list[str]:
    """What breaks the rules in a migration's source."""
    arbol = ast.parse(fuente)
    nuevas = {_texto(c.args[0]) for c in _llamadas(arbol, "create_table") if c.args}
    malas = []
    for llamada in _llamadas(arbol, "create_index"):
        tabla = _texto(llamada.args[1]) if len(llamada.args) > 1 else None
        concurrente = any(
            k.arg == "postgresql_concurrently" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in llamada.keywords
        )
        if tabla not in nuevas and not concurrente:
            malas.append(f"create_index on {tabla}: use indice_concurrente (the table exists and is written)")
    for llamada in _llamadas(arbol, "execute"):
        sql = _texto(llamada.args[0]) if llamada.args else None
        if sql and _INDICE_SQL.search(sql):
            malas.append(f"{sql[:40]}…: use indice_concurrente")
        if sql and "lock_timeout" in sql:
            malas.append("sets its own lock_timeout: env.py's holds for every migration")
    return malas + _acompanado(arbol)


def _acompanado(arbol: ast.Module) -> list[str]:
    """A migration with `indice_concurrente` whose upgrade() does anything else: what ran before
    the build would be committed by it, what runs after in a transaction of its own, and a run that
    gives up between the two leaves the migration half applied at the old revision."""
    upgrade = next((n for n in arbol.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"), None)
    cuerpo = upgrade.body if upgrade is not None else arbol.body
    if not _llamadas(ast.Module(body=cuerpo, type_ignores=[]), "indice_concurrente"):
        return []
    otras = [
        s
        for s in cuerpo
        if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))  # its docstring
        and not (isinstance(s, ast.Expr) and _llamadas(s, "indice_concurrente") == [s.value])
    ]
    return ["indice_concurrente with other operations: a concurrent index is its migration's only one"] if otras else []


def _nuevas() -> list[Path]:
    return sorted(p for p in VERSIONES.glob("*.py") if int(p.name.split("_")[0]) > ANTERIORES)


def test_cada_migracion_nueva_cumple_las_reglas():
    assert {p.name: m for p in _nuevas() if (m := infracciones(p.read_text()))} == {}


def test_las_anteriores_son_las_que_corrieron():
    assert len(list(VERSIONES.glob("*.py"))) - len(_nuevas()) == ANTERIORES


@pytest.mark.parametrize(
    ("fuente", "esperadas"),
    [
        ('op.create_index("ix", "pagos", ["a"])', 1),
        ('op.create_index("ix", "pagos", ["a"], postgresql_concurrently=True)', 0),
        ('indice_concurrente("ix", "pagos", ["a"])', 0),
        ('op.create_table("nueva", sa.Column("a", sa.Integer()))\nop.create_index("ix", "nueva", ["a"])', 0),
        ('op.execute("CREATE UNIQUE INDEX ix ON outbox (a)")', 1),
        ('op.execute("create index ix on pagos (a)")', 1),
        ('op.execute("CREATE INDEX CONCURRENTLY ix ON pagos (a)")', 0),
        ("op.execute(\"SET LOCAL lock_timeout = '10s'\")", 1),
        ('indice_concurrente("ix", "pagos", ["a"])\nindice_concurrente("iy", "pagos", ["b"])', 0),
        ('op.add_column("pagos", sa.Column("a", sa.Integer()))\nindice_concurrente("ix", "pagos", ["a"])', 1),
        ('indice_concurrente("ix", "pagos", ["a"])\nop.execute("ALTER TABLE pagos ADD COLUMN b integer")', 1),
        ('def upgrade() -> None:\n    """Why."""\n    indice_concurrente("ix", "pagos", ["a"])', 0),
        ('def upgrade() -> None:\n    op.drop_column("pagos", "b")\n    indice_concurrente("ix", "pagos", ["a"])', 1),
        ('def upgrade() -> None:\n    if True:\n        indice_concurrente("ix", "pagos", ["a"])', 1),
    ],
)
def test_las_reglas_ven_lo_que_deben(fuente, esperadas):
    assert len(infracciones(fuente)) == esperadas
