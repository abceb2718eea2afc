"""The chaos suite's second, independent judge: once the run is quiet and audited, the reconciliation
an operator would run (`pagos-worker conciliar --json`, through `Cluster.operador_con_salida`, with
the cluster's settings) over the whole run, against its PostgreSQL and the very simulator the
workers paid through. Every payment paid must `coincide` with its one transfer, reversals included,
nothing else may be reported, and it must exit 0.

The window runs from a second before the first command to the database's now less the settle
margin, taken once that is past the moment the run went quiet: every transfer and reversal of the
run was made by then, and the lists' lag (`lista_con_retraso`) had ended long before.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson

from pagos_dev.tools.cluster import Cluster
from pagos_worker.adapters.postgres.conciliacion import CLAVE_DEL_BLOQUEO
from pagos_worker.adapters.postgres.database import asyncpg_dsn
from pagos_worker.domain.conciliacion import ClaseDiferencia

MUESTRA = 5  # differences kept in the report as evidence (all of them stay in the `diferencias` table)
_ESPERA_DEL_BLOQUEO_S = 120.0


async def ahora(database_url: str) -> datetime:
    """The database's time: the one the reconciliation's window is checked against."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        valor: datetime = await conn.fetchval("SELECT now()")
        return valor
    finally:
        await conn.close()


async def conciliar(cluster: Cluster, desde: datetime, quieto_en: datetime, margen_s: float) -> dict[str, Any]:
    """`pagos-worker conciliar` from `desde` to the database's now less `margen_s`, waited for until
    that end is past `quieto_en` (when every payment and reversal of the run had its event)."""
    margen = timedelta(seconds=margen_s)
    limite = await ahora(cluster.database_url) - margen
    if (falta := (quieto_en + timedelta(seconds=1) - limite).total_seconds()) >= 0:
        await asyncio.sleep(falta + 0.1)  # the database's clock runs as this host's monotonic one
        limite = await ahora(cluster.database_url) - margen
    hasta = limite.replace(microsecond=0)
    desde = desde.replace(microsecond=0)
    espera = await _sin_otra_en_curso(cluster.database_url)
    codigo, salida = await cluster.operador_con_salida(
        "conciliar", "--desde", desde.isoformat(), "--hasta", hasta.isoformat(), "--json"
    )
    try:
        r: dict[str, Any] = orjson.loads(salida)
    except orjson.JSONDecodeError:
        r = {}  # it could not run: its reason is in operador.log
    conteos: dict[str, int] = r.get("conteos", {})
    return {
        "conciliacion_ventana": f"{desde.isoformat()} – {hasta.isoformat()}",
        "conciliacion_espera_del_bloqueo_s": round(espera, 1),
        "conciliacion_codigo": codigo,
        "conciliacion_conteos": conteos,
        "conciliacion_coincide": conteos.get(ClaseDiferencia.COINCIDE.value, 0),
        # None when it printed no result: not 0, so that the audit counts it as broken.
        "conciliacion_diferencias": r.get("total_diferencias"),
        "conciliacion_muestra": r.get("diferencias", [])[:MUESTRA],
        "conciliacion_peticiones": r.get("peticiones"),
        "conciliacion_duracion_s": r.get("duracion_s"),
        "conciliaciones_programadas": await _programadas(cluster.database_url),
    }


async def _sin_otra_en_curso(database_url: str) -> float:
    """Wait while another run holds the reconciliation's lock (a restarted worker's scheduled pass
    runs as it starts), so that the operator's is not refused for it. Returns how long it waited."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    loop = asyncio.get_running_loop()
    inicio = loop.time()
    try:
        while loop.time() - inicio < _ESPERA_DEL_BLOQUEO_S:
            tomado = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND ((classid::bigint << 32) | objid::bigint) = $1 AND objsubid = 1)",
                CLAVE_DEL_BLOQUEO,
            )
            if not tomado:
                break
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    return loop.time() - inicio


async def _programadas(database_url: str) -> dict[str, Any]:
    """The worker replicas' scheduled passes during the run (each restart runs one), as information:
    their windows end the settle margin before they start, mid-run for a replica restarted then."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        filas = await conn.fetch("SELECT estado, conteos FROM conciliaciones WHERE origen = 'programada'")
    finally:
        await conn.close()
    diferencias: dict[str, int] = {}
    for f in filas:
        for clase, n in orjson.loads(f["conteos"] or "{}").items():
            if clase != ClaseDiferencia.COINCIDE.value and n:
                diferencias[clase] = diferencias.get(clase, 0) + n
    estados: dict[str, int] = {}
    for f in filas:
        estados[f["estado"]] = estados.get(f["estado"], 0) + 1
    return {"pasadas": len(filas), "por_estado": estados, "diferencias": diferencias}


CERO = ("conciliacion_codigo", "conciliacion_diferencias")


def violaciones(informe: dict[str, Any]) -> list[str]:
    """Beyond `CERO`: it must have judged every payment paid, not an empty window."""
    if informe["conciliacion_coincide"] != informe["pagos_pagados"]:
        return [f"conciliacion_coincide = {informe['conciliacion_coincide']} (debe ser {informe['pagos_pagados']})"]
    return []


def filas_de_tabla(informe: dict[str, Any]) -> list[tuple[str, object, str]]:
    diferencias = " ".join(
        f"{k}={v}" for k, v in sorted(informe["conciliacion_conteos"].items()) if v and k != "coincide"
    )
    programadas = informe["conciliaciones_programadas"]
    estados = " ".join(f"{k}={v}" for k, v in sorted(programadas["por_estado"].items())) or "ninguna"
    de_programadas = " ".join(f"{k}={v}" for k, v in sorted(programadas["diferencias"].items())) or "ninguna"
    return [
        ("conciliar: coincide / pagos pagados",
         f"{informe['conciliacion_coincide']} / {informe['pagos_pagados']}", "iguales"),
        ("conciliar: diferencias", informe["conciliacion_diferencias"], "0"),
        ("  por clase", diferencias or "-", ""),
        ("conciliar: código de salida", informe["conciliacion_codigo"], "0"),
        ("conciliar: peticiones a Stripe / duración (s)",
         f"{informe['conciliacion_peticiones']} / {informe['conciliacion_duracion_s']}", ""),
        ("pasadas programadas durante el caos", f"{estados}; diferencias: {de_programadas}", "(informativo)"),
    ]  # fmt: skip
