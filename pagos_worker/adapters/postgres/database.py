"""Engine creation and migrations (Alembic, under an advisory lock so replicas may all try)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = structlog.get_logger(__name__)

_MIGRATION_LOCK = 0x7061_676F  # "pago"
DEFAULT_MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "migrations"


def create_engine(url: str, *, pool_size: int = 10, application_name: str = "pagos-worker") -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": application_name}},
    )


async def prewarm(engine: AsyncEngine, connections: int, *, timeout: float = 5.0) -> None:
    """Open `connections` of the pool's connections together and give them back to it. Best effort,
    for at most `timeout`: with the database away they are opened later, on demand."""
    all_open = asyncio.Event()
    opened: set[asyncio.Task[None] | None] = set()

    async def open_one() -> None:
        async with engine.connect():  # held until all are open, or the pool would hand one out twice
            opened.add(asyncio.current_task())
            if len(opened) == connections:
                all_open.set()
            await all_open.wait()

    tasks = [asyncio.create_task(open_one()) for _ in range(connections)]
    try:
        await asyncio.wait(tasks, timeout=timeout)
    finally:  # also when this is cancelled: the open ones go back to the pool, the others stop trying
        all_open.set()
        for task in tasks:
            if task not in opened:
                task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    if failures := [r for r in results if isinstance(r, BaseException)]:
        log.warning("postgres.pool_sin_precalentar", abiertas=len(opened), de=connections, error=repr(failures[0]))


def asyncpg_dsn(url: str) -> str:
    """The same database as a plain libpq-style URL, for asyncpg's own connections (LISTEN)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def migrate(engine: AsyncEngine, migrations_dir: Path | None = None) -> None:
    script_location = str(migrations_dir or DEFAULT_MIGRATIONS_DIR)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        await conn.run_sync(_upgrade, script_location)
        await conn.commit()


def _upgrade(connection: Connection, script_location: str) -> None:
    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
