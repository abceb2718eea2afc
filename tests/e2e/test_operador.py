"""The operators' commands as an operator runs them: `pagos-worker pagos …` and `pagos-worker dlq …`
as processes of their own, against a running `pagos-worker run`, the real PostgreSQL and broker, and
the Stripe simulator (in this test's event loop). Payments are flagged for attention the way
production flags them: the gateway's outcome stays unknown."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from pagos_dev.simulador.fallas import Fallas
from pagos_worker.adapters.postgres.database import asyncpg_dsn
from pagos_worker.contract import http
from tests import contrato_helpers, pulsar_helpers
from tests.conftest import Topics, create_database, free_port
from tests.simulador_helpers import AUTH, SimuladorEnMarcha, simulador_en_marcha

pytestmark = pytest.mark.e2e


@dataclass
class Pila:
    env: dict[str, str]
    base_url: str
    sim: SimuladorEnMarcha
    topics: Topics
    pulsar: Any  # the observer's pulsar.Client
    log: Path

    async def cli(
        self, *args: str, env: dict[str, str] | None = None, desfase: float | None = None
    ) -> tuple[int, str, str]:
        """`pagos-worker ARGS`, on a host clock `desfase` seconds off if given."""
        programa = ["pagos_worker"] if desfase is None else ["pagos_dev.reloj_desfasado", str(desfase)]
        proceso = await asyncio.create_subprocess_exec(
            sys.executable, "-m", *programa, *args, env=env or self.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proceso.communicate(), 60)
        assert proceso.returncode is not None
        return proceso.returncode, out.decode(), err.decode()

    async def cli_json(self, *args: str) -> Any:
        rc, out, err = await self.cli(*args, "--json")
        assert rc == 0, err
        return json.loads(out)

    async def pago(self, id_pago: str) -> dict[str, Any]:
        async with aiohttp.ClientSession() as s, s.get(f"{self.base_url}/pagos/{id_pago}") as resp:
            return {"status": resp.status, **(await resp.json())}

    async def llamadas_terminadas_hace(self, id_pago: str, segundos: float) -> None:
        """As if the payment's last gateway call had ended that long ago (the database's clock)."""
        conn = await asyncpg.connect(asyncpg_dsn(self.env["PAGOS_DATABASE_URL"]))
        try:
            await conn.execute(
                "UPDATE pagos SET fin_llamadas = clock_timestamp() - make_interval(secs => $1) WHERE id_pago = $2",
                segundos,
                uuid.UUID(id_pago),
            )
        finally:
            await conn.close()

    async def hasta(self, id_pago: str, condicion, segundos: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + segundos
        while time.monotonic() < deadline:
            pago = await self.pago(id_pago)
            if pago["status"] == 200 and condicion(pago):
                return pago
            await asyncio.sleep(0.2)
        pytest.fail(f"{id_pago}: {await self.pago(id_pago)}\n{self.log.read_text()[-3000:]}")

    def publicar(self, id_pago: str, id_afiliado: str = "af_1", monto: str = "25.00") -> bytes:
        data = json.dumps({"id_pago": id_pago, "id_afiliado": id_afiliado, "monto": monto, "moneda": "USD"}).encode()
        self.pulsar.create_producer(self.topics.commands).send(data, partition_key=id_pago)
        return data

    def fallas(self, **cambios: Any) -> None:
        self.sim.simulador.fallas = dataclasses.replace(self.sim.simulador.fallas, **cambios)

    async def transferir(self, id_pago: str, centavos: int) -> dict[str, Any]:
        """A transfer for the payment made at the gateway, not by the service (no idempotency key)."""
        form = {"amount": str(centavos), "currency": "usd", "destination": "acct_af_1", "transfer_group": id_pago}
        async with aiohttp.ClientSession(headers=AUTH) as s, s.post(f"{self.sim.url}/v1/transfers", data=form) as resp:
            assert resp.status == 200
            return await resp.json()

    async def transfers(self, id_pago: str) -> list[dict[str, Any]]:
        async with (
            aiohttp.ClientSession(headers=AUTH) as s,
            s.get(f"{self.sim.url}/v1/transfers", params={"transfer_group": id_pago}) as resp,
        ):
            return (await resp.json())["data"]


@pytest.fixture
async def pila(postgres_server, pulsar_url, topics, tmp_path) -> AsyncIterator[Pila]:
    database_url = await create_database(postgres_server, migrated=False)  # the service migrates it
    port = free_port()
    async with simulador_en_marcha(Fallas(latencia="fixed:0", tasa_rechazo=0, cuelgue_s=3)) as sim:
        env = {
            **os.environ,
            "PAGOS_DATABASE_URL": database_url,
            "PAGOS_PULSAR_URL": pulsar_url,
            "PAGOS_HTTP_PORT": str(port),
            "PAGOS_COMMANDS_TOPIC": topics.commands,
            "PAGOS_EVENTS_TOPIC": topics.events,
            "PAGOS_DLQ_TOPIC": topics.dlq,
            "PAGOS_STRIPE_API_BASE": sim.url,
            "PAGOS_STRIPE_SECRET_KEY": "sk_test_operador",
            "PAGOS_STRIPE_DESTINATION_TEMPLATE": "acct_{id_afiliado}",
            "PAGOS_STRIPE_TIMEOUT_SECONDS": "1",
            "PAGOS_STRIPE_MAX_ATTEMPTS": "2",
            "PAGOS_ATTENTION_AFTER_ATTEMPTS": "1",  # the first unknown outcome flags it
            "PAGOS_NACK_DELAY_SECONDS": "0.2",
            "PAGOS_LOG_FORMAT": "json",
            "USER": "ana",
        }
        log = tmp_path / "service.log"
        observer = pulsar_helpers.client(pulsar_url)
        with log.open("wb") as out:
            proceso = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "pagos_worker", "run", env=env, stdout=out, stderr=subprocess.STDOUT
            )
        pila = Pila(env, f"http://127.0.0.1:{port}", sim, topics, observer, log)
        try:
            await _listo(pila, proceso)
            yield pila
        finally:
            if proceso.returncode is None:
                proceso.terminate()
                await asyncio.wait_for(proceso.wait(), 30)
            observer.close()
        assert "Traceback" not in log.read_text()


async def _listo(pila: Pila, proceso: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            assert proceso.returncode is None, pila.log.read_text()[-3000:]
            try:
                async with s.get(f"{pila.base_url}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    pytest.fail(pila.log.read_text()[-3000:])


def marcado(pago: dict[str, Any]) -> bool:
    return bool(pago["requiere_atencion"] and pago["ultimo_error"])


async def eventos(consumer, n: int, segundos: float = 20) -> dict[str, dict[str, Any]]:
    """Events by payment, each held to the contract."""
    por_pago = {}
    for msg in await asyncio.to_thread(pulsar_helpers.receive, consumer, n, segundos):
        evento = contrato_helpers.evento(msg.data(), msg.properties(), msg.partition_key())
        por_pago[evento["data"]["id_pago"]] = evento
    return por_pago


async def test_resolver_un_pago_marcado_lo_liquida_con_su_evento_y_su_resolucion(pila: Pila):
    events = pulsar_helpers.subscribe(pila.pulsar, pila.topics.events, "operador-events")
    # Stripe answers only 500s: the outcome stays unknown and the worker flags the payment. The
    # transfer one of those requests made shows up at Stripe afterwards.
    pila.fallas(tasa_500=1.0)
    pagado = str(uuid.uuid4())
    pila.publicar(pagado, monto="25.00")
    await pila.hasta(pagado, marcado)
    pila.fallas(tasa_500=0.0)
    transfer = await pila.transferir(pagado, 2500)

    atencion = await pila.cli_json("pagos", "atencion", "--causa", "marcado")
    assert [(p["id"], p["causa"]) for p in atencion["pagos"]] == [(pagado, "marcado")]
    assert (await pila.cli_json("pagos", "atencion", "--mas-de", "1h"))["pagos"] == []  # too young

    rc, out, err = await pila.cli("pagos", "resolver", pagado, "--motivo", "transfer confirmado en el dashboard")
    assert rc == 0, err
    assert f"pago {pagado}: EXITOSO con {transfer['id']}" in out

    [evento] = (await eventos(events, 1)).values()  # through the outbox and the relay, like any other
    assert (evento["event_type"], evento["data"]["referencia_pago"]) == ("PagoExitoso", transfer["id"])
    visto = await pila.pago(pagado)
    assert visto["status"] == 200
    del visto["status"]
    http.Pago.model_validate(visto)  # the contract's model, with its new `resolucion`
    assert (visto["estado"], visto["referencia_pago"], visto["requiere_atencion"]) == ("EXITOSO", transfer["id"], False)
    resolucion = visto["resolucion"]
    assert (resolucion["operador"], resolucion["estado"]) == ("ana", "EXITOSO")
    assert resolucion["motivo"] == "transfer confirmado en el dashboard"
    assert resolucion["fecha"].endswith("Z")
    [mostrado] = resolucion["transferencias"]
    assert (mostrado["referencia"], mostrado["monto"], mostrado["moneda"]) == (transfer["id"], "25.00", "USD")
    assert (await pila.cli_json("pagos", "ver", pagado))["resolucion"] == resolucion

    rc, _, err = await pila.cli("pagos", "resolver", pagado)  # final already: refused
    assert rc == 1
    assert "ya está EXITOSO" in err
    assert "Traceback" not in err


async def test_fallido_solo_a_peticion_y_sin_transfer_y_nunca_con_dos(pila: Pila):
    events = pulsar_helpers.subscribe(pila.pulsar, pila.topics.events, "operador-events")
    pila.fallas(tasa_500=1.0)  # Stripe answers 500 before doing anything: nothing is paid, nothing known
    sin_pagar, dos_veces = str(uuid.uuid4()), str(uuid.uuid4())
    pila.publicar(sin_pagar)
    pila.publicar(dos_veces)
    await pila.hasta(sin_pagar, marcado)
    await pila.hasta(dos_veces, marcado)
    pila.fallas(tasa_500=0.0)

    rc, _, err = await pila.cli("pagos", "resolver", sin_pagar)  # nothing shows it paid: not EXITOSO
    assert rc == 1
    assert "no tiene ningún transfer" in err
    # Right after its last call: refused, Stripe may still be finishing a transfer it does not list.
    rc, _, err = await pila.cli("pagos", "resolver", sin_pagar, "--fallido", "cuenta del afiliado cerrada")
    assert rc == 1
    assert "PAGOS_SETTLE_MARGIN_SECONDS" in err
    assert (await pila.pago(sin_pagar))["estado"] == "PROCESANDO"  # untouched
    for id_pago in (sin_pagar, dos_veces):  # as if the settle margin had passed
        await pila.llamadas_terminadas_hace(id_pago, 301)
    rc, out, err = await pila.cli("pagos", "resolver", sin_pagar, "--fallido", "cuenta del afiliado cerrada")
    assert rc == 0, err
    assert "FALLIDO" in out

    # Two transfers for one payment (paid outside the service too): never settled by hand.
    for _ in range(2):
        await pila.transferir(dos_veces, 2500)
    rc, _, err = await pila.cli("pagos", "resolver", dos_veces, "--fallido", "no")
    assert rc == 1
    assert "2 transfers" in err
    assert "pagado más de una vez" in err
    assert (await pila.pago(dos_veces))["estado"] == "PROCESANDO"  # untouched
    assert (await pila.cli("pagos", "resolver", str(uuid.uuid4())))[0] == 1  # unknown payment

    [evento] = (await eventos(events, 2, 5)).values()
    assert (evento["event_type"], evento["data"]["id_pago"]) == ("PagoFallido", sin_pagar)
    assert evento["data"]["mensaje_error"] == "cuenta del afiliado cerrada"
    visto = await pila.pago(sin_pagar)
    assert (visto["estado"], visto["resolucion"]["estado"], visto["resolucion"]["transferencias"]) == (
        "FALLIDO",
        "FALLIDO",
        [],
    )


async def test_reanudar_devuelve_un_pago_marcado_al_proceso_automatico(pila: Pila):
    events = pulsar_helpers.subscribe(pila.pulsar, pila.topics.events, "operador-events")
    pila.fallas(tasa_500=1.0)
    id_pago = str(uuid.uuid4())
    pila.publicar(id_pago)
    await pila.hasta(id_pago, marcado)
    await asyncio.sleep(1)
    assert (await pila.pago(id_pago))["estado"] == "PROCESANDO"  # flagged: nothing retries it
    pila.fallas(tasa_500=0.0)  # the gateway is back

    rc, out, err = await pila.cli("pagos", "reanudar", id_pago)
    assert rc == 0, err
    assert "comando publicado" in out
    pago = await pila.hasta(id_pago, lambda p: p["estado"] == "EXITOSO")
    [evento] = (await eventos(events, 1)).values()
    assert evento["data"]["referencia_pago"] == pago["referencia_pago"]
    assert len(await pila.transfers(id_pago)) == 1  # paid once
    assert pago["resolucion"] is None  # resumed, not resolved by hand
    rc, _, err = await pila.cli("pagos", "reanudar", id_pago)
    assert rc == 1
    assert "ya está EXITOSO" in err


async def test_dlq_listar_y_reenviar(pila: Pila):
    events = pulsar_helpers.subscribe(pila.pulsar, pila.topics.events, "operador-events")
    dlq = pulsar_helpers.subscribe(pila.pulsar, pila.topics.dlq, "operador-dlq")
    malformado = b'{"id_pago": "no es un uuid"'
    pila.pulsar.create_producer(pila.topics.commands).send(malformado, properties={"origen": "upstream"})
    [primera] = await asyncio.to_thread(pulsar_helpers.receive, dlq, 1, 20)
    # A good command dead-lettered by a bug since fixed (as the worker writes dead letters).
    bueno = str(uuid.uuid4())
    data = json.dumps({"id_pago": bueno, "id_afiliado": "af_2", "monto": "10.00", "moneda": "USD"}).encode()
    propiedades = {"motivo": "error_repetido", "detalle": "5 entregas fallidas", "topic_origen": pila.topics.commands,
                   "message_id_origen": "(1,2,-1,-1)"}  # fmt: skip
    pila.pulsar.create_producer(pila.topics.dlq).send(data, properties=propiedades, partition_key=bueno)

    listadas = await pila.cli_json("dlq", "listar")
    assert [(c["motivo"], c["id_pago"], c["reenviada"]) for c in listadas] == [
        ("json_invalido", None, None),
        ("error_repetido", bueno, None),
    ]
    assert [c["id_pago"] for c in await pila.cli_json("dlq", "listar", "--id-pago", bueno)] == [bueno]
    assert await pila.cli_json("dlq", "listar", "--motivo", "no_utf8") == []

    ensayo = await pila.cli_json("dlq", "reenviar", "--dry-run")
    assert (ensayo["reenviadas"], len(ensayo["a_reenviar"])) == (0, 2)
    await asyncio.sleep(2)
    assert (await pila.pago(bueno))["status"] == 404
    # Nothing came back to the DLQ either: only the letter this test put there is new on it.
    assert [m.data() for m in await asyncio.to_thread(pulsar_helpers.receive, dlq, 5, 1)] == [data]

    rc, out, err = await pila.cli("dlq", "reenviar")
    assert rc == 0, err
    assert "reenviadas: 2" in out
    await pila.hasta(bueno, lambda p: p["estado"] == "EXITOSO")  # processed now
    assert bueno in await eventos(events, 1)
    # The malformed one is back on the DLQ with its reason, and says where it came from.
    vueltas = [m for m in await asyncio.to_thread(pulsar_helpers.receive, dlq, 5, 10) if m.data() == malformado]
    [vuelta] = vueltas
    assert vuelta.properties()["motivo"] == "json_invalido"
    assert vuelta.properties()["reenvio_de"] == str(primera.message_id())
    assert (vuelta.properties()["reenviado_por"], vuelta.properties()["origen"]) == ("ana", "upstream")
    contrato_helpers.carta_muerta(vuelta.data(), vuelta.properties(), vuelta.partition_key())

    otra = await pila.cli_json("dlq", "reenviar")  # a re-run re-sends nothing already re-driven
    assert (otra["reenviadas"], len(otra["omitidas_ya_reenviadas"])) == (0, 2)
    de_nuevo = await pila.cli_json("dlq", "reenviar", "--otra-vez", "--motivo", "json_invalido")
    assert de_nuevo["reenviadas"] == 1  # its two dead letters are one command: sent once
    listadas = await pila.cli_json("dlq", "listar", "--motivo", "json_invalido")
    assert all(c["reenviada"] is not None for c in listadas)


async def test_sin_configuracion_sale_con_2_y_la_nombra(pila: Pila):
    sin_nada = {k: v for k, v in os.environ.items() if not k.startswith("PAGOS_")}
    rc, _, err = await pila.cli("pagos", "ver", str(uuid.uuid4()), env=sin_nada)
    assert (rc, "PAGOS_DATABASE_URL" in err) == (2, True)
    rc, _, err = await pila.cli("dlq", "listar", env={**sin_nada, "PAGOS_DATABASE_URL": pila.env["PAGOS_DATABASE_URL"]})
    assert (rc, "PAGOS_PULSAR_URL" in err) == (2, True)
    sin_stripe = {k: v for k, v in pila.env.items() if not k.startswith("PAGOS_STRIPE")}
    rc, _, err = await pila.cli("pagos", "resolver", str(uuid.uuid4()), env=sin_stripe)
    assert (rc, "PAGOS_STRIPE_API_BASE" in err) == (2, True)
    rc, out, err = await pila.cli("pagos", "ver", str(uuid.uuid4()))
    assert (rc, out) == (1, "")
    assert "no existe el pago" in err
    rc, _, err = await pila.cli("pagos", "atencion", "--mas-de", "ayer")
    assert rc == 2
    assert "no es una duración" in err


async def test_reanudar_tras_un_500_guardado_paga_con_la_clave_siguiente(pila: Pila):
    """A saved 500 is final for its key: retries under it can never succeed. Resumed once the settle
    margin has passed, the payment is looked up (nothing) and paid under the next key generation:
    a final state, one transfer, one event."""
    pila.fallas(tasa_500_guardado=1.0)  # every second one is made all the same: the lookup settles those
    ids = [str(uuid.uuid4()) for _ in range(2)]
    for id_pago in ids:
        pila.publicar(id_pago)
    vistos = {i: await pila.hasta(i, lambda v: v["estado"] == "EXITOSO" or marcado(v)) for i in ids}
    pila.fallas(tasa_500_guardado=0.0)
    marcados = [i for i, v in vistos.items() if v["estado"] == "PROCESANDO"]
    assert marcados, vistos
    for id_pago in marcados:
        await pila.llamadas_terminadas_hace(id_pago, 301)  # as if the settle margin had passed
        rc, _, err = await pila.cli("pagos", "reanudar", id_pago)
        assert rc == 0, err
        visto = await pila.hasta(id_pago, lambda v: v["estado"] == "EXITOSO")
        [transfer] = await pila.transfers(id_pago)
        assert visto["referencia_pago"] == transfer["id"]
        renovada = [json.loads(linea) for linea in pila.log.read_text().splitlines() if "pago.clave_renovada" in linea]
        assert [(r["id_pago"], r["generacion"]) for r in renovada if r["id_pago"] == id_pago] == [(id_pago, 2)]


@pytest.mark.parametrize("desfase", [600, -600])
async def test_un_operador_con_el_reloj_desfasado_no_toma_un_pago_en_curso(pila: Pila, desfase: float):
    """Ten minutes off, an operator's laptop sees every lease expired (or none) and every call
    settled: only the database's clock decides, and a payment a worker holds is refused."""
    id_pago = uuid.uuid4()
    conn = await asyncpg.connect(asyncpg_dsn(pila.env["PAGOS_DATABASE_URL"]))
    try:  # a worker holds it for two more minutes, by the database's clock, calling the gateway
        await conn.execute(
            """INSERT INTO pagos (id_pago, id_afiliado, monto, moneda, estado, fecha_creacion, lease_owner,
                   lease_expira, intentos, clave_desde, reclamo, fin_llamadas, requiere_atencion)
               VALUES ($1, 'af_1', 25.00, 'USD', 'PROCESANDO', now(), 'worker-7',
                   clock_timestamp() + interval '2 minutes', 1, now(), 1,
                   clock_timestamp() + interval '2 minutes', true)""",
            id_pago,
        )
    finally:
        await conn.close()
    for orden in (("resolver", "--fallido", "reloj desfasado"), ("resolver",), ("reanudar",)):
        rc, _, err = await pila.cli("pagos", orden[0], str(id_pago), *orden[1:], desfase=desfase)
        assert rc == 1, err
        assert "está en curso en worker-7" in err
    visto = await pila.pago(str(id_pago))
    assert (visto["estado"], visto["requiere_atencion"], visto["resolucion"]) == ("PROCESANDO", True, None)
