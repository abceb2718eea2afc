"""Recovery (the reconciler of stuck payments and the scheduled reconciliation against Stripe) is
wired on the worker role and on the relay role, never on the api role alone: a relay-only
Deployment keeps it going while the workers are paused or scaled to zero."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import SecretStr

from pagos_worker.application.conciliacion_programada import ConciliacionProgramada
from pagos_worker.bootstrap import Servicio, bootstrap
from pagos_worker.config import Settings
from pagos_worker.domain.conciliacion import ClaseDiferencia
from tests.conftest import create_database
from tests.integration.test_stripe_adapter import SECRETO
from tests.simulador_helpers import simulador_en_marcha

pytestmark = pytest.mark.integration


def _programada(servicio: Servicio) -> ConciliacionProgramada | None:
    propias = [getattr(f, "__self__", None) for f in servicio.segundo_plano]
    [programada] = [p for p in propias if isinstance(p, ConciliacionProgramada)] or [None]
    return programada


async def test_el_worker_y_el_relay_recuperan_y_concilian_la_api_no(postgres_server, pulsar_url, topics):
    async with simulador_en_marcha() as sim:
        settings = Settings(
            _env_file=None,
            database_url=await create_database(postgres_server),
            pulsar_url=pulsar_url,
            commands_topic=topics.commands,
            events_topic=topics.events,
            dlq_topic=topics.dlq,
            stripe_api_base=sim.url,
            stripe_secret_key=SecretStr(SECRETO),
            stripe_destination_template="acct_{id_afiliado}",
            db_pool_size=2,
        )
        async with bootstrap(settings, frozenset({"api"})) as servicio:
            assert _programada(servicio) is None
            assert servicio.reconciliador is None
        async with bootstrap(settings, frozenset({"worker"})) as servicio:  # alone, as it always could
            assert servicio.consumo is not None
            assert servicio.reconciliador is not None
            assert _programada(servicio) is not None
        async with bootstrap(settings, frozenset({"relay"})) as servicio:
            assert servicio.consumo is None, "a relay takes no commands"
            assert servicio.relay is not None
            assert servicio.reconciliador is not None
            programada = _programada(servicio)
            assert programada is not None
            r = await programada.pasada()  # as wired: the settings' share, window and margin
            assert r is not None
            assert r.coincide_todo
            assert r.conteos[ClaseDiferencia.COINCIDE] == 0
            assert r.ventana.hasta - r.ventana.desde == timedelta(seconds=settings.conciliacion_lookback_seconds)
