"""deploy/postgres/roles.sql on the real PostgreSQL: the migration role migrates and owns the schema;
the runtime role, DML only, runs the service's own paths — the start-up schema check, a payment
through the worker as `bootstrap` wires it (the Stripe adapter and its budget table, against the
simulator), the outbox relay, an operator's `pagos ver`, and `conciliar` with its temporary tables,
COPY and advisory lock — and every change of schema is refused to it. A table a later migration
creates is granted to it by the default privileges. The script also runs connected as the
migration role itself, stops having changed nothing when it fails, and takes an installation with
one role to two as the deployment guide says."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from sqlalchemy import make_url

from pagos_dev.embedded.postgres import _bin
from pagos_worker.adapters.postgres.database import asyncpg_dsn
from pagos_worker.adapters.postgres.tables import metadata
from pagos_worker.config import Settings
from tests import pulsar_helpers
from tests.conftest import create_database, free_port

pytestmark = pytest.mark.integration

ROLES_SQL = Path(__file__).resolve().parents[2] / "deploy" / "postgres" / "roles.sql"
CLAVE = "sk_test_roles_de_la_base"
# The SQLSTATE PostgreSQL answers for a privilege the role lacks ("permission denied", "must be owner").
SIN_PRIVILEGIO = asyncpg.InsufficientPrivilegeError
DDL = [
    "CREATE TABLE intrusa (i integer)",
    "ALTER TABLE pagos ADD COLUMN intrusa integer",
    "CREATE INDEX ix_intruso ON pagos (fecha_creacion)",
    "DROP TABLE outbox",
    "TRUNCATE pagos",
    "ALTER TABLE outbox DISABLE TRIGGER ALL",
    "INSERT INTO alembic_version VALUES ('9999')",
    "UPDATE alembic_version SET version_num = '0001'",
    "CREATE SCHEMA intruso",
    "CREATE FUNCTION intrusa() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
]


def _como(url: str, rol: str) -> str:
    return make_url(url).set(username=rol, password=None).render_as_string(hide_password=False)


def _psql(url: str, **variables: str) -> subprocess.CompletedProcess[str]:
    args = [str(_bin("psql")), "-X", "-q", "-f", str(ROLES_SQL), asyncpg_dsn(url)]
    for nombre, valor in variables.items():
        args[1:1] = ["-v", f"{nombre}={valor}"]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603


async def _cli(url: str, *args: str, **env: str) -> tuple[int, str, str]:
    limpio = {k: v for k, v in os.environ.items() if not k.startswith("PAGOS_")}
    proceso = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pagos_worker", *args,
        env={**limpio, "PAGOS_DATABASE_URL": url, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proceso.communicate(), 90)
    return proceso.returncode or 0, out.decode(), err.decode()


async def _hasta(condicion: Callable[[], Any], que: str, segundos: float = 20) -> None:
    for _ in range(int(segundos * 10)):
        if await condicion():
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"not within {segundos} s: {que}")


@pytest.fixture
async def base(postgres_server) -> AsyncIterator[tuple[str, str, str]]:
    """(the administrator's URL, the migration role's, the runtime role's) of a fresh database
    whose roles were made by roles.sql, run twice (it must be safe to run again)."""
    url = await create_database(postgres_server, migrated=False)
    sufijo = uuid.uuid4().hex[:8]
    migrador, app = f"pagos_migrador_{sufijo}", f"pagos_app_{sufijo}"
    for _ in range(2):
        hecho = _psql(url, base=make_url(url).database or "", migrador=migrador, app=app)
        assert hecho.returncode == 0, hecho.stderr
    yield url, _como(url, migrador), _como(url, app)
    admin = await asyncpg.connect(asyncpg_dsn(postgres_server))
    try:
        await admin.execute(f'DROP DATABASE "{make_url(url).database}" WITH (FORCE)')
        await admin.execute(f'DROP ROLE "{migrador}"; DROP ROLE "{app}"')
    finally:
        await admin.close()


async def test_el_rol_de_la_aplicacion_hace_su_trabajo_y_ningun_cambio_de_esquema(
    base, pulsar_url, topics, sim
):  # fmt: skip
    admin_url, migrador_url, app_url = base
    rc, _, err = await _cli(migrador_url, "migrate")
    assert rc == 0, err
    admin = await asyncpg.connect(asyncpg_dsn(admin_url))
    app = await asyncpg.connect(asyncpg_dsn(app_url))
    try:
        duenos = await admin.fetch("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'")
        assert {r["tableowner"] for r in duenos} == {make_url(migrador_url).username}, duenos
        assert len(duenos) == len(metadata.tables) + 1  # and alembic_version

        settings = Settings(
            database_url=app_url, pulsar_url=pulsar_url, commands_topic=topics.commands,
            events_topic=topics.events, dlq_topic=topics.dlq, stripe_api_base=sim.url, stripe_secret_key=CLAVE,
            stripe_destination_template="acct_{id_afiliado}", db_pool_size=2, http_port=free_port(),
            otel_endpoint=None, outbox_retention_seconds=0, outbox_cleanup_interval_seconds=0.2,
        )  # fmt: skip
        id_pago = await _paga_y_publica(settings, admin)

        # An operator's read, and the reconciliation: temporary tables, COPY, its advisory lock.
        rc, out, err = await _cli(app_url, "pagos", "ver", str(id_pago), "--json")
        assert rc == 0, err
        assert json.loads(out)["estado"] == "EXITOSO"
        await asyncio.sleep(2)  # past the settle margin below
        rc, out, err = await _cli(
            app_url, "conciliar", "--desde", (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "--hasta", (datetime.now(UTC) - timedelta(seconds=1)).isoformat(), "--json",
            PAGOS_STRIPE_API_BASE=sim.url, PAGOS_STRIPE_SECRET_KEY=CLAVE,
            PAGOS_STRIPE_DESTINATION_TEMPLATE="acct_{id_afiliado}", PAGOS_STRIPE_TIMEOUT_SECONDS="1",
            PAGOS_SETTLE_MARGIN_SECONDS="1",
        )  # fmt: skip
        assert rc == 0, out + err
        assert json.loads(out)["conteos"]["coincide"] == 1

        # No change of schema, of any kind; the migrations' bookkeeping read (the schema check).
        assert [sentencia for sentencia in DDL if not await _rechazada(app, sentencia)] == []
        assert await app.fetchval("SELECT max(version_num) FROM alembic_version")

        # A later release's table: granted by the default privileges, its identity sequence too.
        migrador = await asyncpg.connect(asyncpg_dsn(migrador_url))
        try:
            await migrador.execute("CREATE TABLE futura (id bigint GENERATED ALWAYS AS IDENTITY, dato text)")
        finally:
            await migrador.close()
        await app.execute("INSERT INTO futura (dato) VALUES ('x')")
        assert await app.fetchval("SELECT count(*) FROM futura") == 1
    finally:
        await app.close()
        await admin.close()


async def _paga_y_publica(settings: Settings, admin: asyncpg.Connection) -> uuid.UUID:
    """A payment through a worker (Stripe: the simulator, and the account's budget table), then its
    event published by a relay of its own (LISTEN, the claim of the rows, the cleanup's DELETE)."""
    id_pago = uuid.uuid4()
    observador = pulsar_helpers.client(settings.pulsar_url or "")
    try:
        eventos = pulsar_helpers.subscribe(observador, settings.events_topic)
        comando = {"id_pago": str(id_pago), "id_afiliado": "afiliado_1", "monto": "12.34", "moneda": "EUR"}
        observador.create_producer(settings.commands_topic).send(
            json.dumps(comando).encode(), partition_key=str(id_pago)
        )

        async def pagado() -> bool:
            return await admin.fetchval("SELECT estado FROM pagos WHERE id_pago = $1", id_pago) == "EXITOSO"

        async def borrado() -> bool:
            return not await admin.fetchval("SELECT count(*) FROM outbox WHERE id_pago = $1", id_pago)

        async with _sirviendo(settings, "worker"):
            await _hasta(pagado, "the payment paid by the runtime role")
        assert await admin.fetchval("SELECT count(*) FROM presupuesto_pasarela") >= 1
        async with _sirviendo(settings, "relay"):
            [evento] = await asyncio.to_thread(pulsar_helpers.receive, eventos, 1, 20)
            assert json.loads(evento.data())["data"]["id_pago"] == str(id_pago)
            await _hasta(borrado, "the published row deleted by the cleanup")
    finally:
        observador.close()
    return id_pago


async def _rechazada(conn: asyncpg.Connection, sentencia: str) -> bool:
    try:
        await conn.execute(sentencia)
    except SIN_PRIVILEGIO:
        return True
    return False


@contextlib.asynccontextmanager
async def _sirviendo(settings: Settings, rol: str) -> AsyncIterator[None]:
    """`pagos-worker run --roles <rol> --no-migrate`, a process of its own with these settings, from
    ready (its /readyz) to stopped by SIGTERM, as a pod runs it."""
    valores = settings.model_dump(exclude_none=True, exclude={"otel_endpoint"})
    entorno = {f"PAGOS_{k.upper()}": str(v.get_secret_value() if hasattr(v, "get_secret_value") else v)
               for k, v in valores.items() if k in settings.model_fields_set}  # fmt: skip
    limpio = {k: v for k, v in os.environ.items() if not k.startswith(("PAGOS_", "OTEL_"))}
    proceso = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pagos_worker", "run", "--roles", rol, "--no-migrate", env={**limpio, **entorno},
    )  # fmt: skip
    try:
        listo = f"http://127.0.0.1:{settings.http_port}/readyz"
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                assert proceso.returncode is None, f"{rol} exited with {proceso.returncode}"
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(listo) as respuesta:
                        if respuesta.status == 200:
                            break
                await asyncio.sleep(0.1)
            else:
                pytest.fail(f"{rol} not ready within 30 s")
        yield
    finally:
        if proceso.returncode is None:
            proceso.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proceso.wait(), 60) == 0


async def _rol_dueno_de_una_base(postgres_server: str, nombre: str) -> str:
    """A fresh database owned by a new role `nombre` (LOGIN, CREATEROLE: a managed service's admin
    is such a role), and that role's URL to it."""
    url = await create_database(postgres_server, migrated=False)
    admin = await asyncpg.connect(asyncpg_dsn(postgres_server))
    try:
        await admin.execute(f'CREATE ROLE "{nombre}" LOGIN CREATEROLE')
        await admin.execute(f'ALTER DATABASE "{make_url(url).database}" OWNER TO "{nombre}"')
    finally:
        await admin.close()
    return _como(url, nombre)


async def _borrar(postgres_server: str, url: str, *roles: str) -> None:
    admin = await asyncpg.connect(asyncpg_dsn(postgres_server))
    try:
        await admin.execute(f'DROP DATABASE "{make_url(url).database}" WITH (FORCE)')
        for rol in roles:
            await admin.execute(f'DROP ROLE IF EXISTS "{rol}"')
    finally:
        await admin.close()


async def test_el_administrador_puede_ser_el_rol_de_migracion(postgres_server):
    """An installation whose one role (the database's owner) stays the migration role, running the
    script connected as that role: `GRANT role TO CURRENT_USER` would be a grant to itself."""
    sufijo = uuid.uuid4().hex[:8]
    dueno, app = f"dueno_{sufijo}", f"pagos_app_{sufijo}"
    url = await _rol_dueno_de_una_base(postgres_server, dueno)
    try:
        for _ in range(2):
            hecho = _psql(url, base=make_url(url).database or "", migrador=dueno, app=app)
            assert hecho.returncode == 0, hecho.stderr
        rc, _, err = await _cli(url, "migrate")
        assert rc == 0, err
        conn = await asyncpg.connect(asyncpg_dsn(_como(url, app)))
        try:
            assert await conn.fetchval("SELECT count(*) FROM pagos") == 0
        finally:
            await conn.close()
    finally:
        await _borrar(postgres_server, url, app, dueno)


async def test_un_fallo_del_script_no_deja_nada_a_medias(postgres_server):
    """Stopped by an error (here a variable not given), the script has changed nothing: every
    database connection PUBLIC had is still there, no role was made."""
    url = await create_database(postgres_server, migrated=False)
    migrador = f"pagos_migrador_{uuid.uuid4().hex[:8]}"
    try:
        hecho = _psql(url, base=make_url(url).database or "", migrador=migrador)  # no `app`
        assert hecho.returncode != 0
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            assert not await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", migrador)
            assert await conn.fetchval("SELECT has_database_privilege('public', current_database(), 'CONNECT')")
        finally:
            await conn.close()
    finally:
        await _borrar(postgres_server, url, migrador)


async def test_de_un_rol_a_dos_como_dice_la_guia(postgres_server):
    """docs/deploy/kubernetes.md, an installation that ran with one role, handing the schema to a
    new owner: the script, REASSIGN OWNED BY the old role TO the new one, the script again."""
    sufijo = uuid.uuid4().hex[:8]
    viejo, migrador, app = f"viejo_{sufijo}", f"pagos_migrador_{sufijo}", f"pagos_app_{sufijo}"
    url = await _rol_dueno_de_una_base(postgres_server, viejo)
    admin_url = _como(url, make_url(postgres_server).username or "postgres")
    try:
        rc, _, err = await _cli(url, "migrate")  # the installation so far: one role owns everything
        assert rc == 0, err
        variables = {"base": make_url(url).database or "", "migrador": migrador, "app": app}
        hecho = _psql(admin_url, **variables)
        assert hecho.returncode == 0, hecho.stderr
        admin = await asyncpg.connect(asyncpg_dsn(admin_url))
        try:
            await admin.execute(f'REASSIGN OWNED BY "{viejo}" TO "{migrador}"')
        finally:
            await admin.close()
        hecho = _psql(admin_url, **variables)
        assert hecho.returncode == 0, hecho.stderr

        rc, _, err = await _cli(_como(url, migrador), "migrate")
        assert rc == 0, err
        conn = await asyncpg.connect(asyncpg_dsn(_como(url, app)))
        try:
            duenos = await conn.fetch("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
            assert [r["tableowner"] for r in duenos] == [migrador]
            assert await conn.fetchval("SELECT count(*) FROM pagos") == 0
            assert await conn.fetchval("SELECT max(version_num) FROM alembic_version")
            assert await _rechazada(conn, "ALTER TABLE pagos ADD COLUMN intrusa integer")
        finally:
            await conn.close()
    finally:
        await _borrar(postgres_server, url, app, migrador, viejo)
