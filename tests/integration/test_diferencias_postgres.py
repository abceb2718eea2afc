"""The reconciliation's differences as operators read them from PostgreSQL: the unresolved ones on
the attention list and in its count, a payment's with its status row, both sides' evidence as
recorded; and closing one by hand (`conciliacion resolver`), fenced on it being still unresolved."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker.adapters.postgres.views import PostgresPagoViews
from pagos_worker.application.queries import CausaAtencion, FiltroAtencion, ListarPagosQueRequierenAtencionHandler
from tests.integration.test_atencion_postgres import en_proceso

pytestmark = pytest.mark.integration


async def conciliacion(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        return int(
            (
                await conn.execute(
                    text("""INSERT INTO conciliaciones (desde, hasta, origen, estado, iniciada, terminada)
                            VALUES (now() - interval '2 days', now() - interval '1 day', 'cli', 'COMPLETA', now(),
                                    now()) RETURNING id""")
                )
            ).scalar_one()
        )


async def diferencia(
    engine: AsyncEngine,
    id_conciliacion: int,
    clase: str = "transferencia_sin_exito",
    *,
    id_pago: uuid.UUID | None = None,
    referencia: str | None = "tr_1",
    servicio: dict[str, Any] | None = None,
    pasarela: dict[str, Any] | None = None,
    hace: timedelta = timedelta(0),
) -> int:
    """A difference as a run records it (`REGISTRAR_DIFERENCIAS`), recorded `hace` ago."""
    async with engine.begin() as conn:
        fila = await conn.execute(
            text("""INSERT INTO diferencias (conciliacion, clase, id_pago, referencia, servicio, pasarela, creada)
                    VALUES (:c, :clase, :p, :r, CAST(:s AS jsonb), CAST(:pa AS jsonb), now() - CAST(:h AS interval))
                    RETURNING id"""),
            {"c": id_conciliacion, "clase": clase, "p": id_pago, "r": referencia, "s": json.dumps(servicio or {}),
             "pa": json.dumps(pasarela or {}), "h": hace},
        )  # fmt: skip
        return int(fila.scalar_one())


EVIDENCIA = {"referencia": "tr_1", "unidades_menores": 500, "moneda": "eur", "destino": "acct_a", "creada": None}


async def test_las_diferencias_sin_resolver_se_listan_se_cuentan_y_van_con_su_pago(postgres):
    views = PostgresPagoViews(postgres.engine)
    pago = (await postgres.repo().reclamar(en_proceso(datetime.now(UTC)))).pago  # fresh: not on the list itself
    c = await conciliacion(postgres.engine)
    servicio = {"id_pago": str(pago.id_pago), "estado": "PROCESANDO", "unidades_menores": 500}
    suya = await diferencia(postgres.engine, c, id_pago=pago.id_pago, servicio=servicio, pasarela=EVIDENCIA,
                            hace=timedelta(hours=2))  # fmt: skip
    ajena = await diferencia(postgres.engine, c, "transferencia_sin_exito", referencia="tr_2", pasarela=EVIDENCIA)
    resuelta = await diferencia(postgres.engine, c, "reverso_externo", id_pago=pago.id_pago, referencia="trr_1")
    async with postgres.engine.begin() as conn:
        await conn.execute(
            text("UPDATE diferencias SET resuelta_en = now(), resuelta_por = 'ana', nota = 'visto' WHERE id = :i"),
            {"i": resuelta},
        )

    lista = await views.diferencias_sin_resolver(100)
    assert [d.id for d in lista] == [suya, ajena]  # the oldest first; the resolved one gone
    primera = lista[0]
    assert (primera.conciliacion, primera.clase, primera.id_pago, primera.referencia) == (
        c, "transferencia_sin_exito", pago.id_pago, "tr_1"
    )  # fmt: skip
    assert (dict(primera.servicio), dict(primera.pasarela)) == (servicio, EVIDENCIA)
    assert await views.contar_atencion() == (0, 0, 2)
    assert await views.contar_requieren_atencion() == 2

    [del_pago] = (await views.estado_pago(pago.id_pago)).diferencias
    assert del_pago == primera  # the status row's JSON reads back as the list's row

    antes = datetime.now(UTC) - timedelta(hours=1)
    atencion = ListarPagosQueRequierenAtencionHandler(views)
    assert [d.id for d in (await atencion(100)).diferencias] == [suya, ajena]
    assert [d.id for d in (await atencion(100, FiltroAtencion(antes))).diferencias] == [suya]
    assert (await atencion(100, FiltroAtencion(causa=CausaAtencion.MARCADO))).diferencias == []
    assert [d.id for d in (await atencion(1)).diferencias] == [suya]


async def test_un_pago_sin_diferencias_las_trae_vacias(postgres):
    views = PostgresPagoViews(postgres.engine)
    pago = (await postgres.repo().reclamar(en_proceso(datetime.now(UTC)))).pago
    assert (await views.estado_pago(pago.id_pago)).diferencias == ()
    assert await views.diferencias_sin_resolver(10) == []


async def test_la_lista_de_diferencias_sin_resolver_usa_su_indice_parcial(postgres):
    async with postgres.engine.connect() as conn:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            r[0]
            for r in await conn.execute(
                text(
                    "EXPLAIN SELECT * FROM diferencias d WHERE d.resuelta_en IS NULL ORDER BY d.creada, d.id LIMIT 100"
                )
            )
        )
    assert "ix_diferencias_sin_resolver" in plan, plan
