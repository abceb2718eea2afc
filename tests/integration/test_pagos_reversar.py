"""`pagos-worker pagos reversar` as an operator runs it, against the real PostgreSQL and broker: it
publishes exactly the `ReversarPago` the worker reads (payload, key, `tipo_comando`, `operador`),
refuses what could not succeed, and run again with the same id_reverso, sends nothing twice; `pagos
ver` then shows the reversals."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text

from pagos_worker.application.commands import ReversarPago
from pagos_worker.contract.wire import encode_reversal
from pagos_worker.domain.reverso import EstadoReverso, MotivoReverso, Reverso
from pagos_worker.entrypoints.worker import decodificar
from tests import contrato_helpers, pulsar_helpers
from tests.conftest import Topics
from tests.integration.test_reversos_operador import guardar, pagado

pytestmark = pytest.mark.integration


def _env(database_url: str, pulsar_url: str, topics: Topics) -> dict[str, str]:
    return {
        **os.environ, "PAGOS_DATABASE_URL": database_url, "PAGOS_PULSAR_URL": pulsar_url,
        "PAGOS_COMMANDS_TOPIC": topics.commands, "PAGOS_DLQ_TOPIC": topics.dlq, "PAGOS_LOG_FORMAT": "json",
        "USER": "bea",
    }  # fmt: skip


async def _cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proceso = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pagos_worker", *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proceso.communicate(), 120)
    assert proceso.returncode is not None
    return proceso.returncode, out.decode(), err.decode()


async def test_pagos_reversar_publica_el_comando_que_el_worker_lee(postgres, database_url, pulsar_url, topics):
    pago = await pagado(postgres)
    observador = pulsar_helpers.client(pulsar_url)
    try:
        comandos = pulsar_helpers.subscribe(observador, topics.commands, "observador-reversos")
        env = _env(database_url, pulsar_url, topics)
        id_reverso = uuid.uuid4()
        rc, out, err = await _cli(env, "pagos", "reversar", str(pago.id_pago), "--motivo", "duplicado",
                                  "--monto", "30", "--descripcion", "cobrado dos veces", "--operador", "ana",
                                  "--id-reverso", str(id_reverso))  # fmt: skip
        assert (rc, err) == (0, ""), out
        assert str(id_reverso) in out
        assert f"pagos-worker pagos ver {pago.id_pago}" in out
        [mensaje] = await asyncio.to_thread(pulsar_helpers.receive, comandos, 2, 10)
        esperado = ReversarPago(id_reverso, pago.id_pago, Decimal("30.00"), MotivoReverso.DUPLICADO,
                                "cobrado dos veces")  # fmt: skip
        assert mensaje.data() == encode_reversal(esperado)
        assert mensaje.properties() == {"tipo_comando": "ReversarPago", "operador": "ana"}
        assert mensaje.partition_key() == str(pago.id_pago)
        malos = contrato_helpers.errores("ReversarPago", json.loads(mensaje.data()), mensaje.properties(),
                                         mensaje.partition_key())  # fmt: skip
        assert malos == []
        assert decodificar(mensaje.data(), mensaje.properties()) == ReversarPago(
            id_reverso, pago.id_pago, Decimal("30.00"), MotivoReverso.DUPLICADO, "cobrado dos veces", "ana"
        )

        # Without --id-reverso, --monto nor --operador: a new id, everything left, $USER.
        rc, out, err = await _cli(env, "pagos", "reversar", str(pago.id_pago), "--motivo", "fraude", "--json")
        assert (rc, err) == (0, ""), out
        respuesta = json.loads(out)
        assert (respuesta["monto"], respuesta["moneda"], respuesta["operador"], respuesta["publicado"]) == (
            None, "USD", "bea", True
        )  # fmt: skip
        [mensaje] = await asyncio.to_thread(pulsar_helpers.receive, comandos, 2, 10)
        assert json.loads(mensaje.data()) == {
            "id_reverso": respuesta["id_reverso"], "id_pago": str(pago.id_pago), "motivo": "fraude"
        }  # fmt: skip
        assert uuid.UUID(respuesta["id_reverso"]).version == 4
        assert mensaje.properties()["operador"] == "bea"

        # The worker recorded the first (30.00 back) and holds the second: 70.00 left, all asked for.
        reversado = Reverso(id_reverso=id_reverso, id_pago=pago.id_pago, monto_pedido=Decimal("30.00"),
                            motivo=MotivoReverso.DUPLICADO, descripcion="cobrado dos veces",
                            estado=EstadoReverso.EXITOSO, fecha_creacion=datetime.now(UTC))  # fmt: skip
        todo = Reverso(id_reverso=uuid.UUID(respuesta["id_reverso"]), id_pago=pago.id_pago, monto_pedido=None,
                       motivo=MotivoReverso.FRAUDE, fecha_creacion=datetime.now(UTC))  # fmt: skip
        await guardar(postgres.engine, reversado, todo)
        async with postgres.engine.begin() as conn:
            await conn.execute(text("UPDATE pagos SET monto_reversado = 30 WHERE id_pago = :i"), {"i": pago.id_pago})
        rc, out, err = await _cli(env, "pagos", "reversar", str(pago.id_pago), "--motivo", "duplicado",
                                  "--monto", "30.00", "--descripcion", "cobrado dos veces", "--operador", "ana",
                                  "--id-reverso", str(id_reverso))  # fmt: skip
        assert (rc, err) == (0, ""), out  # the same command again: safe, and nothing sent
        assert "ya registrado (EXITOSO): no se publicó nada" in out
        rc, out, err = await _cli(env, "pagos", "reversar", str(pago.id_pago), "--motivo", "duplicado",
                                  "--monto", "1", "--operador", "ana")  # fmt: skip
        assert rc == 1, out
        assert f"el reverso {todo.id_reverso} ya pide todo lo que queda" in err
        assert await asyncio.to_thread(pulsar_helpers.receive, comandos, 1, 2) == []

        rc, out, err = await _cli(env, "pagos", "ver", str(pago.id_pago))
        assert rc == 0, err
        assert str(id_reverso) in out
        assert str(todo.id_reverso) in out
    finally:
        observador.close()
