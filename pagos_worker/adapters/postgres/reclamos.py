"""The writes of a claim that payments and reversals share (one mechanism, two tables): give an item
back, and record its next key generation. Both are fenced on the claim number and decided on the
database's clock; see `PagoRepository.liberar` and `PagoRepository.renovar_clave`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker import observability as metrics
from pagos_worker.adapters.postgres.driver import PreparedStatement, fetch
from pagos_worker.adapters.postgres.retry import retry_transient
from pagos_worker.application.ports.repository import Liberacion
from pagos_worker.domain.pago import Pago
from pagos_worker.domain.reclamo import PoliticaAtencion, Reclamable
from pagos_worker.domain.reverso import Reverso

Tabla = Literal["pagos", "reversos"]
_IDS: dict[Tabla, str] = {"pagos": "id_pago", "reversos": "id_reverso"}


def _renovar(tabla: Tabla) -> PreparedStatement:
    # The next key generation, only under this claim, only once the current key may not be sent
    # (spent, or past its life) and the earlier claims' calls are a settle margin old: what a call
    # we gave up on did would be listed by now, and the lookup that preceded this found nothing.
    return PreparedStatement(
        text(f"""
UPDATE {tabla} SET clave_generacion = :generacion, clave_desde = clock_timestamp(), clave_agotada = false
WHERE {_IDS[tabla]} = :id AND estado = 'PROCESANDO' AND reclamo = :reclamo AND clave_generacion = :generacion - 1
    AND (clave_agotada OR clock_timestamp() - clave_desde >= make_interval(secs => :vida_s))
    AND (fin_llamadas_previas IS NULL OR fin_llamadas_previas + make_interval(secs => :margen_s) <= clock_timestamp())
RETURNING clave_desde
""")  # noqa: S608 - a fixed table name; every value is bound
    )


def _liberar(tabla: Tabla) -> PreparedStatement:
    # Given back under this claim only. Its calls ended now (it called) or when the earlier claims'
    # did (it sent nothing); the lease ends now, or once those calls are a settle margin old (it
    # waits for them). Its age, by the database's clock, may flag it.
    return PreparedStatement(
        text(f"""
UPDATE {tabla} SET
    lease_expira = CASE WHEN :espera
        THEN GREATEST(clock_timestamp(), fin_llamadas_previas + make_interval(secs => :margen_s))
        ELSE clock_timestamp() END,
    fin_llamadas = CASE WHEN :llamo THEN clock_timestamp() ELSE fin_llamadas_previas END,
    ultimo_error = :ultimo_error, intentos = :intentos, clave_agotada = :clave_agotada,
    requiere_atencion = :requiere_atencion
        OR (:llamo AND clock_timestamp() - fecha_creacion >= make_interval(secs => :antiguedad_s))
WHERE {_IDS[tabla]} = :id AND estado = 'PROCESANDO' AND reclamo = :reclamo
RETURNING requiere_atencion
""")  # noqa: S608 - a fixed table name; every value is bound
    )


_RENOVAR = {tabla: _renovar(tabla) for tabla in _IDS}
_LIBERAR = {tabla: _liberar(tabla) for tabla in _IDS}


def _tabla(item: Reclamable) -> tuple[Tabla, object]:
    if isinstance(item, Pago):
        return "pagos", item.id_pago
    if isinstance(item, Reverso):
        return "reversos", item.id_reverso
    raise TypeError(f"no es un reclamable almacenado: {type(item).__name__}")


async def renovar_clave(engine: AsyncEngine, item: Reclamable, politica: PoliticaAtencion) -> datetime | None:
    tabla, ident = _tabla(item)
    params = {
        "id": ident,
        "reclamo": item.reclamo,
        "generacion": item.generacion_clave + 1,
        "vida_s": politica.vida_clave.total_seconds(),
        "margen_s": politica.margen_asentamiento.total_seconds(),
    }
    rows = await retry_transient(lambda: fetch(engine, _RENOVAR[tabla], params))
    if not rows:  # the handler asks only once its claim's own reading allows it: the claim is gone
        metrics.etiquetada(metrics.ESCRITURAS_OBSOLETAS, "renovar_clave").inc()
        return None
    desde: datetime = rows[0]["clave_desde"]
    return desde


async def liberar(engine: AsyncEngine, item: Reclamable, como: Liberacion, politica: PoliticaAtencion) -> bool | None:
    tabla, ident = _tabla(item)
    params = {
        "id": ident,
        "reclamo": item.reclamo,
        "espera": como is Liberacion.ESPERA,
        "llamo": como is Liberacion.LLAMO,
        "margen_s": politica.margen_asentamiento.total_seconds(),
        "antiguedad_s": politica.max_antiguedad.total_seconds(),
        "ultimo_error": item.ultimo_error,
        "requiere_atencion": item.requiere_atencion,
        "intentos": item.intentos,
        "clave_agotada": item.clave_agotada,
    }
    rows = await retry_transient(lambda: fetch(engine, _LIBERAR[tabla], params))
    if not rows:
        metrics.etiquetada(metrics.ESCRITURAS_OBSOLETAS, "liberar").inc()
        return None
    return bool(rows[0]["requiere_atencion"])
