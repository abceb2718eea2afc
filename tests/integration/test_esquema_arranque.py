"""A process starts only on the schema its release was written for, or a later one (a rollback runs
the previous release on the newer, additive schema): started before its migration it refuses, and
says what to run, instead of failing on its first statement."""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from pagos_worker.adapters.postgres.database import DEFAULT_MIGRATIONS_DIR, asyncpg_dsn
from pagos_worker.adapters.postgres.tables import ESQUEMA
from pagos_worker.adapters.pulsar.client import PulsarConnection
from pagos_worker.bootstrap import bootstrap
from pagos_worker.config import ConfiguracionInvalidaError, Settings
from tests.conftest import create_database
from tests.fakes import FakePasarelaDePagos

pytestmark = pytest.mark.integration


def test_el_esquema_del_codigo_es_la_ultima_migracion():
    config = Config()
    config.set_main_option("script_location", str(DEFAULT_MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == ESQUEMA


async def _revision(url: str, revision: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("UPDATE alembic_version SET version_num = $1", revision)
    finally:
        await conn.close()


async def test_sin_migrar_no_arranca_y_dice_que_falta(postgres_server, pulsar_url):
    url = await create_database(postgres_server, migrated=False)
    limpio = {k: v for k, v in os.environ.items() if not k.startswith("PAGOS_")}
    resultado = subprocess.run(
        [sys.executable, "-m", "pagos_worker", "run", "--roles", "api", "--no-migrate"],
        env={**limpio, "PAGOS_DATABASE_URL": url, "PAGOS_PULSAR_URL": pulsar_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert resultado.returncode == 2, resultado.stderr
    assert "has no schema" in resultado.stderr
    assert "run `pagos-worker migrate` first" in resultado.stderr
    assert "Traceback" not in resultado.stderr


@pytest.mark.parametrize(("revision", "arranca"), [("0011", False), (ESQUEMA, True), ("9999", True)])
async def test_arranca_en_su_esquema_o_uno_posterior(postgres_server, pulsar_url, revision, arranca):
    url = await create_database(postgres_server)
    await _revision(url, revision)
    settings = Settings(database_url=url, pulsar_url=pulsar_url, db_pool_size=1)
    if arranca:
        async with bootstrap(settings, frozenset({"api"})):
            pass
        return
    with pytest.raises(
        ConfiguracionInvalidaError, match=f"is at revision {revision}; this release needs revision {ESQUEMA} or later"
    ):
        async with bootstrap(settings, frozenset({"api"})):
            pass


async def test_un_arranque_rechazado_no_se_suscribio_a_los_comandos(postgres_server, pulsar_url, monkeypatch):
    """The schema is checked before anything takes commands: a worker refused on an old schema
    never subscribed (a consumer would have been handed messages it then could not process)."""
    url = await create_database(postgres_server)
    await _revision(url, "0011")
    suscripciones: list[str] = []
    original = PulsarConnection.command_source

    async def command_source(self, topic, subscription, *args, **kwargs):
        suscripciones.append(subscription)
        return await original(self, topic, subscription, *args, **kwargs)

    monkeypatch.setattr(PulsarConnection, "command_source", command_source)
    settings = Settings(database_url=url, pulsar_url=pulsar_url, db_pool_size=1)
    with pytest.raises(ConfiguracionInvalidaError, match="is at revision 0011"):
        async with bootstrap(settings, frozenset({"worker"}), pasarela=FakePasarelaDePagos()):
            pass
    assert suscripciones == []
