"""`PagoRepository` on PostgreSQL, with concurrent calls grouped into few transactions.

Each flush is one SQL statement (data-modifying CTEs), so it is atomic on its own: a payment's final
state and its outbox row are always written together, or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker import observability as metrics
from pagos_worker.adapters.postgres import reclamos
from pagos_worker.adapters.postgres.driver import PinnedConnection, PreparedStatement, fetch
from pagos_worker.adapters.postgres.group_commit import GroupCommitter
from pagos_worker.adapters.postgres.retry import is_transient, retry_transient
from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.application.ports.repository import Liberacion, Reclamo
from pagos_worker.application.ports.tracing import TraceContext
from pagos_worker.contract.wire import encode_event
from pagos_worker.domain.dinero import Dinero, Moneda
from pagos_worker.domain.pago import EstadoPago, Lease, Pago, PoliticaAtencion

_COLUMNS = (
    "id_pago, id_afiliado, monto, moneda, estado, referencia_pago, mensaje_error, "
    "fecha_creacion, fecha_procesamiento, lease_owner, lease_expira, intentos, ultimo_error, requiere_atencion, "
    "clave_generacion, clave_desde, clave_agotada, reclamo, monto_reversado, anulado_por"
)
_COLUMNS_P = ", ".join(f"p.{c.strip()}" for c in _COLUMNS.split(","))

# A new id is inserted claimed (claim number 1). A known one is claimed only if the domain would
# allow it: same payout, and PENDIENTE or PROCESANDO with a lease expired by the database's clock,
# under the next claim number. Every time written or compared is the database's (the statement's
# start, the same for the whole batch); the caller gives only the lease's length. Rows not claimed
# are read back unchanged (the statement's snapshot).
_CLAIM = text(f"""
WITH entrada AS (
    SELECT * FROM unnest(
        CAST(:ids AS uuid[]), CAST(:afiliados AS text[]), CAST(:montos AS numeric[]),
        CAST(:monedas AS text[]), CAST(:owners AS text[]), CAST(:leases AS float8[])
    ) AS e(id_pago, id_afiliado, monto, moneda, lease_owner, lease_s)
),
reclamados AS (
    INSERT INTO pagos AS p
        (id_pago, id_afiliado, monto, moneda, estado, fecha_creacion, lease_owner, lease_expira, intentos,
         clave_desde, reclamo, fin_llamadas)
    SELECT id_pago, id_afiliado, monto, moneda, 'PROCESANDO', statement_timestamp(), lease_owner,
        statement_timestamp() + make_interval(secs => lease_s), 1, statement_timestamp(), 1,
        statement_timestamp() + make_interval(secs => lease_s)
    FROM entrada ORDER BY id_pago
    ON CONFLICT (id_pago) DO UPDATE
        SET estado = 'PROCESANDO', lease_owner = EXCLUDED.lease_owner, lease_expira = EXCLUDED.lease_expira,
            intentos = p.intentos + 1, reclamo = p.reclamo + 1,
            fin_llamadas_previas = p.fin_llamadas, fin_llamadas = EXCLUDED.lease_expira
        WHERE (p.estado = 'PENDIENTE'
               OR (p.estado = 'PROCESANDO' AND p.lease_expira <= statement_timestamp()
                   AND NOT p.requiere_atencion))
          AND (p.id_afiliado, p.monto, p.moneda) = (EXCLUDED.id_afiliado, EXCLUDED.monto, EXCLUDED.moneda)
    RETURNING {_COLUMNS_P}, p.fin_llamadas_previas, true AS reclamado
)
SELECT *, statement_timestamp() AS ahora FROM reclamados
UNION ALL
SELECT {_COLUMNS_P}, p.fin_llamadas_previas, false, statement_timestamp() FROM pagos p
JOIN entrada e ON e.id_pago = p.id_pago
WHERE p.id_pago NOT IN (SELECT id_pago FROM reclamados)
""")  # noqa: S608 - fixed column lists; every value is bound

# `(… IN (SELECT …)) IS TRUE` keeps the IN from becoming a join, which on these connections could
# only be a nested loop (every event against every payment: 40,000 comparisons in a lot of 200), and
# leaves it a hashed subplan: one hash of the lot's payments. Only the claim that holds the payment
# (its number) may end it: a stale holder's outcome is neither saved nor published.
_SAVE_RESULTS = text("""
WITH entrada AS (
    SELECT * FROM unnest(
        CAST(:ids AS uuid[]), CAST(:estados AS text[]), CAST(:referencias AS text[]),
        CAST(:mensajes AS text[]), CAST(:fechas AS timestamptz[]), CAST(:reclamos AS bigint[])
    ) AS e(id_pago, estado, referencia_pago, mensaje_error, fecha_procesamiento, reclamo)
),
finalizados AS (
    UPDATE pagos AS p
    SET estado = e.estado, referencia_pago = e.referencia_pago, mensaje_error = e.mensaje_error,
        fecha_procesamiento = e.fecha_procesamiento, lease_owner = NULL, lease_expira = NULL,
        requiere_atencion = false
    FROM entrada e
    WHERE p.id_pago = e.id_pago AND p.estado = 'PROCESANDO' AND p.reclamo = e.reclamo
    RETURNING p.id_pago
),
eventos AS (
    SELECT * FROM unnest(
        CAST(:ev_ids AS uuid[]), CAST(:ev_tipos AS text[]), CAST(:ev_pagos AS uuid[]),
        CAST(:ev_payloads AS text[]), CAST(:ev_traceparents AS text[]), CAST(:ev_tracestates AS text[])
    ) WITH ORDINALITY AS v(event_id, event_type, id_pago, payload, traceparent, tracestate, orden)
),
publicables AS (
    INSERT INTO outbox (event_id, event_type, id_pago, payload, publicador, traceparent, tracestate)
    SELECT v.event_id, v.event_type, v.id_pago, v.payload, CAST(:publicador AS text), v.traceparent, v.tracestate
    FROM eventos v
    WHERE (v.id_pago IN (SELECT id_pago FROM finalizados)) IS TRUE
    ORDER BY v.orden
    RETURNING id, event_id, creado_en
)
SELECT id_pago, NULL::bigint AS id, NULL::uuid AS event_id, NULL::timestamptz AS creado_en FROM finalizados
UNION ALL
SELECT NULL, id, event_id, creado_en FROM publicables
""")

_STUCK = text(f"""
SELECT {_COLUMNS} FROM pagos
WHERE estado = 'PROCESANDO' AND lease_expira < clock_timestamp() - make_interval(secs => :gracia_s)
    AND NOT requiere_atencion
ORDER BY lease_expira
LIMIT :limite
""")  # noqa: S608 - fixed columns

# A payment a reversal annulled before it came: it takes its terms and fails, with its event, in one
# statement, only while it is still the annulled row without terms (a second delivery writes nothing).
_CLOSE_ANNULLED = text("""
WITH cerrado AS (
    UPDATE pagos SET id_afiliado = :afiliado, monto = :monto, moneda = :moneda, estado = 'FALLIDO',
        mensaje_error = :mensaje, fecha_procesamiento = :fecha
    WHERE id_pago = :id_pago AND estado = 'PENDIENTE' AND id_afiliado IS NULL AND anulado_por IS NOT NULL
    RETURNING id_pago
)
INSERT INTO outbox (event_id, event_type, id_pago, payload, publicador, traceparent, tracestate)
SELECT :event_id, :event_type, id_pago, :payload, :publicador, :traceparent, :tracestate FROM cerrado
RETURNING id, creado_en
""")

_GET = text(f"SELECT {_COLUMNS} FROM pagos WHERE id_pago = :id_pago")  # noqa: S608 - fixed columns

_SQL = {s: PreparedStatement(s) for s in (_CLAIM, _SAVE_RESULTS, _STUCK, _CLOSE_ANNULLED)}

# One plan per connection, made once, that stays right however the table grows: every join a nested
# loop that looks its rows up by primary key. A generic plan left to the planner is made from the
# statistics of its moment: on a new database (no ANALYZE yet, for autovacuum's first minute or
# longer) that was a hash join over a sequential scan of pagos in every claim — 4.9 ms a claim at
# 30,000 rows instead of 0.19 ms, growing with the table. With hash and merge joins, sequential and
# bitmap scans off on these connections, the only plan left is the one any table size wants (see
# the tests that grow the table under prepared statements). Planning each execution instead
# (`force_custom_plan`) cost 0.1–0.25 ms a statement: at 2,000 payments/s, a quarter of
# PostgreSQL's CPU.
_PLANNER_SETTINGS = {
    "plan_cache_mode": "force_generic_plan",
    "enable_hashjoin": "off",
    "enable_mergejoin": "off",
    "enable_seqscan": "off",
    "enable_bitmapscan": "off",
}


class PostgresPagoRepository:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_batch: int = 200,
        max_in_flight: int = 2,
        linger: float = 0.0,
        publicador: str | None = None,
        flush_timeout: float | None = None,
    ) -> None:
        """With `publicador`, the events written are that replica's to publish right after their
        commit (the relays take them only after a grace period). A flush not answered within
        `flush_timeout` seconds drops its connection and is tried again on a new one (unset: the
        connections' command timeout)."""
        self._engine = engine
        self._publicador = publicador
        self._flush_timeout = flush_timeout
        # A batch that failed for a reason of its own (a data error of one payment, not an outage)
        # is tried again payment by payment: the bad one fails alone, the others commit.
        self._claims = GroupCommitter(
            self._claim_batch, max_batch=max_batch, max_in_flight=max_in_flight, linger=linger, aislar=_propio
        )
        self._results = GroupCommitter(
            self._save_results_batch, max_batch=max_batch, max_in_flight=max_in_flight, linger=linger, aislar=_propio
        )
        # One connection per flush slot, kept: a flush never waits for (or pays for) a checkout.
        self._idle = [PinnedConnection(engine, _PLANNER_SETTINGS) for _ in range(2 * max_in_flight)]

    def sin_commit(self) -> float:
        """Seconds that claims or results have been waiting with none committed (0 while idle)."""
        return max(self._claims.sin_progreso(), self._results.sin_progreso())

    async def reclamar(self, pago: Pago) -> Reclamo:
        return await self._claims.submit(pago)

    async def guardar_resultado(self, pago: Pago, traza: TraceContext | None = None) -> list[OutboxEvent] | None:
        return await self._results.submit((pago, traza))

    async def renovar_clave(self, pago: Pago, politica: PoliticaAtencion) -> datetime | None:
        return await reclamos.renovar_clave(self._engine, pago, politica)

    async def liberar(self, pago: Pago, como: Liberacion, politica: PoliticaAtencion) -> bool | None:
        return await reclamos.liberar(self._engine, pago, como, politica)

    async def cerrar_anulado(self, pago: Pago, traza: TraceContext | None = None) -> list[OutboxEvent] | None:
        [evento] = pago.eventos
        payload = encode_event(evento)
        params = {
            "id_pago": pago.id_pago,
            "afiliado": pago.id_afiliado,
            "monto": pago.importe.monto,
            "moneda": pago.importe.moneda.value,
            "mensaje": pago.mensaje_error,
            "fecha": pago.fecha_procesamiento,
            "event_id": evento.event_id,
            "event_type": evento.tipo,
            "payload": payload.decode(),
            "publicador": self._publicador,
            "traceparent": traza.traceparent if traza else None,
            "tracestate": traza.tracestate if traza else None,
        }
        rows = await retry_transient(lambda: fetch(self._engine, _SQL[_CLOSE_ANNULLED], params))
        if not rows:
            return None
        traceparent, tracestate = _SIN_TRAZA if traza is None else (traza.traceparent, traza.tracestate)
        return [
            OutboxEvent(
                rows[0]["id"], evento.event_id, evento.tipo, pago.id_pago, payload, rows[0]["creado_en"],
                traceparent, tracestate,
            )
        ]  # fmt: skip

    async def atascados(self, gracia: timedelta, limite: int) -> list[Pago]:
        params = {"gracia_s": gracia.total_seconds(), "limite": limite}
        rows = await retry_transient(lambda: fetch(self._engine, _SQL[_STUCK], params))
        return [pago_from_row(row) for row in rows]

    async def obtener(self, id_pago: UUID) -> Pago | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_GET, {"id_pago": id_pago})).mappings().first()
        return None if row is None else pago_from_row(row)

    async def _execute(self, statement: TextClause, params: dict[str, Any]) -> list[Any]:
        """A flush's statement, on a kept connection: there is one for each flush slot of the two
        group commits, so a flush never waits for one, nor runs without `_PLANNER_SETTINGS`. The odd
        calls outside them (liberar, atascados) take one of the pool's."""
        connection = self._idle.pop()
        try:
            return await connection.fetch(_SQL[statement], params, timeout=self._flush_timeout)
        finally:
            self._idle.append(connection)

    async def close(self) -> None:
        for connection in self._idle:
            await connection.close()

    async def _claim_batch(self, pagos: Sequence[Pago]) -> list[Reclamo]:
        # One statement cannot upsert the same key twice: a duplicate within the batch waits its turn.
        unique = _first_per_pago(pagos)
        leases = [_lease(p) for p in unique]
        params = {
            "ids": [p.id_pago for p in unique],
            "afiliados": [p.id_afiliado for p in unique],
            "montos": [p.importe.monto for p in unique],
            "monedas": [p.importe.moneda.value for p in unique],
            "owners": [lease.owner for lease in leases],
            "leases": [
                (lease.expira - p.fecha_creacion).total_seconds() for p, lease in zip(unique, leases, strict=True)
            ],
        }
        rows = await retry_transient(lambda: self._execute(_CLAIM, params))
        by_id = {row["id_pago"]: row for row in rows}
        results: list[Reclamo] = []
        seen: set[UUID] = set()
        for pago in pagos:
            row = by_id.get(pago.id_pago)
            if pago.id_pago in seen or row is None:
                results.append(Reclamo(pago=None, reclamado=False))
            elif row["id_afiliado"] is None:  # annulled before it came: no terms of its own yet
                results.append(Reclamo(None, reclamado=False, ahora=row["ahora"], anulado_por=row["anulado_por"]))
            else:
                claimed = _valores_compartidos(pago_from_row(row), pago)
                results.append(Reclamo(claimed, bool(row["reclamado"]), row["ahora"], row["fin_llamadas_previas"]))
            seen.add(pago.id_pago)
        return results

    async def _save_results_batch(
        self, resultados: Sequence[tuple[Pago, TraceContext | None]]
    ) -> list[list[OutboxEvent] | None]:
        # One result per payment in a statement: the newest claim's (a stale holder's in the same
        # batch must not hide it); the others get None, as their claim is no longer the payment's.
        primeros: dict[UUID, tuple[Pago, TraceContext | None]] = {}
        for pago, traza in resultados:
            if (visto := primeros.get(pago.id_pago)) is None or pago.reclamo > visto[0].reclamo:
                primeros[pago.id_pago] = (pago, traza)
        unique = [p for p, _ in primeros.values()]
        # Each event with its payment's trace context (its traceparent and tracestate), or NULLs.
        events = [
            (p.id_pago, e, encode_event(e), *(_SIN_TRAZA if t is None else (t.traceparent, t.tracestate)))
            for p, t in primeros.values()
            for e in p.eventos
        ]
        params = {
            "ids": [p.id_pago for p in unique],
            "estados": [p.estado.value for p in unique],
            "referencias": [p.referencia_pago for p in unique],
            "mensajes": [p.mensaje_error for p in unique],
            "fechas": [p.fecha_procesamiento for p in unique],
            "reclamos": [p.reclamo for p in unique],
            "ev_ids": [e.event_id for _, e, _, _, _ in events],
            "ev_tipos": [e.tipo for _, e, _, _, _ in events],
            "ev_pagos": [id_pago for id_pago, _, _, _, _ in events],
            "ev_payloads": [payload.decode() for _, _, payload, _, _ in events],
            "ev_traceparents": [traceparent for _, _, _, traceparent, _ in events],
            "ev_tracestates": [tracestate for _, _, _, _, tracestate in events],
            "publicador": self._publicador,
        }
        rows = await retry_transient(lambda: self._execute(_SAVE_RESULTS, params))
        written = {row["event_id"]: row for row in rows if row["id"] is not None}
        # What was committed, as the relay would read it back: the outbox rows in their wire form.
        by_pago: dict[UUID, list[OutboxEvent]] = {row["id_pago"]: [] for row in rows if row["id_pago"] is not None}
        for id_pago, event, payload, traceparent, tracestate in events:
            if (row := written.get(event.event_id)) is not None and id_pago in by_pago:
                by_pago[id_pago].append(
                    OutboxEvent(
                        row["id"],
                        event.event_id,
                        event.tipo,
                        id_pago,
                        payload,
                        row["creado_en"],
                        traceparent,
                        tracestate,
                    )
                )
        if obsoletos := len(resultados) - len(by_pago):
            # Held under a claim that was taken since (its lease ran out): nothing saved, nothing published.
            metrics.etiquetada(metrics.ESCRITURAS_OBSOLETAS, "resultado").inc(obsoletos)
        # A duplicate within the batch was not stored by its own call: only the one stored gets the events.
        return [
            by_pago.pop(pago.id_pago, None) if primeros[pago.id_pago][0] is pago else None for pago, _ in resultados
        ]


_SIN_TRAZA: tuple[None, None] = (None, None)


def _propio(exc: Exception) -> bool:
    return not is_transient(exc)


def _first_per_pago(pagos: Sequence[Pago]) -> list[Pago]:
    """The first call for each payment, in arrival order."""
    first: dict[UUID, Pago] = {}
    for pago in pagos:
        first.setdefault(pago.id_pago, pago)
    return list(first.values())


def _lease(pago: Pago) -> Lease:
    if pago.lease is None or pago.estado is not EstadoPago.PROCESANDO:
        raise ValueError(f"el pago {pago.id_pago} debe llegar en PROCESANDO con su lease")
    return pago.lease


def _valores_compartidos(guardado: Pago, pedido: Pago) -> Pago:
    """The payment as stored, holding the request's own objects for the values it repeats (equal
    and immutable, so either will do): a payment in flight keeps one copy of them, not two — at
    thousands in flight with a slow gateway, ~0.4 KB a payment."""
    if guardado.id_pago == pedido.id_pago:
        guardado.id_pago = pedido.id_pago
    if guardado.id_afiliado == pedido.id_afiliado:
        guardado.id_afiliado = pedido.id_afiliado
    if guardado.importe == pedido.importe:
        guardado.importe = pedido.importe
    if guardado.clave_desde == guardado.fecha_creacion:  # a new payment's first key dates from then
        guardado.clave_desde = guardado.fecha_creacion
    return guardado


def pago_from_row(row: Any) -> Pago:  # noqa: ANN401 - a SQLAlchemy row mapping
    return Pago(
        id_pago=row["id_pago"],
        id_afiliado=row["id_afiliado"],
        importe=Dinero(row["monto"], Moneda(row["moneda"])),
        estado=EstadoPago(row["estado"]),
        referencia_pago=row["referencia_pago"],
        mensaje_error=row["mensaje_error"],
        fecha_procesamiento=row["fecha_procesamiento"],
        monto_reversado=row["monto_reversado"],
        **campos_de_reclamo(row),
    )


def campos_de_reclamo(row: Any) -> dict[str, Any]:  # noqa: ANN401 - a SQLAlchemy row mapping
    """The claim's fields of a stored item (`Reclamable`'s), payment or reversal alike."""
    return {
        "fecha_creacion": row["fecha_creacion"],
        "lease": Lease(row["lease_owner"], row["lease_expira"]) if row["lease_owner"] is not None else None,
        "intentos": row["intentos"],
        "ultimo_error": row["ultimo_error"],
        "requiere_atencion": row["requiere_atencion"],
        "generacion_clave": row["clave_generacion"],
        "clave_desde": row["clave_desde"],  # NULL: stored before key generations (see the handler)
        "clave_agotada": row["clave_agotada"],
        "reclamo": row["reclamo"],
    }
