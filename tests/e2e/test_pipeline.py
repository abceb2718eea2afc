"""The whole pipeline, as users run it: `pagos-worker run` as its own process against a real
PostgreSQL and a real broker; commands published and events read with the plain pulsar-client;
states read over HTTP."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from pagos_dev.embedded.process import port_is_open
from pagos_worker.config import CONTRACT_COMMANDS_TOPIC, CONTRACT_DLQ_TOPIC, CONTRACT_EVENTS_TOPIC
from tests import contrato_helpers, pulsar_helpers
from tests.conftest import Topics, create_database, free_port
from tests.simulador_helpers import AUTH

pytestmark = pytest.mark.e2e


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path
    topics: Topics
    simulador: str

    def stop(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


@pytest.fixture
def contract_topics(topics: Topics) -> Topics:
    # The contract's own topics on the session's private broker; on a shared one, this test's own.
    if os.environ.get("PAGOS_TEST_PULSAR_URL"):
        return topics
    return Topics(CONTRACT_COMMANDS_TOPIC, CONTRACT_EVENTS_TOPIC, CONTRACT_DLQ_TOPIC)


@pytest.fixture
def simulador(tmp_path) -> Iterator[str]:
    """The Stripe simulator as its own process, with declines, 500s, 429s and timeouts after success."""
    port = free_port()
    env = {
        **os.environ,
        "PAGOS_SIMULADOR_LATENCY": "lognormal:20:150",
        "PAGOS_SIMULADOR_DECLINE_RATE": "0.3",
        "PAGOS_SIMULADOR_ERROR_RATE": "0.05",
        "PAGOS_SIMULADOR_RATE_LIMIT_RATE": "0.03",
        "PAGOS_SIMULADOR_TIMEOUT_AFTER_SUCCESS_RATE": "0.02",
    }
    log = (tmp_path / "simulador.log").open("wb")
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "pagos_dev", "simulador", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while not port_is_open("127.0.0.1", port):
            assert process.poll() is None, (tmp_path / "simulador.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.fixture
async def service(postgres_server, pulsar_url, contract_topics, simulador, tmp_path) -> Iterator[Service]:
    database_url = await create_database(postgres_server, migrated=False)  # the service migrates it
    port = free_port()
    env = {
        **os.environ,
        "PAGOS_DATABASE_URL": database_url,
        "PAGOS_PULSAR_URL": pulsar_url,
        "PAGOS_HTTP_PORT": str(port),
        "PAGOS_COMMANDS_TOPIC": contract_topics.commands,
        "PAGOS_EVENTS_TOPIC": contract_topics.events,
        "PAGOS_DLQ_TOPIC": contract_topics.dlq,
        "PAGOS_STRIPE_API_BASE": simulador,
        "PAGOS_STRIPE_SECRET_KEY": "sk_test_e2e",
        "PAGOS_STRIPE_DESTINATION_TEMPLATE": "acct_{id_afiliado}",
        "PAGOS_STRIPE_TIMEOUT_SECONDS": "1",
        "PAGOS_STRIPE_RATE_LIMIT": "1000",
        "PAGOS_WORKER_CONCURRENCY": "50",
        "PAGOS_NACK_DELAY_SECONDS": "0.5",
        "PAGOS_LOG_FORMAT": "json",
    }
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pagos_worker", "run"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    svc = Service(process, f"http://127.0.0.1:{port}", log, contract_topics, simulador)
    try:
        await _wait_ready(svc)
        yield svc
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def _wait_ready(svc: Service, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if svc.process.poll() is not None:
                pytest.fail(f"service exited with {svc.process.returncode}:\n{svc.log.read_text()[-3000:]}")
            try:
                async with http.get(f"{svc.base_url}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    pytest.fail(f"service not ready after {timeout} s:\n{svc.log.read_text()[-3000:]}")


def comandos(n: int) -> list[dict[str, str]]:
    rng = random.Random(7)
    return [
        {
            "id_pago": str(uuid.uuid4()),
            "id_afiliado": f"afiliado_{rng.randrange(1000)}",
            "monto": f"{rng.randrange(1, 500000) / 100:.2f}",
            "moneda": rng.choice(["USD", "EUR", "COP"]),
        }
        for _ in range(n)
    ]


MALFORMADOS = [
    b"not json",
    b'{"id_pago": "x"}',
    b"\xff\xff",
    b"[]",
    b'{"id_pago": "' + str(uuid.uuid4()).encode() + b'", "id_afiliado": "a", "monto": "0", "moneda": "USD"}',
]


def trazas(pagos: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    """W3C trace context for some of the commands (one in ten, every other one with a tracestate),
    by id_pago: the properties their events must carry, as they came (the service exports no spans
    here, so it passes them on unchanged)."""
    rng = random.Random(11)
    propiedades = {}
    for i, cmd in enumerate(pagos[::10]):
        propiedades[cmd["id_pago"]] = {
            "traceparent": f"00-{rng.getrandbits(128) | 1:032x}-{rng.getrandbits(64) | 1:016x}-01"
        }
        if i % 2:
            propiedades[cmd["id_pago"]]["tracestate"] = f"pagos=e2e{i},otro@vendedor=x"
    return propiedades


def publicar(producer, pagos, duplicados, trazados=None) -> None:
    """Every well-formed command is first held to the contract's schema (the malformed ones are
    there to be refused). `trazados`: the properties of some, by id_pago (their trace context)."""
    trazados = trazados or {}
    for cmd in pagos + duplicados:  # duplicates: exactly as an upstream retry would send them
        contrato_helpers.comando(json.dumps(cmd).encode(), trazados.get(cmd["id_pago"], {}), cmd["id_pago"])
    for cmd in pagos:
        propiedades = trazados.get(cmd["id_pago"], {})
        producer.send_async(json.dumps(cmd).encode(), None, partition_key=cmd["id_pago"], properties=propiedades)
    for data in MALFORMADOS:
        producer.send_async(data, None)
    for cmd in duplicados:  # with the same properties: whichever delivery settles it, the event is the same
        propiedades = trazados.get(cmd["id_pago"], {})
        producer.send_async(json.dumps(cmd).encode(), None, partition_key=cmd["id_pago"], properties=propiedades)
    producer.flush()


async def eventos_por_pago(consumer, esperados: int, timeout: float, trazados=None) -> dict[str, list[dict]]:
    """Events grouped by payment, until every payment has one (plus 2 s for any late duplicate).
    Each is held to the contract's schemas: payload, properties and key; those of `trazados`
    carry their command's trace context."""
    por_pago: dict[str, list[dict]] = collections.defaultdict(list)
    trazados = trazados or {}

    def tomar(n: int, segundos: float) -> None:
        for msg in pulsar_helpers.receive(consumer, n, segundos):
            evento = contrato_helpers.evento(msg.data(), msg.properties(), msg.partition_key())
            assert msg.partition_key() == evento["data"]["id_pago"]
            traza = trazados.get(evento["data"]["id_pago"], {})
            assert msg.properties() == {"event_type": evento["event_type"], "event_id": evento["event_id"], **traza}
            por_pago[evento["data"]["id_pago"]].append(evento)

    deadline = time.monotonic() + timeout
    while len(por_pago) < esperados and time.monotonic() < deadline:
        await asyncio.to_thread(tomar, 50, 1)
    await asyncio.to_thread(tomar, 50, 2)
    return por_pago


async def ledger_del_simulador(http, simulador: str) -> dict[str, list[dict]]:
    """Every transfer the gateway made, by id_pago: the audit of what was really paid."""
    por_pago: dict[str, list[dict]] = collections.defaultdict(list)
    params = {"limit": "100"}
    while True:
        async with http.get(f"{simulador}/v1/transfers", params=params, headers=AUTH) as resp:
            pagina = await resp.json()
        for transfer in pagina["data"]:
            por_pago[transfer["metadata"]["id_pago"]].append(transfer)
        if not pagina["has_more"]:
            return por_pago
        params["starting_after"] = pagina["data"][-1]["id"]


async def comprobar_estado(http, base_url: str, cmd: dict[str, str], evento: dict, pagado: list[dict]) -> None:
    async with http.get(f"{base_url}/pagos/{cmd['id_pago']}") as resp:
        assert resp.status == 200
        estado = await resp.json()
    assert (estado["id_afiliado"], estado["monto"], estado["moneda"]) == (
        cmd["id_afiliado"],
        cmd["monto"],
        cmd["moneda"],
    )
    assert evento["data"]["monto"] == cmd["monto"]
    assert estado["estado"] == {"PagoExitoso": "EXITOSO", "PagoFallido": "FALLIDO"}[evento["event_type"]]
    assert estado["intentos"] >= 1
    if estado["estado"] == "FALLIDO":
        assert estado["mensaje_error"] == evento["data"]["mensaje_error"]
        assert pagado == []  # refused: nothing was paid
    else:
        [transfer] = pagado  # paid exactly once, whatever the retries
        assert estado["referencia_pago"] == evento["data"]["referencia_pago"] == transfer["id"]
        minor = int(cmd["monto"].replace(".", ""))
        assert (transfer["amount"], transfer["currency"]) == (minor, cmd["moneda"].lower())


async def test_200_comandos_de_punta_a_punta(service: Service, pulsar_url):
    observer = pulsar_helpers.client(pulsar_url)
    try:
        events = pulsar_helpers.subscribe(observer, service.topics.events, "e2e-events")
        dlq = pulsar_helpers.subscribe(observer, service.topics.dlq, "e2e-dlq")
        pagos = comandos(200)
        trazados = trazas(pagos)
        inicio = time.monotonic()
        duplicados = random.Random(3).sample(pagos, 10)
        publicar(observer.create_producer(service.topics.commands), pagos, duplicados, trazados)
        por_pago = await eventos_por_pago(events, len(pagos), timeout=90, trazados=trazados)
        duracion = time.monotonic() - inicio - 2

        assert set(por_pago) == {c["id_pago"] for c in pagos}
        repetidos = {k: len(v) for k, v in por_pago.items() if len(v) > 1}
        assert repetidos == {}
        async with aiohttp.ClientSession() as http:
            ledger = await ledger_del_simulador(http, service.simulador)
            assert set(ledger) <= {c["id_pago"] for c in pagos}
            for cmd in pagos:
                evento = por_pago[cmd["id_pago"]][0]
                await comprobar_estado(http, service.base_url, cmd, evento, ledger.get(cmd["id_pago"], []))
            async with http.get(f"{service.base_url}/pagos/outbox/estadisticas") as resp:
                stats = await resp.json()
            async with http.get(f"{service.base_url}/metrics") as resp:
                metricas = await resp.text()
        tipos = collections.Counter(evs[0]["event_type"] for evs in por_pago.values())
        assert tipos["PagoExitoso"] > 0
        assert tipos["PagoFallido"] > 0  # the mix really is a mix

        en_dlq = await asyncio.to_thread(pulsar_helpers.receive, dlq, len(MALFORMADOS) + 1, 3)
        assert sorted(m.data() for m in en_dlq) == sorted(MALFORMADOS)
        for m in en_dlq:
            contrato_helpers.carta_muerta(m.data(), m.properties(), m.partition_key())
            assert m.properties()["topic_origen"] == service.topics.commands

        assert (stats["total_eventos"], stats["eventos_procesados"], stats["eventos_pendientes"]) == (200, 200, 0)
        for tipo, estado in (("PagoExitoso", "EXITOSO"), ("PagoFallido", "FALLIDO")):
            assert f'pagos_finales_total{{estado="{estado}"}} {tipos[tipo]}.0' in metricas
        assert 'pagos_dlq_total{motivo="json_invalido"}' in metricas
        assert service.stop() == 0, service.log.read_text()[-3000:]
        assert "Traceback" not in service.log.read_text()
        # The log lines of a traced payment name its trace.
        lineas = [json.loads(linea) for linea in service.log.read_text().splitlines() if linea.startswith("{")]
        procesados = {linea["id_pago"]: linea for linea in lineas if linea.get("event") == "pago.procesado"}
        for id_pago, traza in trazados.items():
            assert procesados[id_pago]["trace_id"] == traza["traceparent"][3:35]
        assert not any("trace_id" in procesados[c["id_pago"]] for c in pagos if c["id_pago"] not in trazados)
        print(
            f"\ne2e: 200 payments + {len(MALFORMADOS)} malformed + 10 duplicates, last event after "
            f"{duracion:.2f} s ({tipos['PagoExitoso']} EXITOSO, {tipos['PagoFallido']} FALLIDO)"
        )
    finally:
        observer.close()


def reversar(producer, id_pago: str, monto: str | None = None, id_reverso: str | None = None) -> str:
    """A ReversarPago as the saga sends it (held to the contract's schema first); its id_reverso."""
    cuerpo: dict[str, str] = {"id_reverso": id_reverso or str(uuid.uuid4()), "id_pago": id_pago, "motivo": "fraude"}
    if monto is not None:
        cuerpo["monto"] = monto
    propiedades = {"tipo_comando": "ReversarPago"}
    data = json.dumps(cuerpo).encode()
    contrato_helpers.comando(data, propiedades, id_pago)
    producer.send(data, partition_key=id_pago, properties=propiedades)
    return cuerpo["id_reverso"]


async def test_reversos_de_punta_a_punta(service: Service, pulsar_url):
    """Through the real broker and the service's own process: a payment reversed in part and then
    wholly (REVERSADO), a reversal the affiliate's balance cannot cover, one before its payment (the
    payment then fails unpaid), and a duplicate: each with exactly one event, by the contract."""
    observer = pulsar_helpers.client(pulsar_url)
    try:
        events = pulsar_helpers.subscribe(observer, service.topics.events, "e2e-reversos")
        producer = observer.create_producer(service.topics.commands)
        # The simulator here declines 30 % at random: of six, one is paid (all six declined: 0.07 %).
        candidatos = [
            {"id_pago": str(uuid.uuid4()), "id_afiliado": afiliado, "monto": "100.00", "moneda": "EUR"}
            for afiliado in ["afiliado_e2e"] * 6 + ["afiliado_sin_saldo"] * 6
        ]
        anulado = {**candidatos[0], "id_pago": str(uuid.uuid4())}
        for cmd in candidatos:
            producer.send(json.dumps(cmd).encode(), partition_key=cmd["id_pago"])
        antes = reversar(producer, anulado["id_pago"])  # before its payment: it annuls it
        # The topic is the session's: the other tests' events are read too, and left aside.
        nuestros = {c["id_pago"] for c in candidatos} | {anulado["id_pago"]}
        eventos: dict[str, list[dict]] = {}
        await eventos_hasta(events, eventos, lambda: nuestros <= set(eventos))

        def pagado(afiliado: str) -> dict[str, str]:
            return next(
                c for c in candidatos
                if c["id_afiliado"] == afiliado and eventos[c["id_pago"]][0]["event_type"] == "PagoExitoso"
            )  # fmt: skip

        pago, sin_saldo = pagado("afiliado_e2e"), pagado("afiliado_sin_saldo")
        parcial = reversar(producer, pago["id_pago"], "40.00")
        await eventos_hasta(events, eventos, lambda: parcial in _ids_reverso(eventos))
        resto = reversar(producer, pago["id_pago"])
        reversar(producer, pago["id_pago"], "40.00", id_reverso=parcial)  # the saga's retry: a duplicate
        sin_cubrir = reversar(producer, sin_saldo["id_pago"], "10.00")
        producer.send(json.dumps(anulado).encode(), partition_key=anulado["id_pago"])
        esperados = {parcial, resto, sin_cubrir, antes}

        def hecho() -> bool:
            return esperados <= _ids_reverso(eventos) and len(eventos[anulado["id_pago"]]) == 2

        await eventos_hasta(events, eventos, hecho)
        await eventos_hasta(events, eventos, lambda: True)  # a late duplicate event would show up now

        de_reversos = [e for i in nuestros for e in eventos.get(i, []) if "id_reverso" in e["data"]]
        assert sorted(e["data"]["id_reverso"] for e in de_reversos) == sorted(esperados)  # one each
        por_reverso = {e["data"]["id_reverso"]: e for e in de_reversos}
        datos = {r: por_reverso[r]["data"] for r in esperados}
        assert por_reverso[parcial]["event_type"] == por_reverso[resto]["event_type"] == "PagoReversado"
        assert (datos[parcial]["monto"], datos[parcial]["monto_reversado_total"]) == ("40.00", "40.00")
        assert (datos[resto]["monto"], datos[resto]["monto_reversado_total"]) == ("60.00", "100.00")
        assert datos[parcial]["referencia_reverso"].startswith("trr_")
        assert (por_reverso[sin_cubrir]["event_type"], datos[sin_cubrir]["codigo"]) == (
            "ReversoFallido",
            "saldo_insuficiente",
        )
        assert por_reverso[antes]["event_type"] == "PagoAnulado"
        assert [e["event_type"] for e in eventos[anulado["id_pago"]]] == ["PagoAnulado", "PagoFallido"]
        assert eventos[anulado["id_pago"]][1]["data"]["mensaje_error"] == "anulado antes de pagar"
        await _comprobar_lo_revertido(service, pago["id_pago"], anulado["id_pago"])
        assert service.stop() == 0, service.log.read_text()[-3000:]
        assert "Traceback" not in service.log.read_text()
    finally:
        observer.close()


async def _comprobar_lo_revertido(service: Service, id_pago: str, anulado: str) -> None:
    """The reversed payment is REVERSADO, its one transfer reversed wholly by two reversals; the
    annulled one was never paid."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{service.base_url}/pagos/{id_pago}") as resp:
            estado = await resp.json()
        ledger = await ledger_del_simulador(http, service.simulador)
        [transfer] = ledger[id_pago]
        async with http.get(f"{service.simulador}/v1/transfers/{transfer['id']}", headers=AUTH) as resp:
            actual = await resp.json()
    assert (estado["estado"], estado["monto_reversado"]) == ("REVERSADO", "100.00")
    assert (actual["amount_reversed"], actual["reversed"], actual["reversals"]["total_count"]) == (10000, True, 2)
    assert anulado not in ledger


def _ids_reverso(por_pago: dict[str, list[dict]]) -> set[str]:
    return {e["data"].get("id_reverso") for evs in por_pago.values() for e in evs} - {None}


async def eventos_hasta(consumer, por_pago: dict[str, list[dict]], hecho, timeout: float = 60) -> None:
    """Read more events into `por_pago` until `hecho()` holds (at least one read, of up to 1 s)."""
    deadline = time.monotonic() + timeout
    primera = True
    while primera or not hecho():
        primera = False
        assert time.monotonic() < deadline, por_pago
        for msg in await asyncio.to_thread(pulsar_helpers.receive, consumer, 20, 1):
            evento = contrato_helpers.evento(msg.data(), msg.properties(), msg.partition_key())
            assert msg.partition_key() == evento["data"]["id_pago"]
            por_pago.setdefault(evento["data"]["id_pago"], []).append(evento)
