"""A migration never stalls the running release: behind a transaction that holds a lock on what it
changes, `pagos-worker migrate` gives up within its lock timeout with a clear message, changing
nothing, while payments keep being claimed; an index built with `indice_concurrente` keeps `pagos`
writable while it waits, and finishes a build an earlier run left half done."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from pagos_worker.adapters.postgres.database import DEFAULT_MIGRATIONS_DIR, asyncpg_dsn, create_engine
from pagos_worker.adapters.postgres.repository import PostgresPagoRepository
from pagos_worker.domain import Dinero, Lease, Moneda, Pago
from tests.conftest import create_database

pytestmark = pytest.mark.integration


def _cabeza() -> str:
    config = Config()
    config.set_main_option("script_location", str(DEFAULT_MIGRATIONS_DIR))
    return str(ScriptDirectory.from_config(config).get_current_head())


CABEZA = _cabeza()  # the real migrations' head, which the extra one follows
MIGRACION = '''"""a migration of a later release, for this test"""

from pagos_worker.adapters.postgres.migraciones import indice_concurrente
from alembic import op

revision = "9001"
down_revision = "{cabeza}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    {cuerpo}


def downgrade() -> None:
    pass
'''


def migraciones_con(tmp_path: Path, cuerpo: str) -> Path:
    """The real migrations plus one of a later release whose upgrade is `cuerpo`."""
    destino = tmp_path / "migrations"
    shutil.copytree(DEFAULT_MIGRATIONS_DIR, destino, ignore=shutil.ignore_patterns("__pycache__"))
    (destino / "versions" / "9001_prueba.py").write_text(MIGRACION.format(cabeza=CABEZA, cuerpo=cuerpo))
    return destino


async def migrar(url: str, migraciones: Path, **env: str) -> asyncio.subprocess.Process:
    limpio = {k: v for k, v in os.environ.items() if not k.startswith("PAGOS_")}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pagos_worker", "migrate",
        env={**limpio, "PAGOS_DATABASE_URL": url, "PAGOS_MIGRATIONS_DIR": str(migraciones), **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


async def esperar_bloqueada(conn: asyncpg.Connection, consulta: str) -> None:
    """Until a backend runs a statement LIKE `consulta` waiting for a lock (the migration, queued)."""
    for _ in range(200):
        if await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1", consulta
        ):
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"nothing waited for a lock running {consulta!r}")


def pago_nuevo() -> Pago:
    ahora = datetime.now(UTC)
    importe = Dinero(Decimal("10.00"), Moneda.USD)
    pago = Pago.crear(id_pago=uuid.uuid4(), id_afiliado="afiliado_123", importe=importe, ahora=ahora)
    pago.iniciar_procesamiento(Lease("w1", ahora + timedelta(seconds=30)), ahora)
    return pago


async def revision(conn: asyncpg.Connection) -> str:
    return str(await conn.fetchval("SELECT version_num FROM alembic_version"))


async def test_tras_un_bloqueo_la_migracion_se_rinde_y_los_pagos_siguen(postgres_server, tmp_path):
    url = await create_database(postgres_server)
    migraciones = migraciones_con(tmp_path, 'op.execute("ALTER TABLE pagos ADD COLUMN prueba integer")')
    engine = create_engine(url, pool_size=2)
    repo = PostgresPagoRepository(engine)
    bloqueo, mirador = [await asyncpg.connect(asyncpg_dsn(url)) for _ in range(2)]
    try:
        # A long read (a report, an operator's query) holds ACCESS SHARE on pagos, which ALTER TABLE
        # must wait for: without a lock timeout it would wait for ever, and every payment with it.
        transaccion = bloqueo.transaction()
        await transaccion.start()
        await bloqueo.fetchval("SELECT count(*) FROM pagos")
        inicio = time.monotonic()
        proceso = await migrar(url, migraciones, PAGOS_MIGRATION_LOCK_TIMEOUT_SECONDS="1")
        await esperar_bloqueada(mirador, "ALTER TABLE pagos%")
        reclamo = await asyncio.wait_for(repo.reclamar(pago_nuevo()), 10)  # queued behind it, then through
        assert reclamo.reclamado
        _, err = await asyncio.wait_for(proceso.communicate(), 30)
        assert proceso.returncode == 1, err.decode()
        assert time.monotonic() - inicio < 15
        mensaje = err.decode()
        assert "migration gave up" in mensaje
        assert "lock timeout" in mensaje
        assert f"revision {CABEZA}" in mensaje
        assert "ALTER TABLE pagos ADD COLUMN prueba" in mensaje
        assert "Traceback" not in mensaje
        assert await revision(mirador) == CABEZA  # nothing of it applied
        assert not await mirador.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'pagos' AND column_name = 'prueba'"
        )
        await transaccion.commit()

        proceso = await migrar(url, migraciones, PAGOS_MIGRATION_LOCK_TIMEOUT_SECONDS="1")
        _, err = await asyncio.wait_for(proceso.communicate(), 30)
        assert proceso.returncode == 0, err.decode()
        assert await revision(mirador) == "9001"
    finally:
        await bloqueo.close()
        await mirador.close()
        await repo.close()
        await engine.dispose()


async def test_un_indice_concurrente_no_detiene_los_pagos_y_termina_uno_a_medias(postgres_server, tmp_path):
    url = await create_database(postgres_server)
    migraciones = migraciones_con(tmp_path, 'indice_concurrente("ix_pagos_prueba", "pagos", ["fecha_creacion"])')
    engine = create_engine(url, pool_size=2)
    repo = PostgresPagoRepository(engine)
    escritor, constructor, mirador = [await asyncpg.connect(asyncpg_dsn(url)) for _ in range(3)]
    valido = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('ix_pagos_prueba')"
    try:
        # A transaction that wrote to pagos and is still open: a concurrent build waits for it.
        transaccion = escritor.transaction()
        await transaccion.start()
        await escritor.execute(
            "INSERT INTO pagos (id_pago, id_afiliado, monto, moneda, estado, fecha_creacion) "
            "VALUES ($1, 'a', 1, 'USD', 'PENDIENTE', now())",
            uuid.uuid4(),
        )
        # An earlier build cut short (a killed Job) leaves the index INVALID.
        a_medias = asyncio.create_task(
            constructor.execute("CREATE INDEX CONCURRENTLY ix_pagos_prueba ON pagos (fecha_creacion)")
        )
        await esperar_bloqueada(mirador, "CREATE INDEX CONCURRENTLY ix_pagos_prueba%")
        await mirador.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%'"
        )
        with pytest.raises(asyncpg.QueryCanceledError):
            await a_medias
        assert await mirador.fetchval(valido) is False

        proceso = await migrar(url, migraciones, PAGOS_MIGRATION_LOCK_TIMEOUT_SECONDS="1")
        await esperar_bloqueada(mirador, "%INDEX CONCURRENTLY%ix_pagos_prueba%")  # the drop, then the build
        await asyncio.sleep(1.5)  # past the migration's lock timeout: the build has none
        antes = time.monotonic()
        assert (await asyncio.wait_for(repo.reclamar(pago_nuevo()), 5)).reclamado
        assert time.monotonic() - antes < 1, "the build took no lock that holds payments up"
        assert proceso.returncode is None, "still waiting for the open transaction"
        await transaccion.commit()
        _, err = await asyncio.wait_for(proceso.communicate(), 30)
        assert proceso.returncode == 0, err.decode()
        assert await mirador.fetchval(valido) is True
        assert await revision(mirador) == "9001"
    finally:
        for conn in (escritor, constructor, mirador):
            await conn.close()
        await repo.close()
        await engine.dispose()


async def test_un_indice_concurrente_con_otra_operacion_se_niega_sin_aplicar_nada(postgres_server, tmp_path):
    """What the migration did before the build would be committed by it (Alembic's autocommit
    block) at the old revision: `indice_concurrente` refuses instead, and the migration's
    transaction is rolled back whole."""
    url = await create_database(postgres_server)
    migraciones = migraciones_con(
        tmp_path,
        'op.execute("ALTER TABLE pagos ADD COLUMN prueba integer")\n'
        '    indice_concurrente("ix_pagos_prueba", "pagos", ["prueba"])',
    )
    mirador = await asyncpg.connect(asyncpg_dsn(url))
    try:
        proceso = await migrar(url, migraciones)
        _, err = await asyncio.wait_for(proceso.communicate(), 30)
        assert proceso.returncode == 1, err.decode()
        assert "the only operation of its migration" in err.decode()
        assert await revision(mirador) == CABEZA
        assert not await mirador.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'pagos' AND column_name = 'prueba'"
        )
        assert await mirador.fetchval("SELECT to_regclass('ix_pagos_prueba')") is None
    finally:
        await mirador.close()


async def test_dos_migraciones_a_la_vez_no_se_bloquean_entre_si(postgres_server, tmp_path):
    """A second `migrate` waits for the first outside any transaction: the first one's concurrent
    build waits for every older snapshot, so a second run waiting inside one would deadlock it."""
    url = await create_database(postgres_server)
    migraciones = migraciones_con(tmp_path, 'indice_concurrente("ix_pagos_prueba", "pagos", ["fecha_creacion"])')
    escritor, mirador = [await asyncpg.connect(asyncpg_dsn(url)) for _ in range(2)]
    try:
        transaccion = escritor.transaction()  # holds the first run's build until it ends
        await transaccion.start()
        await escritor.execute(
            "INSERT INTO pagos (id_pago, id_afiliado, monto, moneda, estado, fecha_creacion) "
            "VALUES ($1, 'a', 1, 'USD', 'PENDIENTE', now())",
            uuid.uuid4(),
        )
        primera = await migrar(url, migraciones)
        await esperar_bloqueada(mirador, "%INDEX CONCURRENTLY%ix_pagos_prueba%")
        nombre = await mirador.fetchval(  # what the guide's query looks for
            "SELECT application_name FROM pg_stat_activity "
            "WHERE query LIKE '%INDEX CONCURRENTLY%ix_pagos_prueba%' AND pid <> pg_backend_pid()"
        )
        assert nombre == "pagos-worker-migrate"
        segunda = await migrar(url, migraciones)
        assert segunda.stdout is not None
        linea = await asyncio.wait_for(segunda.stdout.readline(), 60)  # its first try of the lock
        assert "waiting for the migration lock (held by pid" in linea.decode(), linea
        await asyncio.sleep(3)  # past deadlock_timeout (1 s): a deadlock would have been found by now
        assert primera.returncode is None
        assert segunda.returncode is None
        await transaccion.commit()
        salidas = [await asyncio.wait_for(p.communicate(), 30) for p in (primera, segunda)]
        assert [primera.returncode, segunda.returncode] == [0, 0], salidas
        assert await revision(mirador) == "9001"
        assert await mirador.fetchval("SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_pagos_prueba'::regclass")
    finally:
        await escritor.close()
        await mirador.close()


async def test_la_espera_por_otra_migracion_tiene_fin(postgres_server, tmp_path):
    url = await create_database(postgres_server)
    otra = await asyncpg.connect(asyncpg_dsn(url))
    try:
        pid = await otra.fetchval("SELECT pg_backend_pid()")
        await otra.execute("SELECT pg_advisory_lock($1)", 0x7061_676F)  # another run, holding the lock
        inicio = time.monotonic()
        proceso = await migrar(url, DEFAULT_MIGRATIONS_DIR, PAGOS_MIGRATION_WAIT_SECONDS="2")
        out, err = await asyncio.wait_for(proceso.communicate(), 30)
        assert proceso.returncode == 1, err.decode()
        assert time.monotonic() - inicio < 15
        assert f"held by pid {pid}" in out.decode() + err.decode()
        assert "migration gave up" in err.decode()
        assert "Traceback" not in err.decode()
    finally:
        await otra.close()
