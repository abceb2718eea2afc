"""The reconciliation's differences as operators read them from PostgreSQL: the unresolved ones on
the attention list and in its count, a payment's with its status row, both sides' evidence as
recorded; and closing one by hand (`conciliacion resolver`), fenced on it being still unresolved."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker.adapters.postgres.diferencias import PostgresDiferenciaRepository
from pagos_worker.adapters.postgres.views import PostgresPagoViews
from pagos_worker.application.diferencias import ResolverDiferenciaHandler
from pagos_worker.application.operador import OperacionRechazadaError
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


async def test_resolver_una_diferencia_la_cierra_una_sola_vez_con_la_hora_de_la_base(postgres):
    views = PostgresPagoViews(postgres.engine)
    resolver = ResolverDiferenciaHandler(PostgresDiferenciaRepository(postgres.engine))
    c = await conciliacion(postgres.engine)
    id_dif = await diferencia(postgres.engine, c, "reverso_externo", referencia="trr_1", pasarela=EVIDENCIA)
    otra = await diferencia(postgres.engine, c, referencia="tr_2")
    async with postgres.engine.connect() as conn:
        antes = await conn.scalar(text("SELECT clock_timestamp()"))

    resuelta = await resolver(id_dif, operador="ana", nota="reverso del dashboard, acordado con finanzas")
    assert (resuelta.id, resuelta.resuelta_por, resuelta.nota) == (
        id_dif,
        "ana",
        "reverso del dashboard, acordado con finanzas",
    )
    assert (resuelta.clase, dict(resuelta.pasarela)) == ("reverso_externo", EVIDENCIA)  # the evidence kept as it was
    async with postgres.engine.connect() as conn:
        despues = await conn.scalar(text("SELECT clock_timestamp()"))
    assert antes <= resuelta.resuelta_en <= despues  # the database's clock
    assert [d.id for d in await views.diferencias_sin_resolver(100)] == [otra]
    assert await views.contar_atencion() == (0, 0, 1)

    with pytest.raises(OperacionRechazadaError, match=f"la diferencia {id_dif} ya estaba resuelta \\(ana"):
        await resolver(id_dif, operador="luis", nota="otra vez")
    async with postgres.engine.connect() as conn:
        fila = (
            await conn.execute(text("SELECT resuelta_por, nota FROM diferencias WHERE id = :i"), {"i": id_dif})
        ).one()
    assert tuple(fila) == ("ana", "reverso del dashboard, acordado con finanzas")  # nothing overwritten
    with pytest.raises(OperacionRechazadaError, match="no existe la diferencia 999999"):
        await resolver(999999, operador="ana", nota="x")


async def test_dos_operadores_a_la_vez_solo_uno_la_resuelve(postgres):
    c = await conciliacion(postgres.engine)
    id_dif = await diferencia(postgres.engine, c)
    resolver = ResolverDiferenciaHandler(PostgresDiferenciaRepository(postgres.engine))
    resultados = await asyncio.gather(
        *(resolver(id_dif, operador=quien, nota="visto") for quien in ("ana", "luis", "eva")), return_exceptions=True
    )
    ganadores = [r for r in resultados if not isinstance(r, BaseException)]
    assert len(ganadores) == 1
    assert all(isinstance(r, OperacionRechazadaError) for r in resultados if r not in ganadores)


async def _cli(database_url: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "PAGOS_DATABASE_URL": database_url}
    proceso = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pagos_worker", *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proceso.communicate(), 60)
    return proceso.returncode or 0, out.decode(), err.decode()


async def test_pagos_atencion_y_conciliacion_resolver_como_los_corre_un_operador(postgres, database_url):
    c = await conciliacion(postgres.engine)
    id_pago = uuid.uuid4()
    id_dif = await diferencia(postgres.engine, c, id_pago=id_pago, pasarela=EVIDENCIA)

    rc, out, err = await _cli(database_url, "pagos", "atencion", "--json")
    assert rc == 0, err
    [listada] = json.loads(out)["diferencias"]
    assert listada == {
        "id": id_dif, "conciliacion": c, "clase": "transferencia_sin_exito", "critica": True, "id_pago": str(id_pago),
        "id_reverso": None, "referencia": "tr_1", "creada": listada["creada"], "servicio": {}, "pasarela": EVIDENCIA,
    }  # fmt: skip
    rc, out, err = await _cli(database_url, "pagos", "atencion")
    assert rc == 0, err
    assert "diferencias de la conciliación sin resolver: 1" in out

    rc, _, err = await _cli(database_url, "conciliacion", "resolver", str(id_dif))
    assert rc == 2  # --nota is required
    assert "--nota" in err
    rc, out, err = await _cli(
        database_url, "conciliacion", "resolver", str(id_dif), "--nota", "pagado por otro sistema", "--operador",
        "ana", "--json",
    )  # fmt: skip
    assert rc == 0, err
    cerrada = json.loads(out)
    assert (cerrada["id"], cerrada["resuelta_por"], cerrada["nota"]) == (id_dif, "ana", "pagado por otro sistema")
    assert cerrada["resuelta_en"].endswith("Z")
    rc, _, err = await _cli(database_url, "conciliacion", "resolver", str(id_dif), "--nota", "x", "--operador", "luis")
    assert rc == 1
    assert "ya estaba resuelta" in err
    rc, _, err = await _cli(database_url, "conciliacion", "resolver", "999999", "--nota", "x", "--operador", "luis")
    assert (rc, "no existe la diferencia 999999" in err) == (1, True)
    rc, out, err = await _cli(database_url, "pagos", "atencion", "--json")
    assert json.loads(out)["diferencias"] == []
