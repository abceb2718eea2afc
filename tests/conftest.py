"""Shared fixtures. Integration and e2e tests get a real PostgreSQL and a real Pulsar-protocol
broker: the embedded ones, started here once per session, or those named by PAGOS_TEST_DATABASE_URL
(a server URL; a fresh database is created in it) and PAGOS_TEST_PULSAR_URL.

The embedded broker is pulsar-lite unless `--broker pulsar` (or PAGOS_TEST_BROKER=pulsar) asks for
Apache Pulsar standalone (`make test-pulsar`: Java 17 and Maven needed). Every test that talks to
the broker is marked `broker`, so that `-m broker` selects the conformance run."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_dev.embedded.postgres import EmbeddedPostgres
from pagos_dev.embedded.process import free_port
from pagos_dev.embedded.pulsar import EmbeddedPulsar
from pagos_dev.embedded.pulsar_apache import EmbeddedApachePulsar, missing_tools
from pagos_worker.adapters.postgres.database import asyncpg_dsn, create_engine, migrate
from pagos_worker.adapters.postgres.outbox import PostgresOutboxStore
from pagos_worker.adapters.postgres.repository import PostgresPagoRepository
from tests import herramientas_go
from tests.herramientas_go import (  # noqa: F401 - the Go tools' fixture and the hooks that count their tests
    herramienta_go,
    pytest_runtest_logreport,
)

# Session-wide services live in the session's event loop (the main thread: children started there
# keep their parent-death signal).
session_fixture = pytest_asyncio.fixture(scope="session", loop_scope="session")


@session_fixture
async def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """URL of a PostgreSQL server (its `postgres` database)."""
    if url := os.environ.get("PAGOS_TEST_DATABASE_URL"):
        yield url
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres"), port=free_port())
    await server.start()
    try:
        yield server.url("postgres")
    finally:
        await server.stop()


async def create_database(server_url: str, *, migrated: bool = True) -> str:
    """A new database on the server (migrated to head unless told otherwise); returns its URL."""
    name = f"pagos_test_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    if not migrated:
        return url
    engine = create_engine(url, pool_size=1, limits=None)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    return url


async def envejecer_pago(engine: AsyncEngine, id_pago: uuid.UUID, delta: timedelta) -> None:
    """As if the database's clock had moved `delta` on for this payment: its stored times moved back
    (its age, its lease, its key, its calls' end). The store's clock is the only one that counts."""
    async with engine.begin() as conn:
        await conn.execute(
            text("""
                WITH t AS (SELECT CAST(:d AS interval) AS d)
                UPDATE pagos SET fecha_creacion = fecha_creacion - t.d, lease_expira = lease_expira - t.d,
                    clave_desde = clave_desde - t.d, fin_llamadas = fin_llamadas - t.d,
                    fin_llamadas_previas = fin_llamadas_previas - t.d
                FROM t WHERE id_pago = :i
            """),
            {"d": delta, "i": id_pago},
        )


async def estadistica_tras_cerrar(url: str, consulta: str) -> object:
    """`consulta` on PostgreSQL's statistics once every other connection to the database has gone
    (backends report theirs as they exit; the engine was just disposed), or after 5 s."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        valor = None
        for _ in range(50):
            valor = await conn.fetchval(consulta)
            otros = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            if otros == 1:
                break
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    assert valor is not None
    return valor


@session_fixture
async def database_url(postgres_server: str) -> str:
    """A fresh database for this test session, migrated to head."""
    return await create_database(postgres_server)


BROKERS = ("pulsar-lite", "pulsar")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--broker", choices=BROKERS, default=os.environ.get("PAGOS_TEST_BROKER") or "pulsar-lite",
        help="the embedded broker of the broker tests: pulsar-lite (default) or Apache Pulsar standalone "
        "(PAGOS_TEST_BROKER; ignored when PAGOS_TEST_PULSAR_URL names one)",
    )  # fmt: skip


def broker_pedido(config: pytest.Config) -> str:
    """The embedded broker this session asked for: "pulsar-lite" or "pulsar" (Apache Pulsar)."""
    return str(config.getoption("--broker"))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Whatever talks to the broker through `pulsar_url` is part of the broker conformance run; what
    renders with the pinned kustomize is counted as the kustomize rendering."""
    herramientas_go.marcar(items)
    for item in items:
        if "pulsar_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.broker)


@dataclass(frozen=True)
class BrokerDePrueba:
    """The session's broker: its URL and, for Apache Pulsar, its admin REST API and the means to
    restart it (None where the broker is pulsar-lite or given by URL)."""

    url: str
    apache: EmbeddedApachePulsar | None = None

    @property
    def admin_url(self) -> str | None:
        return self.apache.admin_url if self.apache is not None else None


@session_fixture
async def broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[BrokerDePrueba]:
    if url := os.environ.get("PAGOS_TEST_PULSAR_URL"):
        yield BrokerDePrueba(url)
        return
    if broker_pedido(request.config) == "pulsar":
        if faltan := missing_tools():
            pytest.fail(f"--broker pulsar needs {' and '.join(faltan)} on PATH (Java 17 and Maven)")
        apache = EmbeddedApachePulsar(tmp_path_factory.mktemp("pulsar-apache"), quick=True)
        await apache.start()
        try:
            yield BrokerDePrueba(apache.url, apache)
        finally:
            await apache.close()
        return
    lite = EmbeddedPulsar(tmp_path_factory.mktemp("pulsar"), port=free_port())
    await lite.start()
    try:
        yield BrokerDePrueba(lite.url)
    finally:
        await lite.stop()


@session_fixture
async def pulsar_url(broker: BrokerDePrueba) -> str:
    return broker.url


@pytest.fixture(scope="session")
def broker_embebido(request: pytest.FixtureRequest) -> str:
    """For tests that start brokers of their own (the chaos suite): "pulsar-lite" or "pulsar"."""
    return broker_pedido(request.config)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the session's database, emptied before the test."""
    engine = create_engine(database_url, pool_size=5)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            "TRUNCATE outbox, resoluciones, reenvios, reversos, pagos, comandos_fallidos, diferencias, conciliaciones"
        )
    yield engine
    await engine.dispose()


@pytest.fixture
async def postgres(engine: AsyncEngine, database_url: str) -> AsyncIterator[PostgresAdapters]:
    """Builds the PostgreSQL adapters on the test's engine, and closes them (they keep connections
    checked out) before the engine goes."""
    adapters = PostgresAdapters(engine, database_url)
    yield adapters
    for closable in adapters.creados:
        await closable.close()


class PostgresAdapters:
    def __init__(self, engine: AsyncEngine, database_url: str) -> None:
        self.engine = engine
        self.database_url = database_url
        self.creados: list[PostgresPagoRepository | PostgresOutboxStore] = []

    def repo(self, **kwargs: Any) -> PostgresPagoRepository:
        repo = PostgresPagoRepository(self.engine, **kwargs)
        self.creados.append(repo)
        return repo

    def outbox(self) -> PostgresOutboxStore:
        store = PostgresOutboxStore(self.engine, self.database_url)
        self.creados.append(store)
        return store


@dataclass(frozen=True)
class Topics:
    commands: str
    events: str
    dlq: str


@pytest.fixture
def topics() -> Topics:
    """Topics of this test only: tests never see each other's messages."""
    prefix = f"persistent://public/default/t{uuid.uuid4().hex[:12]}"
    return Topics(f"{prefix}-comandos", f"{prefix}-events", f"{prefix}-comandos-DLQ")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


_BASETEMP_PROPIA = pytest.StashKey[Path]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """As root, the embedded PostgreSQL runs as a user of its own, which must be able to traverse
    every folder above its data (`ensure_prefix_access`). Under pytest's /tmp/pytest-of-root that
    grant does not last: every other pytest session started on the machine as root (another clone,
    another engineer's run) takes it back (pytest makes that folder 0700), and a server starting
    right then fails with "Permission denied". So a root session without `--basetemp` keeps its
    temporary files in a folder of its own, removed at the end when every test passed."""
    if config.option.basetemp is None and hasattr(os, "geteuid") and os.geteuid() == 0:
        config.option.basetemp = tempfile.mkdtemp(prefix="pagos-pytest-")
        config.stash[_BASETEMP_PROPIA] = Path(config.option.basetemp)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    propia = session.config.stash.get(_BASETEMP_PROPIA, None)
    if propia is not None and exitstatus == pytest.ExitCode.OK:
        shutil.rmtree(propia, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Says how many of the simulator's answers were checked against Stripe's own spec (none when
    `../shared/` is absent beside the clone: the summary says that too), and counts the kustomize
    rendering and the stripe-mock suite (each skipped, saying why, where Go is absent)."""
    spec = sys.modules.get("tests.stripe_spec")
    if spec is not None and (linea := spec.resumen()) is not None:
        terminalreporter.write_line(linea)
    for linea in herramientas_go.resumen():
        terminalreporter.write_line(linea)
