"""Attention and isolation against PostgreSQL: any payment still PROCESANDO past the attention age is
listed and counted whatever kept it there; poison commands are recorded and shown with their payment;
one bad payment in a group-commit batch fails alone while the rest of the batch commits."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from sqlalchemy import text

from pagos_worker.adapters.postgres.database import asyncpg_dsn, create_engine
from pagos_worker.adapters.postgres.fallos import PostgresFailureLog
from pagos_worker.adapters.postgres.repository import PostgresPagoRepository
from pagos_worker.adapters.postgres.retry import is_transient
from pagos_worker.adapters.postgres.views import PostgresPagoViews
from pagos_worker.application.ports.fallos import FalloDeComando
from pagos_worker.application.ports.repository import Liberacion
from pagos_worker.domain import Dinero, EstadoPago, Lease, Moneda, Pago, PoliticaAtencion
from tests.conftest import create_database, envejecer_pago

pytestmark = pytest.mark.integration
HORA = timedelta(hours=1)


def en_proceso(creado: datetime, afiliado: str = "a", lease_s: float = 60) -> Pago:
    pago = Pago.crear(
        id_pago=uuid.uuid4(), id_afiliado=afiliado, importe=Dinero(Decimal("5.00"), Moneda.EUR), ahora=creado
    )
    pago.iniciar_procesamiento(Lease("w", creado + timedelta(seconds=lease_s)), creado)
    return pago


async def test_todo_pago_en_proceso_pasada_la_edad_de_atencion_se_lista_y_se_cuenta(postgres):
    repo = postgres.repo()
    views = PostgresPagoViews(postgres.engine, atencion_tras=HORA)
    ahora = datetime.now(UTC)
    # Stuck by a bug two hours ago: never flagged by the worker, never resolved.
    viejo, reciente, hecho = [(await repo.reclamar(en_proceso(ahora))).pago for _ in range(3)]
    for pago, edad in ((viejo, 2 * HORA), (reciente, timedelta(minutes=1)), (hecho, 3 * HORA)):
        await envejecer_pago(postgres.engine, pago.id_pago, edad)
    hecho.marcar_exitoso("tr_1", ahora)
    await repo.guardar_resultado(hecho)
    assert await views.contar_requieren_atencion() == 1
    assert [v.id for v in await views.requieren_atencion(100)] == [viejo.id_pago]
    assert (await views.estado_pago(viejo.id_pago)).requiere_atencion
    assert not (await views.estado_pago(reciente.id_pago)).requiere_atencion
    assert not (await views.estado_pago(hecho.id_pago)).requiere_atencion


async def test_la_cuenta_de_atencion_puede_usar_un_indice(postgres):
    async with postgres.engine.connect() as conn:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            r[0]
            for r in await conn.execute(
                text(
                    "EXPLAIN SELECT count(*) FROM pagos p WHERE p.lease_expira IS NOT NULL AND p.estado = 'PROCESANDO'"
                    " AND (p.requiere_atencion OR p.fecha_creacion < now() - interval '1 hour')"
                )
            )
        )
    assert "ix_pagos_lease_expira" in plan, plan


async def test_el_fallo_que_llega_al_limite_registra_el_comando_para_los_operadores(postgres):
    repo = postgres.repo()
    fallos = PostgresFailureLog(postgres.engine)
    views = PostgresPagoViews(postgres.engine)
    pago = (await repo.reclamar(en_proceso(datetime.now(UTC)))).pago
    fallo = FalloDeComando("(9,1,-1,-1)", pago.id_pago, "KeyError: 'x\x00y'")  # a NUL must not stop the record
    assert [await fallos.contar_fallo(fallo, limite=3) for _ in range(2)] == [1, 2]
    assert await views.comandos_venenosos(10) == []
    assert await fallos.contar_fallo(fallo, limite=3) == 3
    [registro] = await views.comandos_venenosos(10)
    assert (registro.id_pago, registro.fallos, registro.message_id) == (pago.id_pago, 3, "(9,1,-1,-1)")
    assert registro.ultimo_error == "KeyError: 'x\\x00y'"
    assert (await views.estado_pago(pago.id_pago)).comando_venenoso == registro
    assert await fallos.contar_fallo(fallo, limite=3) == 4  # dead-lettered again (its ack was lost)
    [otra_vez] = await views.comandos_venenosos(10)
    assert otra_vez.venenoso_desde == registro.venenoso_desde
    # Decoded, but the payment was never stored: still found by its id.
    huerfano = uuid.uuid4()
    await fallos.contar_fallo(FalloDeComando("(9,2,-1,-1)", huerfano, "DataError"), limite=1)
    assert await views.estado_pago(huerfano) is None
    assert (await views.comando_venenoso(huerfano)).message_id == "(9,2,-1,-1)"


async def test_las_cuentas_que_no_llegaron_al_limite_caducan(postgres):
    fallos = PostgresFailureLog(postgres.engine, retencion=timedelta(seconds=0))
    await fallos.contar_fallo(FalloDeComando("viejo", None, "x"), limite=5)
    await fallos.contar_fallo(FalloDeComando("veneno", None, "x"), limite=1)
    await fallos.contar_fallo(FalloDeComando("nuevo", None, "x"), limite=5)  # deletes the stale ones
    async with postgres.engine.connect() as conn:
        quedan = (await conn.execute(text("SELECT message_id FROM comandos_fallidos ORDER BY 1"))).scalars().all()
    assert quedan == ["nuevo", "veneno"]  # a poison record is kept


async def test_liberar_guarda_los_intentos_devueltos(postgres):
    repo = postgres.repo()
    pago = (await repo.reclamar(en_proceso(datetime.now(UTC)))).pago
    pago.no_intentado("circuito abierto", datetime.now(UTC))
    await repo.liberar(pago, Liberacion.NO_LLAMO, PoliticaAtencion())
    guardado = await repo.obtener(pago.id_pago)
    assert (guardado.intentos, guardado.ultimo_error) == (0, "circuito abierto")


@pytest.fixture
async def con_restriccion(postgres_server):
    """A database where one affiliate's payments and one reference break a constraint: a data
    error of one payment, as a bad row would be."""
    url = await create_database(postgres_server)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("ALTER TABLE pagos ADD CONSTRAINT prueba_afiliado CHECK (id_afiliado <> 'malo')")
        await conn.execute("ALTER TABLE pagos ADD CONSTRAINT prueba_ref CHECK (referencia_pago <> 'tr_malo')")
    finally:
        await conn.close()
    engine = create_engine(url, pool_size=4)
    yield engine
    await engine.dispose()


async def test_un_pago_malo_en_un_lote_falla_solo_y_el_resto_se_escribe(con_restriccion):
    repo = PostgresPagoRepository(con_restriccion, max_batch=50, max_in_flight=1, linger=0.05)
    try:
        ahora = datetime.now(UTC)
        pagos = [en_proceso(ahora, "malo" if i == 3 else f"a{i}") for i in range(8)]
        reclamos = await asyncio.gather(*(repo.reclamar(p) for p in pagos), return_exceptions=True)
        assert isinstance(reclamos[3], Exception)
        assert not is_transient(reclamos[3])  # the payment's own: it counts toward the poison limit
        buenos = [r.pago for i, r in enumerate(reclamos) if i != 3]
        assert all(r.reclamado for i, r in enumerate(reclamos) if i != 3)
        for i, pago in enumerate(buenos):
            pago.marcar_exitoso("tr_malo" if i == 5 else f"tr_{i}", ahora)
        eventos = await asyncio.gather(*(repo.guardar_resultado(p) for p in buenos), return_exceptions=True)
        assert isinstance(eventos[5], Exception)
        assert all(len(e) == 1 for i, e in enumerate(eventos) if i != 5)  # committed with their events
        estados = [(await repo.obtener(p.id_pago)).estado for p in buenos]
        assert estados == [EstadoPago.EXITOSO] * 5 + [EstadoPago.PROCESANDO] + [EstadoPago.EXITOSO]
    finally:
        await repo.close()
