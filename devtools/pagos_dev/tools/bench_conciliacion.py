"""The `conciliacion` bench scenario (`pagos-dev bench pipeline conciliacion`): N payments (1,000,000
by default) in PostgreSQL and their transfers in the simulator's ledger, a few hundred planted
differences of every class among them (`bench_conciliacion_siembra`), reconciled end to end by
`pagos-worker conciliar --json` as a subprocess. Measured: every planted difference found with its
class and nothing else; the subprocess's RSS every 0.5 s; the requests the simulator counted
against the share of the budget the run was given; PostgreSQL's statement time (its log)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psutil

from pagos_dev.tools import bench_conciliacion_plan as plan
from pagos_dev.tools.bench_conciliacion_siembra import sembrar
from pagos_dev.tools.cluster import Cluster, ClusterConfig
from pagos_worker.adapters.postgres.database import asyncpg_dsn

PAGOS = 1_000_000
# Stripe's live shape: the account's 100 requests/s (the simulator's limit and the service's
# PAGOS_STRIPE_RATE_LIMIT), the service's default share 0.2 (20/s), and every list answered 200 ms
# late (Stripe's own list latency), so the run is bound by the share as it would be at Stripe.
LIMITE_CUENTA_S = 100.0
SHARE = 0.2  # PAGOS_CONCILIACION_BUDGET_SHARE (the service's default)
LATENCIA_SIMULADOR = "fixed:0"
LATENCIA_LISTADO_S = 0.2
OBJETIVOS = {"rss_mb": 200.0, "uso": 0.90, "postgres_s": 60.0}


def ventana(ahora: datetime) -> tuple[datetime, datetime]:
    """A whole day ending at the last whole hour more than an hour ago (past the settle margin)."""
    hasta = (ahora - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    return hasta - timedelta(days=1), hasta


async def correr(data_dir: Path, pagos: int = PAGOS, postgres_url: str | None = None) -> dict[str, Any]:
    cuota = LIMITE_CUENTA_S * SHARE
    cluster = Cluster(
        ClusterConfig(
            data_dir,
            workers=0,
            postgres_url=postgres_url,
            pulsar_url="pulsar://127.0.0.1:9",  # never started: the reconciliation needs no broker
            worker_env={
                "PAGOS_STRIPE_RATE_LIMIT": f"{LIMITE_CUENTA_S:g}",
                "PAGOS_CONCILIACION_BUDGET_SHARE": f"{SHARE:g}",
                "PAGOS_LOG_LEVEL": "warning",
            },
            simulador_env={
                "PAGOS_SIMULADOR_LATENCY": LATENCIA_SIMULADOR,
                "PAGOS_SIMULADOR_ACCOUNT_RATE_LIMIT": f"{LIMITE_CUENTA_S:g}",
            },
            ledger_en_archivo=True,
        )
    )
    desde, hasta = ventana(datetime.now(UTC))
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    try:
        await cluster.start()  # PostgreSQL, its schema, the simulator on a ledger file; no broker, no worker
        await cluster.stop_simulador()  # its ledger is written here, then served by it as Stripe's
        t0 = time.monotonic()
        dsn = asyncpg_dsn(cluster.database_url)
        siembra = await sembrar(dsn, data_dir / "ledger.sqlite3", pagos, desde, hasta)
        siembra_s = time.monotonic() - t0
        await cluster.start_simulador()
        if LATENCIA_LISTADO_S:
            await cluster.simulador("POST", "/_simulador/fallas", {"latencia_listado_s": LATENCIA_LISTADO_S})
        log_pg = cluster.postgres.log_path if cluster.postgres is not None else None
        if log_pg is not None:  # every statement's time from the next session on: the run's alone
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute("ALTER DATABASE pagos SET log_min_duration_statement = 0")
            finally:
                await conn.close()
        inicio_log = log_pg.stat().st_size if log_pg else 0
        antes = await _peticiones(cluster)
        simulador = psutil.Process(cluster.simulador_pid)
        cpu_simulador = sum(simulador.cpu_times()[:2])
        codigo, salida, rss, muestras, wall, cpu = await _conciliar(cluster, desde, hasta)
        cpu_simulador = sum(simulador.cpu_times()[:2]) - cpu_simulador
        despues = await _peticiones(cluster)
        postgres = None
        if log_pg is not None:
            with log_pg.open("rb") as f:
                f.seek(inicio_log)
                postgres = plan.segundos_postgres(f.read().decode(errors="replace").splitlines())
    finally:
        await cluster.stop()
    resultado = orjson.loads(salida) if salida.strip() else {"diferencias": [], "conteos": {}}
    comparacion = plan.comparar(siembra.esperadas, siembra.coinciden, resultado)
    peticiones = despues - antes
    rss_pico_mb = round(max(rss, default=0) / 2**20, 1)
    uso = plan.uso_del_presupuesto(muestras, cuota)
    informe = {
        "escenario": "conciliacion",
        "pagos": pagos,
        "transfers": siembra.transfers,
        "reversos": siembra.reversos,
        "plantadas": len(siembra.esperadas),
        "por_clase": plan.por_clase(pagos),
        "codigo": codigo,
        "encontradas": comparacion.encontradas,
        "faltantes": [list(k) for k in comparacion.faltantes[:20]],
        "falsas": [list(k) for k in comparacion.falsas[:20]],
        "conteos": resultado.get("conteos"),
        "conteos_ok": comparacion.conteos_ok,
        "siembra_s": round(siembra_s, 1),
        "duracion_s": resultado.get("duracion_s"),
        "wall_s": round(wall, 1),
        "rss_pico_mb": rss_pico_mb,
        "rss_muestras": len(rss),
        # Where the time went: the reader reads page after page, so its rate is 1 / (a page's round
        # trip + its processing); these say whose CPU that was (this machine's cores are shared).
        "cpu_s": {"conciliar": round(cpu, 1), "simulador": round(cpu_simulador, 1)},
        "peticiones": peticiones,
        "peticiones_informadas": resultado.get("peticiones"),
        "presupuesto": {"limite_s": LIMITE_CUENTA_S, "share": SHARE, **uso},
        "postgres": postgres,
        "dia_a_100_s": plan.costo_de_un_dia(max(peticiones, 1), pagos, share=SHARE),
    }
    informe["cumple"] = {
        "diferencias": comparacion.cumple and codigo == 1,
        "rss": rss_pico_mb <= OBJETIVOS["rss_mb"],
        "presupuesto": None if uso["uso"] is None else uso["uso"] >= OBJETIVOS["uso"],
        "postgres": None if postgres is None else postgres["total_s"] < OBJETIVOS["postgres_s"],
    }
    return informe


async def _peticiones(cluster: Cluster) -> int:
    respuestas = (await cluster.simulador("GET", "/_simulador/estadisticas"))["respuestas"]
    return int(respuestas.get("peticiones", 0))


async def _conciliar(
    cluster: Cluster, desde: datetime, hasta: datetime
) -> tuple[int, bytes, list[int], list[tuple[float, int]], float, float]:
    """`pagos-worker conciliar --json` over the window; its RSS and the simulator's request count
    every 0.25 s while it runs (the RSS target asks for 0.5 s at most), and its CPU seconds."""
    args = ("conciliar", "--desde", desde.isoformat(), "--hasta", hasta.isoformat(), "--json")
    with (cluster.config.data_dir / "operador.log").open("ab") as log:
        proceso = await asyncio.create_subprocess_exec(
            *cluster.comando_servicio(*args), env=cluster.entorno_servicio(),
            stdout=asyncio.subprocess.PIPE, stderr=log, stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        inicio = time.monotonic()
        rss: list[int] = []
        muestras: list[tuple[float, int]] = []
        lectura = asyncio.create_task(proceso.communicate())
        ps = psutil.Process(proceso.pid)
        cpu = 0.0
        while not lectura.done():
            try:
                rss.append(ps.memory_info().rss)
                cpu = sum(ps.cpu_times()[:2])
            except psutil.Error:
                pass
            muestras.append((time.monotonic(), await _peticiones(cluster)))
            await asyncio.wait({lectura}, timeout=0.25)
        salida, _ = await lectura
    codigo = -1 if proceso.returncode is None else proceso.returncode
    return codigo, salida or b"", rss, muestras, time.monotonic() - inicio, cpu


def linea(r: dict[str, Any]) -> str:
    c, pres, pg, dia = r["cumple"], r["presupuesto"], r["postgres"] or {}, r["dia_a_100_s"]
    uso = "-" if pres.get("uso") is None else f"{pres['uso']:.1%}"

    def v(ok: bool | None) -> str:
        return "-" if ok is None else "ok" if ok else "FAIL"

    return (
        f"conciliacion {r['pagos']} pagos, {r['plantadas']} planted ({r['por_clase']} of each of 9): "
        f"found {r['encontradas']}, missing {len(r['faltantes'])}, false {len(r['falsas'])}, counts "
        f"{'ok' if r['conteos_ok'] else 'off'} ({v(c['diferencias'])}); RSS peak {r['rss_pico_mb']} MB "
        f"({v(c['rss'])} ≤ 200); {r['peticiones']} requests at {pres.get('peticiones_s')}/s of a "
        f"{pres['cuota_s']:g}/s share: {uso} ({v(c['presupuesto'])} ≥ 90 %); PostgreSQL "
        f"{pg.get('total_s', '-')} s (COPY {pg.get('copy_s', '-')} s) ({v(c['postgres'])} < 60 s); run "
        f"{r['duracion_s']} s (CPU: conciliar {r['cpu_s']['conciliar']} s, simulator "
        f"{r['cpu_s']['simulador']} s); a day of 1,000,000 at 100/s × {dia['share']:g}: {dia['peticiones']} requests, "
        f"{dia['segundos']:g} s"
    )
