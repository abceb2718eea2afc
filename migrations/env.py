"""Alembic environment. The service passes an open connection (`pagos-worker migrate`); the plain
`alembic` CLI connects with PAGOS_DATABASE_URL.

Each migration runs in a transaction of its own (`transaction_per_migration`), so that one may
build an index concurrently between two transactions (`migraciones.indice_concurrente`), and so
that the locks one takes are held for that migration alone. Every wait for a lock and every
statement has an end (`MigrationLimits`: PAGOS_MIGRATION_LOCK_TIMEOUT_SECONDS,
PAGOS_MIGRATION_STATEMENT_TIMEOUT_SECONDS): a migration never stalls the running release for long.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from pagos_worker.adapters.postgres.database import MIGRATION_APPLICATION_NAME, MigrationLimits, create_engine
from pagos_worker.adapters.postgres.tables import metadata
from pagos_worker.bootstrap import migration_limits
from pagos_worker.config import Settings

config = context.config


def run_with(connection: Connection) -> None:
    limits: MigrationLimits = config.attributes.get("limits") or migration_limits(Settings())
    # A caller's open transaction (a test stepping through revisions) keeps the limits to itself;
    # otherwise they hold for the session, across the migrations' own transactions.
    externa = connection.in_transaction()
    for sentencia in limits.sentencias(local=externa):
        connection.exec_driver_sql(sentencia)
    if not externa:
        connection.commit()  # Alembic opens and commits a transaction per migration from here
    context.configure(
        connection=connection, target_metadata=metadata, compare_type=True, transaction_per_migration=True
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_url(url: str) -> None:
    # The service's engine, without its limits (the migrations' own are set above): the URL read as
    # every connection of the service reads it (libpq's TLS parameters: `sslmode`, `sslrootcert`).
    engine = create_engine(url, pool_size=1, application_name=MIGRATION_APPLICATION_NAME, limits=None)
    async with engine.connect() as connection:
        await connection.run_sync(run_with)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=Settings().database_url or "postgresql://", target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    run_with(connection)
else:
    settings = Settings()
    if settings.database_url is None:
        raise SystemExit("alembic: missing settings: PAGOS_DATABASE_URL")
    asyncio.run(run_from_url(settings.database_url))
