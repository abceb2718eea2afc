"""An empty dead-letter topic, and one that does not exist yet, on the real broker of the tests: the
state right after a fresh `make run`. Both are "0 dead letters", exit status 0, for the reader and
for `pagos-worker dlq listar` / `dlq reenviar --dry-run` as an operator runs them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from pagos_worker.adapters.pulsar.client import PulsarConnection
from tests import pulsar_helpers
from tests.conftest import Topics

pytestmark = pytest.mark.integration


def _crear_vacio(pulsar_url: str, topic: str) -> None:
    """The topic exists on the broker (a producer made it) and holds no message."""
    cliente = pulsar_helpers.client(pulsar_url)
    try:
        cliente.create_producer(topic).close()
    finally:
        cliente.close()


@pytest.mark.parametrize("existe", [True, False], ids=["vacio", "inexistente"])
async def test_el_lector_de_la_dlq_no_da_nada_en_un_topic_vacio_o_inexistente(pulsar_url, topics, existe):
    if existe:
        await asyncio.to_thread(_crear_vacio, pulsar_url, topics.dlq)
    conexion = PulsarConnection(pulsar_url)
    try:
        cartas = [c async for c in conexion.dead_letter_reader(topics.dlq).leer()]
    finally:
        await conexion.close()
    assert cartas == []


async def _cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proceso = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pagos_worker", *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proceso.communicate(), 120)
    assert proceso.returncode is not None
    return proceso.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("existe", [True, False], ids=["vacio", "inexistente"])
async def test_dlq_listar_y_reenviar_en_seco_dicen_cero_y_salen_con_0(
    pulsar_url: str, database_url: str, topics: Topics, existe: bool
):
    if existe:
        await asyncio.to_thread(_crear_vacio, pulsar_url, topics.dlq)
    env = {
        **os.environ, "PAGOS_DATABASE_URL": database_url, "PAGOS_PULSAR_URL": pulsar_url,
        "PAGOS_DLQ_TOPIC": topics.dlq, "PAGOS_COMMANDS_TOPIC": topics.commands, "PAGOS_LOG_FORMAT": "json",
    }  # fmt: skip
    rc, out, err = await _cli(env, "dlq", "listar")
    assert (rc, err) == (0, ""), out
    assert f"cartas muertas: 0 (topic {topics.dlq})" in out  # the topic named: a wrong one is seen
    rc, out, err = await _cli(env, "dlq", "listar", "--json")
    assert (rc, err, json.loads(out)) == (0, "", [])
    rc, out, err = await _cli(env, "dlq", "reenviar", "--dry-run", "--operador", "prueba")
    assert (rc, err) == (0, ""), out
    assert "se reenviarían 0" in out
