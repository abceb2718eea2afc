"""The migrations create exactly what `tables.py` describes, and can be undone and redone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from pagos_worker.adapters.postgres.database import DEFAULT_MIGRATIONS_DIR, create_engine, migrate
from pagos_worker.adapters.postgres.tables import ESQUEMA, metadata
from tests.conftest import create_database

pytestmark = pytest.mark.integration


def _diff(conn: Connection) -> list[object]:
    return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)


async def test_migraciones_coinciden_con_las_tablas(engine):
    async with engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_bajar_y_volver_a_subir(postgres_server):
    url = await create_database(postgres_server)
    engine = create_engine(url, pool_size=1)

    def downgrade(conn: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(DEFAULT_MIGRATIONS_DIR))
        config.attributes["connection"] = conn
        command.downgrade(config, "base")

    try:
        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
            tablas = await conn.scalar(text("SELECT count(*) FROM pg_tables WHERE tablename IN ('pagos', 'outbox')"))
            assert tablas == 0
        await migrate(engine)
        await migrate(engine)  # idempotent
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


def _a(revision: str, conn: Connection, *, bajar: bool) -> None:
    config = Config()
    config.set_main_option("script_location", str(DEFAULT_MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    (command.downgrade if bajar else command.upgrade)(config, revision)


async def test_0011_se_deshace_y_se_rehace_y_no_se_deshace_con_reversos(postgres_server):
    """Down to 0010 gives 0010's very constraints back, up again works; and with a reversal
    recorded it refuses to go down (it would lose what money did), changing nothing."""
    url = await create_database(postgres_server)
    engine = create_engine(url, pool_size=1)
    restricciones = text("SELECT conname FROM pg_constraint WHERE conrelid = 'pagos'::regclass ORDER BY conname")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: _a("0010", c, bajar=True))
            en_0010 = list(await conn.scalars(restricciones))
            await conn.run_sync(lambda c: _a("0011", c, bajar=False))
            await conn.run_sync(lambda c: _a("0010", c, bajar=True))
            assert list(await conn.scalars(restricciones)) == en_0010
        await migrate(engine)
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO pagos (id_pago, estado, fecha_creacion, anulado_por) VALUES (gen_random_uuid(), "
                     "'PENDIENTE', now(), gen_random_uuid())")
            )  # fmt: skip
        with pytest.raises(RuntimeError, match="cannot be undone"):
            async with engine.begin() as conn:
                await conn.run_sync(lambda c: _a("0010", c, bajar=True))
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_el_cli_de_alembic_lee_la_url_como_el_servicio(postgres_server):
    """`alembic upgrade head` (alembic.ini) opens its connection as the service does: libpq's TLS
    parameters in the URL's query are read, never handed to asyncpg as unknown arguments."""
    url = await create_database(postgres_server, migrated=False)
    raiz = Path(__file__).resolve().parents[2]
    limpio = {k: v for k, v in os.environ.items() if not k.startswith("PAGOS_")}
    hecho = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=raiz, env={**limpio, "PAGOS_DATABASE_URL": f"{url}?sslmode=disable"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert hecho.returncode == 0, hecho.stderr
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT version_num FROM alembic_version")) == ESQUEMA
    finally:
        await engine.dispose()
