"""What a migration script uses on a table the running release writes (docs/deploy/migrations.md).

Imported by migrations/versions/ only, inside `pagos-worker migrate` (Alembic's `op` is bound then).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pagos_worker.adapters.postgres.database import MigracionInvalidaError


def indice_concurrente(
    nombre: str, tabla: str, columnas: Sequence[str], *, unique: bool = False, where: str | None = None
) -> None:
    """CREATE INDEX CONCURRENTLY: the table stays writable while the index is built. It runs
    outside the migration's transaction (Alembic's autocommit block), without the migration's lock
    and statement timeouts: it takes no lock that blocks reads or writes, and it waits for every
    transaction open on the table to end.

    It is the only operation of its migration (several of them may share one): the autocommit
    block would commit what the migration did before it, at the old revision, and a run that gave
    up after it would leave that half applied, failing the next run ("already exists"). So it
    refuses, changing nothing, when the migration's transaction has written anything;
    tests/unit/test_reglas_de_migracion.py refuses an operation after it.

    Run again after an interrupted build (a killed Job, a cancelled statement) it finishes the job:
    PostgreSQL leaves such an index INVALID (never used, yet maintained by every write), so it is
    dropped and built again; a valid one is kept. A unique index that meets duplicates fails the
    migration (and leaves such an index, dropped by the next run before it tries again).

    Not inside a transaction the caller holds open (Alembic refuses an autocommit block there)."""
    if op.get_bind().exec_driver_sql("SELECT pg_current_xact_id_if_assigned() IS NOT NULL").scalar():
        raise MigracionInvalidaError(
            f"indice_concurrente({nombre!r}) must be the only operation of its migration: the migration "
            "changed the schema before it, which the concurrent build would commit apart from its "
            "revision. Nothing of it was applied; move the other operations to a migration of their own "
            "(docs/deploy/migrations.md)"
        )
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        previos = {n: bind.exec_driver_sql(f"SHOW {n}").scalar() for n in ("lock_timeout", "statement_timeout")}
        for ajuste in previos:
            bind.exec_driver_sql(f"SET {ajuste} = 0")
        try:
            invalido = bind.execute(
                sa.text("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:nombre)"),
                {"nombre": nombre},
            ).scalar()
            if invalido:
                op.drop_index(nombre, table_name=tabla, postgresql_concurrently=True)
            op.create_index(
                nombre,
                tabla,
                list(columnas),
                unique=unique,
                postgresql_where=sa.text(where) if where else None,
                postgresql_concurrently=True,
                if_not_exists=True,
            )
        finally:
            for nombre_ajuste, valor in previos.items():
                bind.execute(sa.text("SELECT set_config(:n, :v, false)"), {"n": nombre_ajuste, "v": str(valor)})
