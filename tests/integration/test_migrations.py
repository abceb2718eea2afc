"""The migrations create exactly what `tables.py` describes, and can be undone and redone."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from pagos_worker.adapters.postgres.database import DEFAULT_MIGRATIONS_DIR, create_engine, migrate
from pagos_worker.adapters.postgres.tables import metadata
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
