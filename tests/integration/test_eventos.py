"""`pagos-worker eventos`: the events topic read with a Reader on the real broker, decoded and
filtered, as an operator runs it; it consumes nothing and leaves no subscription behind."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
import uuid
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pulsar
import pytest

from pagos_worker.adapters.pulsar.client import PulsarConnection
from pagos_worker.adapters.pulsar.operador import PulsarEventReader
from pagos_worker.application.ports.outbox import PlainMessage
from pagos_worker.contract.wire import encode_event
from pagos_worker.domain.dinero import Dinero, Moneda
from pagos_worker.domain.events import PagoExitoso, PagoFallido
from tests import pulsar_helpers
from tests.conftest import Topics

pytestmark = pytest.mark.integration


def _evento(id_pago: uuid.UUID, *, fallido: bool = False) -> PlainMessage:
    comun: dict[str, Any] = {
        "event_id": uuid.uuid4(), "timestamp": datetime.now(UTC), "id_pago": id_pago, "id_afiliado": "af_1",
        "importe": Dinero(Decimal("42.00"), Moneda.USD),
    }  # fmt: skip
    evento = (
        PagoFallido(**comun, referencia_pago="req_1", mensaje_error="Fondos insuficientes")
        if fallido
        else PagoExitoso(**comun, referencia_pago="tr_1")
    )
    props = {"event_type": evento.tipo, "event_id": str(evento.event_id)}
    return PlainMessage(payload=encode_event(evento), key=str(id_pago), properties=props)


async def _publicar(pulsar_url: str, topic: str, mensajes: list[PlainMessage]) -> None:
    conexion = PulsarConnection(pulsar_url)
    try:
        publisher = await conexion.publisher(topic, per_lot=False)
        await publisher.publicar(mensajes)
        await publisher.close()
    finally:
        await conexion.close()


def _env(pulsar_url: str, topics: Topics) -> dict[str, str]:
    sin_pagos = {k: v for k, v in os.environ.items() if not k.startswith("PAGOS_")}
    return {**sin_pagos, "PAGOS_PULSAR_URL": pulsar_url, "PAGOS_EVENTS_TOPIC": topics.events}


async def _cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proceso = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pagos_worker", "eventos", *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proceso.communicate(), 120)
    assert proceso.returncode is not None
    return proceso.returncode, out.decode(), err.decode()


async def test_eventos_lee_decodifica_y_filtra_sin_base_de_datos(pulsar_url, topics):
    a, b = uuid.uuid4(), uuid.uuid4()
    revision = await asyncio.to_thread(pulsar_helpers.client, pulsar_url)
    testigo = await asyncio.to_thread(pulsar_helpers.subscribe, revision, topics.events, "revision")
    basura = PlainMessage(payload=b"no es json", key="x", properties={})
    await _publicar(pulsar_url, topics.events, [_evento(a), _evento(b, fallido=True), _evento(a), basura])
    env = _env(pulsar_url, topics)

    rc, out, err = await _cli(env, "--json")
    assert (rc, err) == (0, "")
    todos = [json.loads(linea) for linea in out.splitlines()]
    assert [e["event_type"] for e in todos] == ["PagoExitoso", "PagoFallido", "PagoExitoso", None]
    assert todos[1]["data"]["mensaje_error"] == "Fondos insuficientes"
    assert todos[1]["id_pago"] == str(b)
    assert todos[3]["error"]

    rc, out, err = await _cli(env, "--json", "--id-pago", str(a))
    assert (rc, err) == (0, "")
    assert [json.loads(linea)["id_pago"] for linea in out.splitlines()] == [str(a), str(a)]

    manana = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert await _cli(env, "--json", "--desde", manana) == (0, "", "")

    rc, out, err = await _cli(env, "--id-pago", str(b))  # for people: one line each
    assert (rc, err) == (0, "")
    assert "PagoFallido" in out
    assert "42.00 USD" in out
    assert "Fondos insuficientes" in out
    assert "eventos: 1" in out

    # Nothing was consumed: a subscription made before still has every event.
    recibidos = await asyncio.to_thread(pulsar_helpers.receive, testigo, 4, 30)
    assert len(recibidos) == 4
    await asyncio.to_thread(revision.close)


async def test_eventos_en_un_topic_vacio_o_inexistente_no_da_nada(pulsar_url, topics):
    assert await _cli(_env(pulsar_url, topics), "--json") == (0, "", "")


async def test_seguir_muestra_lo_que_llega_y_termina_con_ctrl_c(pulsar_url, topics):
    c = uuid.uuid4()
    # As from a terminal: SIGINT at its default. A shell without job control starts its background
    # commands with SIGINT ignored (POSIX), pytest's children would inherit that, and Python then
    # installs no KeyboardInterrupt: Ctrl-C would not reach the command at all.
    proceso = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pagos_worker", "eventos", "--seguir", "--json", "--id-pago", str(c),
        env=_env(pulsar_url, topics), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert proceso.stdout is not None
    try:
        await _publicar(pulsar_url, topics.events, [_evento(uuid.uuid4())])
        linea = b""
        for _ in range(10):  # the reader may start after the first publication: publish until one is seen
            await _publicar(pulsar_url, topics.events, [_evento(c)])
            try:
                linea = await asyncio.wait_for(proceso.stdout.readline(), 10)
                break
            except TimeoutError:
                continue
        assert json.loads(linea)["id_pago"] == str(c)
    finally:
        proceso.send_signal(signal.SIGINT)
        await asyncio.wait_for(proceso.wait(), 60)
    assert proceso.returncode == 0


class _ClienteEspia:
    """The real client, with what the reader asked of it written down."""

    def __init__(self, cliente: pulsar.Client) -> None:
        self._cliente = cliente
        self.llamadas: list[str] = []
        self.lectores: list[Any] = []

    def create_reader(self, *args: Any, **kwargs: Any) -> Any:
        self.llamadas.append("create_reader")
        lector = _LectorEspia(self._cliente.create_reader(*args, **kwargs), self.llamadas)
        self.lectores.append(lector)
        return lector

    def __getattr__(self, nombre: str) -> Any:
        self.llamadas.append(nombre)
        return getattr(self._cliente, nombre)


class _LectorEspia:
    def __init__(self, lector: Any, llamadas: list[str]) -> None:
        self._lector = lector
        self._llamadas = llamadas

    def close(self) -> None:
        self._llamadas.append("reader.close")
        self._lector.close()

    def __getattr__(self, nombre: str) -> Any:
        return getattr(self._lector, nombre)


@pytest.mark.parametrize("seguir", [False, True])
async def test_el_lector_de_eventos_no_se_suscribe_y_cierra_su_reader(pulsar_url, topics, seguir):
    await _publicar(pulsar_url, topics.events, [_evento(uuid.uuid4()) for _ in range(3)])
    cliente = await asyncio.to_thread(pulsar_helpers.client, pulsar_url)
    espia = _ClienteEspia(cliente)
    leidos = []
    async with aclosing(PulsarEventReader(espia, topics.events).leer(seguir=seguir)) as eventos:  # type: ignore[arg-type]
        async for evento in eventos:
            leidos.append(evento)
            if len(leidos) == 3:
                break
    assert len(leidos) == 3
    assert espia.llamadas == ["create_reader", "reader.close"]  # no subscribe, no acknowledge
    await asyncio.to_thread(cliente.close)
