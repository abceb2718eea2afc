"""The chaos suite: the whole pipeline as separate processes (embedded PostgreSQL and broker, the
Stripe simulator, two worker replicas) takes several thousand commands — exact duplicates and
malformed ones among them — while workers are SIGKILLed, the broker and PostgreSQL are restarted,
the gateway times out after succeeding, PostgreSQL turns read-only for a while (a failover) and the
service's database connections freeze (a partition). Then it waits for quiescence and audits:
nothing lost, nothing paid twice (the simulator's ledger), one distinct event per payment, none
missing, every malformed command on the DLQ and no well-formed one, no payment left neither final
nor flagged for operators, and how long the pipeline took to recover from each fault. Last, the
reconciliation an operator would run (`pagos-worker conciliar`) judges the whole run on its own:
every payment paid must coincide with its one transfer at the simulator, and nothing else show.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import asyncpg
import orjson

from pagos_dev.tools import chaos_conciliacion, chaos_reversos
from pagos_dev.tools.cluster import Cluster, ClusterConfig, sleep_until
from pagos_dev.tools.observador import Lector, Mensaje, Publicador, cliente
from pagos_worker.adapters.postgres.database import asyncpg_dsn
from pagos_worker.config import CONTRACT_COMMANDS_TOPIC, CONTRACT_DLQ_TOPIC, CONTRACT_EVENTS_TOPIC
from pagos_worker.contract.wire import ComandoInvalidoError, decode

Accion = Callable[[Cluster], Awaitable[None]]

WORKER_ENV = {
    "PAGOS_LEASE_SECONDS": "5",
    "PAGOS_NACK_DELAY_SECONDS": "0.5",
    "PAGOS_STRIPE_TIMEOUT_SECONDS": "1",
    "PAGOS_STRIPE_MAX_ATTEMPTS": "3",
    "PAGOS_STRIPE_RATE_LIMIT": "2000",
    "PAGOS_RECONCILE_GRACE_SECONDS": "10",
    "PAGOS_RECONCILE_INTERVAL_SECONDS": "5",
    "PAGOS_SHUTDOWN_TIMEOUT_SECONDS": "5",
    "PAGOS_RETRY_BACKOFF_MAX_SECONDS": "5",
    # Unknown outcomes retried for minutes rather than flagged after a few attempts: a payment the
    # gateway answered with a saved 500 and no transfer is retried past the simulator's 30 s key
    # lifetime, so that keys are forgotten under payments still in flight (the lookup before each
    # retry must keep them from being paid twice), and the run ends with every payment final.
    "PAGOS_ATTENTION_AFTER_ATTEMPTS": "100000",
    "PAGOS_ATTENTION_AFTER_SECONDS": "600",
    # A key spent by a saved 500 is renewed once the earlier calls are this old and a lookup finds
    # nothing: seconds here, not Stripe's minutes, but longer than the lists' lag below.
    "PAGOS_SETTLE_MARGIN_SECONDS": "15",
    "PAGOS_LOG_LEVEL": "WARNING",
}
# One replica's host clock runs minutes ahead: only the database's clock may decide who acts.
RELOJ_DEL_WORKER_1_S = 300.0
SIMULADOR_ENV = {
    "PAGOS_SIMULADOR_LATENCY": "lognormal:20:150",
    "PAGOS_SIMULADOR_DECLINE_RATE": "0.10",
    "PAGOS_SIMULADOR_ERROR_RATE": "0.02",
    "PAGOS_SIMULADOR_RATE_LIMIT_RATE": "0.01",
    "PAGOS_SIMULADOR_SEED": "7",
    # Keys kept 30 s instead of Stripe's 24 hours: keys are forgotten while payments whose outcome
    # is unknown are still retried with them; the lookup before every retry must keep those from
    # being paid twice.
    "PAGOS_SIMULADOR_IDEMPOTENCY_TTL_S": "30",
}


def matar_y_revivir(i: int, pausa: float = 1.0) -> Accion:
    async def accion(cluster: Cluster) -> None:
        await cluster.kill_worker(i)
        await asyncio.sleep(pausa)
        await cluster.start_worker(i)

    return accion


async def reiniciar_broker(cluster: Cluster) -> None:
    await cluster.restart_broker()


async def reiniciar_postgres(cluster: Cluster) -> None:
    await cluster.restart_postgres()


def timeouts_tras_exito(segundos: float, tasa: float = 0.5) -> Accion:
    async def accion(cluster: Cluster) -> None:
        await cluster.simulador("POST", "/_simulador/fallas", {"tasa_timeout_tras_exito": tasa, "cuelgue_s": 10})
        await asyncio.sleep(segundos)
        await cluster.simulador("POST", "/_simulador/fallas", {"tasa_timeout_tras_exito": 0})

    return accion


def quinientos_guardados(segundos: float, tasa: float = 0.1) -> Accion:
    """The gateway saves a 500 under the key for `tasa` of first attempts (and replays it), having
    made the transfer for half of them: only a lookup tells those apart."""

    async def accion(cluster: Cluster) -> None:
        await cluster.simulador("POST", "/_simulador/fallas", {"tasa_500_guardado": tasa})
        await asyncio.sleep(segundos)
        await cluster.simulador("POST", "/_simulador/fallas", {"tasa_500_guardado": 0})

    return accion


RETRASO_LISTADO_S = 10.0  # below the simulator's 30 s key lifetime: a key is forgotten only once listed


def lista_con_retraso(segundos: float, tasa: float = 0.3) -> Accion:
    """Stripe's lists trail its writes: every transfer made meanwhile is listed only
    `RETRASO_LISTADO_S` after it was made, while `tasa` of the calls time out after succeeding
    (keys are pruned after 30 s): a lookup right after a timeout proves nothing."""

    async def accion(cluster: Cluster) -> None:
        await cluster.simulador("POST", "/_simulador/fallas", {
            "retraso_listado_s": RETRASO_LISTADO_S, "tasa_timeout_tras_exito": tasa, "cuelgue_s": 10,
        })  # fmt: skip
        await asyncio.sleep(segundos)
        await cluster.simulador("POST", "/_simulador/fallas", {"retraso_listado_s": 0, "tasa_timeout_tras_exito": 0})

    return accion


def consultas_lentas(segundos: float, tasa: float = 0.3) -> Accion:
    """Every lookup slower than a worker's lease (each list answered after 6 s, the lease is 5 s),
    while `tasa` of the calls time out after succeeding, so that retries must look up."""

    async def accion(cluster: Cluster) -> None:
        await cluster.simulador("POST", "/_simulador/fallas", {
            "latencia_listado_s": 6, "tasa_timeout_tras_exito": tasa, "cuelgue_s": 10,
        })  # fmt: skip
        await asyncio.sleep(segundos)
        await cluster.simulador("POST", "/_simulador/fallas", {"latencia_listado_s": 0, "tasa_timeout_tras_exito": 0})

    return accion


async def reiniciar_simulador(cluster: Cluster) -> None:
    await cluster.restart_simulador()


def solo_lectura(segundos: float) -> Accion:
    async def accion(cluster: Cluster) -> None:
        await cluster.postgres_solo_lectura(activar=True)
        await asyncio.sleep(segundos)
        await cluster.postgres_solo_lectura(activar=False)

    return accion


async def congelar_postgres(cluster: Cluster) -> None:
    cluster.congelar_conexiones_postgres()


def operador_desfasado(desfase: float, cuantos: int = 2) -> Accion:
    """An operator whose laptop clock is `desfase` seconds off (more than a lease and the settle
    margin together: on its own clock every lease has expired and every call settled) tries
    `pagos resolver`, `resolver --fallido` and `reanudar` on payments a worker holds right now (a
    live lease by the database's clock): every one must be refused. One taken would show in the
    audit (`resueltos_a_mano`, and a FALLIDO paid)."""

    async def accion(cluster: Cluster) -> None:
        for _ in range(cuantos):
            for orden in (("resolver", "--fallido", "caos: reloj desfasado"), ("resolver",), ("reanudar",)):
                # Each command on a payment a worker holds now, its lease far enough from its end to
                # outlast the operator's start: one that expired or was given back since (its holder
                # killed, or an outcome unknown) may be taken by an operator, as it should be.
                if (id_pago := await _uno_en_curso(cluster.database_url)) is not None:
                    await cluster.operador("pagos", orden[0], id_pago, *orden[1:], desfase=desfase)

    return accion


async def _uno_en_curso(database_url: str, espera_max: float = 10.0) -> str | None:
    """A payment held with its lease far from its end, as soon as there is one (None: none came)."""
    limite = time.monotonic() + espera_max
    while time.monotonic() < limite:
        if ids := await _en_curso(database_url, 1):
            return ids[0]
        await asyncio.sleep(0.05)
    return None


# How much of its lease a payment must have left for an operator command to be tried on it: more
# than the operator's process takes to start and read it on a loaded machine.
_LEASE_RESTANTE_S = 3.0


async def _en_curso(database_url: str, cuantos: int) -> list[str]:
    filas = await _consultar(
        database_url,
        "SELECT id_pago::text AS id FROM pagos WHERE estado = 'PROCESANDO' "
        "AND lease_expira > clock_timestamp() + make_interval(secs => $2) LIMIT $1",
        cuantos,
        _LEASE_RESTANTE_S,
    )
    return [f["id"] for f in filas]


async def _consultar(database_url: str, sql: str, *argumentos: object) -> list[Any]:
    """One query on the cluster's database, on a connection of its own."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return list(await conn.fetch(sql, *argumentos))
    finally:
        await conn.close()


@dataclass(frozen=True)
class Falla:
    nombre: str
    inicio: float  # seconds after publishing starts
    accion: Accion
    en_paralelo: bool = False  # runs beside the faults after it, instead of holding them up


@dataclass(frozen=True)
class ChaosConfig:
    comandos: int
    duplicados: int
    malformados: int
    rate: float  # commands a second
    fallas: tuple[Falla, ...]
    espera_max: float = 120.0

    @classmethod
    def completa(cls) -> ChaosConfig:
        return cls(8400, 200, 100, 80.0, (
            Falla("SIGKILL del worker 0", 5, matar_y_revivir(0)),
            Falla("reinicio del broker", 14, reiniciar_broker),
            Falla("reinicio de PostgreSQL (parada inmediata)", 23, reiniciar_postgres),
            Falla("pasarela: timeout tras éxito durante 8 s", 32, timeouts_tras_exito(8)),
            Falla("SIGKILL del worker 1", 44, matar_y_revivir(1)),
            Falla("SIGKILL del worker 0", 50, matar_y_revivir(0)),
            Falla("PostgreSQL de solo lectura durante 30 s", 60, solo_lectura(30)),
            Falla("conexiones a PostgreSQL congeladas", 100, congelar_postgres),
            Falla("pasarela: 500 guardados en el 10 % durante 20 s", 76, quinientos_guardados(20)),
            Falla("reinicio de la pasarela (ledger conservado)", 92, reiniciar_simulador),
            Falla("operador con el reloj 10 min adelantado", 40, operador_desfasado(600)),
            Falla("operador con el reloj 10 min atrasado", 54, operador_desfasado(-600), en_paralelo=True),
            Falla("pasarela: listas con 10 s de retraso y timeouts tras éxito, 12 s", 12, lista_con_retraso(12),
                  en_paralelo=True),
            Falla("pasarela: consultas más lentas que el lease, 10 s", 44, consultas_lentas(10), en_paralelo=True),
        ), espera_max=180)  # fmt: skip

    @classmethod
    def corta(cls) -> ChaosConfig:
        return cls(1700, 40, 20, 50.0, (
            Falla("SIGKILL del worker 0", 2, matar_y_revivir(0)),
            Falla("reinicio del broker", 5, reiniciar_broker),
            Falla("reinicio de PostgreSQL (parada inmediata)", 8, reiniciar_postgres),
            Falla("pasarela: timeout tras éxito durante 2 s", 10, timeouts_tras_exito(2)),
            Falla("PostgreSQL de solo lectura durante 8 s", 18, solo_lectura(8)),
            Falla("conexiones a PostgreSQL congeladas", 32, congelar_postgres),
            Falla("pasarela: 500 guardados en el 10 % durante 6 s", 12, quinientos_guardados(6)),
            Falla("reinicio de la pasarela (ledger conservado)", 26, reiniciar_simulador),
            Falla("operador con el reloj 10 min adelantado", 14, operador_desfasado(600, cuantos=1)),
            Falla("pasarela: listas con 10 s de retraso y timeouts tras éxito, 4 s", 20, lista_con_retraso(4),
                  en_paralelo=True),
            Falla("pasarela: consultas más lentas que el lease, 4 s", 28, consultas_lentas(4), en_paralelo=True),
        ), espera_max=120)  # fmt: skip


def generar(config: ChaosConfig, rng: random.Random) -> tuple[list[Mensaje], list[str], set[bytes], dict[str, str]]:
    """Messages to send (in order), the id_pago of the valid payment each is (or ""), the malformed,
    and the reversals put in among them (id_reverso → id_pago)."""
    validos = [
        {
            "id_pago": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "id_afiliado": f"afiliado_{rng.randrange(500)}",
            "monto": f"{rng.randrange(100, 500_000) / 100:.2f}",
            "moneda": rng.choice(["USD", "EUR", "COP"]),
        }
        for _ in range(config.comandos)
    ]
    # Each malformed command is distinct, so that the audit can find every one on the DLQ.
    plantillas = [
        b"no es json %d",
        b'{"id_pago": "x-%d"}',
        b"[%d]",
        b'{"id_pago": "%d", "monto": "1"}',
        b'{"id_pago": "00000000-0000-4000-8000-%012d", "id_afiliado": "a", "monto": "0", "moneda": "USD"}',
    ]
    malformados = [plantillas[i % len(plantillas)] % i for i in range(config.malformados)]
    mensajes: list[tuple[bytes, str | None, str]] = [(orjson.dumps(c), c["id_pago"], c["id_pago"]) for c in validos]
    mensajes += [(orjson.dumps(c), c["id_pago"], c["id_pago"]) for c in rng.sample(validos, config.duplicados)]
    mensajes += [(m, None, "") for m in malformados]
    rng.shuffle(mensajes)
    con_reversos, reversos = chaos_reversos.tejer(mensajes, validos, rng)
    ids = ["" if ident in reversos else ident for _, ident in con_reversos]
    return [mensaje for mensaje, _ in con_reversos], ids, set(malformados), reversos


async def correr(
    config: ChaosConfig,
    data_dir: Path,
    *,
    progreso: Callable[[str], None] = print,
    broker: Literal["pulsar-lite", "pulsar"] = "pulsar-lite",
) -> dict[str, Any]:
    """One run; `broker="pulsar"`: on Apache Pulsar standalone (no graceful proxy, no consumer-id
    offsets: the replicas are killed and share the subscription as in production)."""
    cluster = Cluster(
        ClusterConfig(
            data_dir, workers=2, worker_env=WORKER_ENV, simulador_env=SIMULADOR_ENV, postgres_por_proxy=True,
            relojes_desfasados={1: RELOJ_DEL_WORKER_1_S}, broker=broker,
        )
    )  # fmt: skip
    nombre = "Apache Pulsar" if broker == "pulsar" else "pulsar-lite"
    progreso(
        f"arrancando: PostgreSQL, {nombre}, simulador y 2 workers, el 1 con el reloj {RELOJ_DEL_WORKER_1_S:+g} s "
        f"(datos y logs en {data_dir})"
    )
    await cluster.start()
    client = cliente(cluster.pulsar_url, data_dir / "observador-pulsar.log")
    eventos = Lector(client, CONTRACT_EVENTS_TOPIC, "chaos-eventos")
    dlq = Lector(client, CONTRACT_DLQ_TOPIC, "chaos-dlq")
    publicador = Publicador(client, CONTRACT_COMMANDS_TOPIC)
    try:
        mensajes, ids, malformados, reversos = generar(config, random.Random(2026))  # noqa: S311 - test data
        progreso(
            f"publicando {len(mensajes)} mensajes ({len(reversos)} reversos entre ellos) a {config.rate:g}/s "
            f"con {len(config.fallas)} fallas"
        )
        loop = asyncio.get_running_loop()
        # The reconciliation's window starts before the first command, on the database's clock.
        desde = await chaos_conciliacion.ahora(cluster.database_url) - timedelta(seconds=1)
        t0 = loop.time()
        publicador.empezar(mensajes, config.rate)
        fallas: list[dict[str, Any]] = []

        async def ejecutar(falla: Falla) -> None:
            inicio = time.monotonic()
            await falla.accion(cluster)
            fin = time.monotonic()
            fallas.append({"falla": falla.nombre, "inicio": inicio, "fin": fin})
            progreso(f"  {falla.nombre}: hecho en {fin - inicio:.1f} s")

        # In the order of their start times, each at its time or once the one before has ended; a
        # fault `en_paralelo` does not hold up the next one.
        paralelas = []
        for falla in sorted(config.fallas, key=lambda f: f.inicio):
            await sleep_until(t0, falla.inicio)
            if falla.en_paralelo:
                paralelas.append(asyncio.create_task(ejecutar(falla)))
            else:
                await ejecutar(falla)
        await asyncio.gather(*paralelas)
        await asyncio.to_thread(publicador.esperar)
        validos = {i for i in ids if i}
        quieto = await _esperar_quietud(eventos, dlq, validos | set(reversos), malformados, config.espera_max)
        quieto_en = await chaos_conciliacion.ahora(cluster.database_url)
        # A second, late event would show up now; every transfer made is listed by now too.
        await asyncio.sleep(max(3.0, RETRASO_LISTADO_S))
        observado = _Observado(publicador, eventos, dlq, ids, malformados, fallas, quieto, reversos)
        informe = await _auditar(cluster, config, observado)
        margen = float(WORKER_ENV["PAGOS_SETTLE_MARGIN_SECONDS"])
        return informe | await chaos_conciliacion.conciliar(cluster, desde, quieto_en, margen)
    finally:
        for cerrable in (eventos, dlq, publicador):
            cerrable.cerrar()
        client.close()
        await cluster.stop()


async def _esperar_quietud(
    eventos: Lector, dlq: Lector, validos: set[str], malformados: set[bytes], maximo: float
) -> bool:
    limite = time.monotonic() + maximo
    while time.monotonic() < limite:
        con_evento = {e.id_reverso or e.id_pago for e in list(eventos.eventos)}
        if validos <= con_evento and malformados <= {data for data, _ in list(dlq.mensajes)}:
            return True
        await asyncio.sleep(0.5)
    return False


@dataclass
class _Observado:
    """Everything the run saw, for the audit."""

    publicador: Publicador
    eventos: Lector
    dlq: Lector
    ids: list[str]  # the valid command's id of each message sent, or ""
    malformados: set[bytes]
    fallas: list[dict[str, Any]]
    quieto: bool
    reversos: dict[str, str]  # id_reverso → id_pago of every reversal published


async def _auditar(cluster: Cluster, config: ChaosConfig, obs: _Observado) -> dict[str, Any]:
    publicador, eventos, dlq, ids, malformados = obs.publicador, obs.eventos, obs.dlq, obs.ids, obs.malformados
    validos = {i for i in ids if i}
    enviado: dict[str, float] = {}
    for i, id_pago in enumerate(ids):
        if id_pago and i < len(publicador.enviados):
            enviado.setdefault(id_pago, publicador.enviados[i])
    por_pago: dict[str, set[str]] = {}
    primero: dict[str, float] = {}
    entregas: dict[str, int] = {}
    tipos: dict[str, str] = {}
    reversado: dict[str, Decimal] = {}  # what the PagoReversado events say came back of each payment
    for e in eventos.eventos:
        entregas[e.event_id] = entregas.get(e.event_id, 0) + 1
        if e.de_reverso:
            if e.event_type == "PagoReversado" and e.monto is not None and entregas[e.event_id] == 1:
                reversado[e.id_pago] = reversado.get(e.id_pago, Decimal(0)) + Decimal(e.monto)
            continue
        por_pago.setdefault(e.id_pago, set()).add(e.event_id)
        primero.setdefault(e.id_pago, e.recibido)
        tipos[e.id_pago] = e.event_type
    filas = await _estados(cluster.database_url, sorted(validos))
    resueltos_a_mano = await _resueltos_a_mano(cluster.database_url)
    transfers: dict[str, list[str]] = {}
    for t in await cluster.ledger():
        transfers.setdefault(t["metadata"]["id_pago"], []).append(t["id"])
    finales = {i for i, f in filas.items() if f["estado"] in ("EXITOSO", "FALLIDO", "REVERSADO")}
    senalados = {i for i, f in filas.items() if f["requiere_atencion"]} | await _venenosos(cluster.database_url)
    exitosos = {i for i, f in filas.items() if f["estado"] in ("EXITOSO", "REVERSADO")}  # paid (and maybe returned)
    filas_reversos = await _estados_reversos(cluster.database_url, sorted(obs.reversos))
    de_reversos = await chaos_reversos.auditar(cluster, eventos.eventos, obs.reversos, filas_reversos)
    latencias = sorted(primero[i] - enviado[i] for i in validos if i in primero and i in enviado)
    en_dlq = [data for data, _ in dlq.mensajes]
    return {
        "comandos_publicados": len(validos),
        "duplicados_exactos_publicados": config.duplicados,
        "malformados_publicados": len(malformados),
        "mensajes_confirmados_por_el_broker": publicador.confirmados,
        "quietud_alcanzada": obs.quieto,
        "pagos_finales": len(finales),
        "pagos_pagados": len(exitosos),
        "pagos_perdidos": len(validos - finales),
        "pagados_dos_veces": sum(1 for ts in transfers.values() if len(ts) > 1),
        "exitosos_sin_transfer": len(exitosos - set(transfers)),
        "fallidos_con_transfer": len((finales - exitosos) & set(transfers)),
        "referencia_distinta_del_transfer": sum(
            1 for i in exitosos if i in transfers and filas[i]["referencia_pago"] not in transfers[i]
        ),
        "pagos_con_mas_de_un_evento": sum(1 for evs in por_pago.values() if len(evs) > 1),
        "eventos_faltantes": len(finales - set(por_pago)),
        "estado_distinto_del_evento": sum(
            1
            for i in finales & set(tipos)
            if {"EXITOSO": "PagoExitoso", "REVERSADO": "PagoExitoso", "FALLIDO": "PagoFallido"}[filas[i]["estado"]]
            != tipos[i]
        ),
        # What the store says came back of each payment, against its PagoReversado events.
        "monto_reversado_distinto_de_los_eventos": sum(
            1 for i, f in filas.items() if f["monto_reversado"] != reversado.get(i, Decimal(0))
        ),
        **de_reversos,
        "entregas_repetidas_del_mismo_evento": sum(n - 1 for n in entregas.values()),
        # Distinct: a dead letter whose acknowledgement was lost (a SIGKILL, a broker restart) is
        # dead-lettered again; DLQ readers de-duplicate by `message_id_origen`.
        "malformados_en_dlq": len(set(en_dlq) & malformados),
        "entregas_repetidas_en_dlq": len(en_dlq) - len(set(en_dlq)),
        "otros_en_dlq": sum(1 for d in en_dlq if d not in malformados),
        # A well-formed command dead-lettered (an outage taken for poison, a payment busy elsewhere).
        "bien_formados_en_dlq": sum(1 for d, p in dict(dlq.mensajes).items() if _bien_formado(d, p)),
        "motivos_en_dlq": dict(Counter(p.get("motivo", "?") for _, p in dlq.mensajes)),
        # Neither paid, nor refused, nor in front of an operator: silently stuck.
        "ni_finales_ni_senalados": len(validos - finales - senalados),
        # Operators (clocks off) only ever tried payments a worker held: none may have been taken.
        "resueltos_a_mano": resueltos_a_mano,
        "requieren_atencion": sum(1 for f in filas.values() if f["requiere_atencion"]),
        "latencia_s": percentiles(latencias),
        "fallas": [_recuperacion(f, enviado, primero) for f in obs.fallas],
        "workers_vivos_al_final": sum(cluster.worker_alive(i) for i in range(len(cluster.workers))),
    }


def _bien_formado(data: bytes, propiedades: dict[str, str]) -> bool:
    try:
        decode(data, propiedades)
    except ComandoInvalidoError:
        return False
    return True


async def _resueltos_a_mano(database_url: str) -> int:
    [fila] = await _consultar(database_url, "SELECT count(*) AS n FROM resoluciones")
    return int(fila["n"])


async def _venenosos(database_url: str) -> set[str]:
    """Payments whose command was recorded as poison (operators see them)."""
    filas = await _consultar(
        database_url,
        "SELECT id_pago::text AS id FROM comandos_fallidos WHERE venenoso_desde IS NOT NULL AND id_pago IS NOT NULL",
    )
    return {f["id"] for f in filas}


async def _estados(database_url: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    filas = await _consultar(
        database_url,
        "SELECT id_pago::text AS id, estado, referencia_pago, requiere_atencion, monto_reversado FROM pagos "
        "WHERE id_pago = ANY($1::uuid[])",
        ids,
    )
    return {f["id"]: dict(f) for f in filas}


async def _estados_reversos(database_url: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    filas = await _consultar(
        database_url,
        "SELECT id_reverso::text AS id, estado, requiere_atencion FROM reversos WHERE id_reverso = ANY($1::uuid[])",
        ids,
    )
    return {f["id"]: dict(f) for f in filas}


def _recuperacion(falla: dict[str, Any], enviado: dict[str, float], primero: dict[str, float]) -> dict[str, Any]:
    """Payments in flight around the fault (sent from 2 s before it until it ended): how long until
    the last of them had its event, counted from the fault's start and from its end."""
    afectados = [i for i, t in enviado.items() if falla["inicio"] - 2 <= t <= falla["fin"]]
    ultimo = max((primero[i] for i in afectados if i in primero), default=falla["fin"])
    return {
        "falla": falla["falla"],
        "duracion_s": round(falla["fin"] - falla["inicio"], 2),
        "pagos_afectados": len(afectados),
        "sin_evento": sum(1 for i in afectados if i not in primero),
        "recuperacion_s": round(ultimo - falla["inicio"], 2),
        "recuperacion_tras_el_fin_s": round(max(0.0, ultimo - falla["fin"]), 2),
    }


def percentiles(valores: list[float], *, escala: float = 1.0, decimales: int = 3) -> dict[str, float]:
    """p50/p95/p99/max of `valores`, times `escala` (1000: seconds to ms)."""
    if not valores:
        return {}
    valores = sorted(valores)
    q = statistics.quantiles(valores, n=100, method="inclusive") if len(valores) > 1 else valores * 99
    return {
        k: round(v * escala, decimales)
        for k, v in (("p50", q[49]), ("p95", q[94]), ("p99", q[98]), ("max", valores[-1]))
    }


CERO = (
    "pagos_perdidos", "pagados_dos_veces", "exitosos_sin_transfer", "fallidos_con_transfer",
    "referencia_distinta_del_transfer", "pagos_con_mas_de_un_evento", "eventos_faltantes",
    "estado_distinto_del_evento", "otros_en_dlq", "bien_formados_en_dlq", "ni_finales_ni_senalados",
    "resueltos_a_mano", "monto_reversado_distinto_de_los_eventos", *chaos_reversos.CERO,
    *chaos_conciliacion.CERO,
)  # fmt: skip


def violaciones(informe: dict[str, Any]) -> list[str]:
    """Every invariant the run broke (empty when all hold)."""
    malas = [f"{k} = {informe[k]} (debe ser 0)" for k in CERO if informe[k] != 0]
    if informe["malformados_en_dlq"] != informe["malformados_publicados"]:
        malas.append(
            f"malformados_en_dlq = {informe['malformados_en_dlq']} (debe ser {informe['malformados_publicados']})"
        )
    if informe["pagos_finales"] != informe["comandos_publicados"]:
        malas.append(f"pagos_finales = {informe['pagos_finales']} (debe ser {informe['comandos_publicados']})")
    return malas + chaos_conciliacion.violaciones(informe)


def tabla(informe: dict[str, Any]) -> str:
    filas = [
        ("comandos publicados (distintos)", informe["comandos_publicados"], ""),
        ("  + duplicados exactos / malformados",
         f"{informe['duplicados_exactos_publicados']} / {informe['malformados_publicados']}", ""),
        ("pagos en estado final", informe["pagos_finales"], f"= {informe['comandos_publicados']}"),
        ("pagos perdidos", informe["pagos_perdidos"], "0"),
        ("pagados dos veces (ledger del simulador)", informe["pagados_dos_veces"], "0"),
        ("EXITOSO sin transfer / FALLIDO con transfer",
         f"{informe['exitosos_sin_transfer']} / {informe['fallidos_con_transfer']}", "0 / 0"),
        ("pagos con más de un evento distinto", informe["pagos_con_mas_de_un_evento"], "0"),
        ("eventos que faltan", informe["eventos_faltantes"], "0"),
        ("estado distinto del evento", informe["estado_distinto_del_evento"], "0"),
        ("malformados en la DLQ (distintos)", informe["malformados_en_dlq"], f"= {informe['malformados_publicados']}"),
        ("entregas repetidas en la DLQ", informe["entregas_repetidas_en_dlq"], "(al menos una vez)"),
        ("otros mensajes en la DLQ", informe["otros_en_dlq"], "0"),
        ("comandos bien formados en la DLQ", informe["bien_formados_en_dlq"], "0"),
        ("pagos ni finales ni señalados", informe["ni_finales_ni_senalados"], "0"),
        ("pagos en curso tomados por un operador desfasado", informe["resueltos_a_mano"], "0"),
        ("entregas repetidas de un mismo evento", informe["entregas_repetidas_del_mismo_evento"], "(al menos una vez)"),
        ("pagos que requieren atención", informe["requieren_atencion"], ""),
        ("latencia publicación → evento (s)", " ".join(f"{k}={v}" for k, v in informe["latencia_s"].items()), ""),
        ("monto_reversado del pago ≠ eventos PagoReversado", informe["monto_reversado_distinto_de_los_eventos"], "0"),
        *chaos_reversos.filas_de_tabla(informe),
        *chaos_conciliacion.filas_de_tabla(informe),
    ]  # fmt: skip
    lineas = [f"{'comprobación':<46} {'valor':>22}  esperado", "-" * 80]
    lineas += [f"{nombre:<46} {valor!s:>22}  {esperado}" for nombre, valor, esperado in filas]
    lineas += ["", f"{'falla':<46} {'afectados':>9} {'recuperación':>13} {'tras el fin':>11}", "-" * 80]
    lineas += [
        f"{f['falla']:<46} {f['pagos_afectados']:>9} {f['recuperacion_s']:>12}s {f['recuperacion_tras_el_fin_s']:>10}s"
        for f in informe["fallas"]
    ]
    return "\n".join(lineas)
