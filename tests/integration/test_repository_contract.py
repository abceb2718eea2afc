"""The `PagoRepository` contract, run against the fake and against PostgreSQL alike: the SQL claim
must follow the same rules as the domain does in the fake."""

from __future__ import annotations

import asyncio
import collections
import functools
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker.adapters.postgres.database import asyncpg_dsn, create_engine
from pagos_worker.adapters.postgres.repository import (
    _CLAIM,
    _PLANNER_SETTINGS,
    _SAVE_RESULTS,
    _SQL,
    PostgresPagoRepository,
)
from pagos_worker.application.ports.repository import Liberacion
from pagos_worker.contract.wire import encode_event
from pagos_worker.domain import Dinero, EstadoPago, Lease, Moneda, Pago, PoliticaAtencion
from tests.conftest import create_database, envejecer_pago, estadistica_tras_cerrar
from tests.fakes import FakePagoRepository

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)  # the callers' clocks: only the store's counts
POLITICA = PoliticaAtencion()


class Subject:
    """A repository plus a way to read the events it stored, and to make time pass for one payment
    (its stored times moved back: as if the store's clock had moved on), whatever the implementation."""

    def __init__(self, repo, eventos_de, envejecer) -> None:
        self.repo = repo
        self.eventos_de = eventos_de
        self.envejecer = envejecer


@pytest.fixture(params=["fake", pytest.param("postgres", marks=pytest.mark.integration)])
def subject(request) -> Subject:
    if request.param == "fake":
        fake = FakePagoRepository()

        async def eventos_fake(id_pago):
            return fake.eventos_de(id_pago)

        return Subject(fake, eventos_fake, fake.envejecer)
    postgres = request.getfixturevalue("postgres")
    engine: AsyncEngine = postgres.engine

    async def eventos_pg(id_pago):
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT event_type FROM outbox WHERE id_pago = :i ORDER BY id"), {"i": id_pago}
            )
            return [r.event_type for r in rows]

    return Subject(postgres.repo(max_batch=50), eventos_pg, functools.partial(envejecer_pago, engine))


def solicitud(id_pago=None, *, owner="w1", ahora=T0, lease_s=30, monto="100.50", afiliado="afiliado_123") -> Pago:
    pago = Pago.crear(
        id_pago=id_pago or uuid.uuid4(), id_afiliado=afiliado, importe=Dinero(Decimal(monto), Moneda.USD), ahora=ahora
    )
    pago.iniciar_procesamiento(Lease(owner, ahora + timedelta(seconds=lease_s)), ahora)
    return pago


async def test_un_pago_nuevo_queda_reclamado(subject):
    """Created and leased on the store's clock: the caller's (T0, days behind) gives only the lease's length."""
    pedido = solicitud()
    reclamo = await subject.repo.reclamar(pedido)
    assert reclamo.reclamado
    assert reclamo.pago.estado is EstadoPago.PROCESANDO
    assert reclamo.pago.lease == Lease(pedido.lease.owner, reclamo.ahora + timedelta(seconds=30))
    assert (reclamo.pago.intentos, reclamo.pago.reclamo, reclamo.fin_llamadas_previas) == (1, 1, None)
    assert abs(reclamo.ahora - datetime.now(UTC)) < timedelta(minutes=1)
    guardado = await subject.repo.obtener(pedido.id_pago)
    assert guardado.importe == pedido.importe
    assert guardado.fecha_creacion == reclamo.ahora == guardado.clave_desde


async def test_lease_vigente_no_se_reclama_y_vencido_si(subject):
    primero = solicitud(owner="w1", lease_s=30)
    creado = (await subject.repo.reclamar(primero)).pago.fecha_creacion
    adelantado = datetime.now(UTC) + timedelta(minutes=5)  # a claimer whose clock runs 5 min ahead
    ocupado = await subject.repo.reclamar(solicitud(primero.id_pago, owner="w2", ahora=adelantado))
    assert not ocupado.reclamado
    assert ocupado.pago.lease.owner == "w1"
    await subject.envejecer(primero.id_pago, timedelta(seconds=30))
    retomado = await subject.repo.reclamar(solicitud(primero.id_pago, owner="w2"))
    assert retomado.reclamado
    assert retomado.pago.lease.owner == "w2"
    assert (retomado.pago.intentos, retomado.pago.reclamo) == (2, 2)
    assert retomado.pago.fecha_creacion == creado - timedelta(seconds=30)  # the payment keeps its birth date
    # The first lease's end (just now, by the store's clock) bounds its calls.
    assert retomado.ahora - timedelta(seconds=5) <= retomado.fin_llamadas_previas <= retomado.ahora


async def test_resultado_y_evento_se_guardan_juntos_y_solo_una_vez(subject):
    reclamo = await subject.repo.reclamar(solicitud())
    pago = reclamo.pago
    pago.marcar_exitoso("tr_1", T0 + timedelta(seconds=1))
    assert await subject.repo.guardar_resultado(pago) is not None
    guardado = await subject.repo.obtener(pago.id_pago)
    assert (guardado.estado, guardado.referencia_pago, guardado.lease) == (EstadoPago.EXITOSO, "tr_1", None)
    assert guardado.fecha_procesamiento == T0 + timedelta(seconds=1)
    assert await subject.eventos_de(pago.id_pago) == ["PagoExitoso"]
    # Another worker that also got an outcome for it stores nothing.
    otro = (await subject.repo.reclamar(solicitud())).pago
    otro.id_pago = pago.id_pago
    otro.marcar_fallido("Fondos insuficientes", T0)
    assert await subject.repo.guardar_resultado(otro) is None
    assert await subject.eventos_de(pago.id_pago) == ["PagoExitoso"]
    assert (await subject.repo.obtener(pago.id_pago)).estado is EstadoPago.EXITOSO


async def test_guardar_devuelve_lo_que_confirmo_en_su_forma_de_cable(subject):
    """What a stored result returns is the outbox as committed: the event the payment recorded, in
    the form the broker gets (keyed by payment, typed, its wire payload), in order."""
    pago = (await subject.repo.reclamar(solicitud())).pago
    pago.marcar_fallido("Fondos insuficientes", T0 + timedelta(seconds=2))
    [evento] = pago.eventos
    [confirmado] = await subject.repo.guardar_resultado(pago)
    assert (confirmado.event_id, confirmado.event_type, confirmado.id_pago) == (
        evento.event_id,
        "PagoFallido",
        pago.id_pago,
    )
    assert confirmado.key == str(pago.id_pago)
    assert confirmado.properties == {"event_type": "PagoFallido", "event_id": str(evento.event_id)}
    assert confirmado.payload == encode_event(evento)
    assert confirmado.creado_en is not None
    assert confirmado.creado_en.tzinfo is not None


async def test_un_pago_final_no_se_reclama_de_nuevo(subject):
    pago = (await subject.repo.reclamar(solicitud())).pago
    pago.marcar_fallido("Tarjeta rechazada", T0)
    await subject.repo.guardar_resultado(pago)
    await subject.envejecer(pago.id_pago, timedelta(days=1))
    reclamo = await subject.repo.reclamar(solicitud(pago.id_pago, owner="w2"))
    assert not reclamo.reclamado
    assert reclamo.pago.estado is EstadoPago.FALLIDO
    assert reclamo.pago.mensaje_error == "Tarjeta rechazada"


async def test_otros_terminos_no_reclaman_ni_con_lease_vencido(subject):
    pago = (await subject.repo.reclamar(solicitud())).pago
    await subject.envejecer(pago.id_pago, timedelta(minutes=5))
    for conflicto in (solicitud(pago.id_pago, monto="1.00"), solicitud(pago.id_pago, afiliado="otro")):
        reclamo = await subject.repo.reclamar(conflicto)
        assert not reclamo.reclamado
        assert reclamo.pago.importe.monto == Decimal("100.50")
        assert reclamo.pago.id_afiliado == "afiliado_123"


async def test_liberar_permite_retomar_enseguida(subject):
    pago = (await subject.repo.reclamar(solicitud(owner="w1", lease_s=3600))).pago
    assert await subject.repo.liberar(pago, Liberacion.LLAMO, POLITICA) is False
    reclamo = await subject.repo.reclamar(solicitud(pago.id_pago, owner="w2"))
    assert reclamo.reclamado


async def test_reclamos_concurrentes_del_mismo_pago_solo_uno_gana(subject):
    id_pago = uuid.uuid4()
    reclamos = await asyncio.gather(*(subject.repo.reclamar(solicitud(id_pago, owner=f"w{i}")) for i in range(10)))
    assert sum(r.reclamado for r in reclamos) == 1


async def test_muchos_reclamos_y_resultados_concurrentes(subject):
    pedidos = [solicitud() for _ in range(300)]
    reclamos = await asyncio.gather(*(subject.repo.reclamar(p) for p in pedidos))
    assert all(r.reclamado for r in reclamos)
    for i, r in enumerate(reclamos):
        if i % 3:
            r.pago.marcar_exitoso(f"tr_{i}", T0)
        else:
            r.pago.marcar_fallido("Fondos insuficientes", T0)
    assert all(await asyncio.gather(*(subject.repo.guardar_resultado(r.pago) for r in reclamos)))
    estados = [(await subject.repo.obtener(p.id_pago)).estado for p in pedidos]
    assert estados.count(EstadoPago.FALLIDO) == 100
    assert estados.count(EstadoPago.EXITOSO) == 200


async def test_pago_inexistente(subject):
    assert await subject.repo.obtener(uuid.uuid4()) is None


async def test_liberar_guarda_el_error_y_la_atencion(subject):
    pago = (await subject.repo.reclamar(solicitud(owner="w1", lease_s=3600))).pago
    pago.resultado_desconocido("Stripe 500", T0 + timedelta(seconds=1), PoliticaAtencion(max_intentos=1))
    assert await subject.repo.liberar(pago, Liberacion.LLAMO, POLITICA) is True
    guardado = await subject.repo.obtener(pago.id_pago)
    assert guardado.estado is EstadoPago.PROCESANDO
    assert (guardado.ultimo_error, guardado.requiere_atencion) == ("Stripe 500", True)
    assert guardado.lease.expira <= datetime.now(UTC) + timedelta(seconds=1)  # ended at the release
    # Settled under its claim after all: attention is no longer needed.
    pago.marcar_exitoso("tr_9", T0 + timedelta(seconds=3))
    assert await subject.repo.guardar_resultado(pago)
    assert not (await subject.repo.obtener(pago.id_pago)).requiere_atencion


async def test_la_edad_que_senala_es_la_del_almacen(subject):
    """Older than the attention age by the store's clock: flagged on release, whatever the attempts."""
    pago = (await subject.repo.reclamar(solicitud(owner="w1"))).pago
    await subject.envejecer(pago.id_pago, POLITICA.max_antiguedad)
    pago.resultado_desconocido("timeout", T0, POLITICA)  # the caller's clock (T0) says it is young
    assert not pago.requiere_atencion
    assert await subject.repo.liberar(pago, Liberacion.LLAMO, POLITICA) is True
    assert (await subject.repo.obtener(pago.id_pago)).requiere_atencion


async def test_liberar_no_toca_un_pago_que_ya_tiene_otro(subject):
    pago = (await subject.repo.reclamar(solicitud(owner="w1", lease_s=1))).pago
    await subject.envejecer(pago.id_pago, timedelta(seconds=2))
    await subject.repo.reclamar(solicitud(pago.id_pago, owner="w1"))  # the same owner: only the number differs
    pago.resultado_desconocido("tarde", T0, PoliticaAtencion(max_intentos=1))
    assert await subject.repo.liberar(pago, Liberacion.NO_LLAMO, POLITICA) is None
    guardado = await subject.repo.obtener(pago.id_pago)
    assert (guardado.reclamo, guardado.intentos, guardado.ultimo_error) == (2, 2, None)
    assert not guardado.requiere_atencion
    assert guardado.lease.expira > datetime.now(UTC)  # the new claim's lease, untouched


async def test_un_resultado_de_un_reclamo_viejo_no_se_guarda_ni_se_publica(subject):
    viejo = (await subject.repo.reclamar(solicitud(owner="w1", lease_s=1))).pago
    await subject.envejecer(viejo.id_pago, timedelta(seconds=2))
    nuevo = (await subject.repo.reclamar(solicitud(viejo.id_pago, owner="w1"))).pago
    viejo.marcar_fallido("rechazo tardío", T0)
    assert await subject.repo.guardar_resultado(viejo) is None
    assert await subject.eventos_de(viejo.id_pago) == []
    nuevo.marcar_exitoso("tr_nuevo", T0)
    assert await subject.repo.guardar_resultado(nuevo)
    assert await subject.eventos_de(viejo.id_pago) == ["PagoExitoso"]
    assert (await subject.repo.obtener(viejo.id_pago)).referencia_pago == "tr_nuevo"


async def test_atascados_son_los_de_lease_vencido(subject):
    vencido = (await subject.repo.reclamar(solicitud(owner="w1", lease_s=10))).pago
    vivo = (await subject.repo.reclamar(solicitud(owner="w1", lease_s=100))).pago
    hecho = (await subject.repo.reclamar(solicitud(owner="w1", lease_s=1))).pago
    hecho.marcar_exitoso("tr", T0)
    await subject.repo.guardar_resultado(hecho)
    for pago in (vencido, vivo, hecho):
        await subject.envejecer(pago.id_pago, timedelta(seconds=50))
    atascados = await subject.repo.atascados(timedelta(0), limite=10)
    assert [p.id_pago for p in atascados if p.id_pago in {vencido.id_pago, vivo.id_pago}] == [vencido.id_pago]
    assert vencido.id_pago not in {p.id_pago for p in await subject.repo.atascados(timedelta(minutes=1), limite=10)}


async def _pagar(repo: PostgresPagoRepository, n: int) -> None:
    """`n` payments claimed together, then their results saved together."""
    reclamos = await asyncio.gather(*(repo.reclamar(solicitud()) for _ in range(n)))
    assert all(r.reclamado for r in reclamos)
    for r in reclamos:
        r.pago.marcar_exitoso("tr_1", T0 + timedelta(seconds=1))
    assert all(await asyncio.gather(*(repo.guardar_resultado(r.pago) for r in reclamos)))


@pytest.mark.integration
async def test_reclamos_y_resultados_no_recorren_una_tabla_que_crecio_sin_estadisticas(postgres_server):
    """The hot connections keep one plan per statement, made on first use: made while `pagos` was
    nearly empty (a new database, before autovacuum's first ANALYZE), it must still look payments
    up by key once the table has grown. A plan left to the planner did not: a hash join over a
    sequential scan in every claim."""
    url = await create_database(postgres_server)
    engine = create_engine(url, pool_size=4)
    repo = PostgresPagoRepository(engine, max_batch=50, max_in_flight=1)
    for _ in range(8):  # past the 5 custom plans after which PostgreSQL may settle on a generic one
        await _pagar(repo, 1)
    async with engine.begin() as conn:
        await conn.execute(
            text("""
                INSERT INTO pagos (id_pago, id_afiliado, monto, moneda, estado, fecha_creacion, intentos)
                SELECT gen_random_uuid(), 'a', 1, 'USD', 'EXITOSO', now(), 1 FROM generate_series(1, 50000)
            """)
        )
    for _ in range(5):
        await _pagar(repo, 10)
    await repo.close()
    await engine.dispose()  # the backends exit, and report their statistics as they do
    leidas = await estadistica_tras_cerrar(
        url, "SELECT seq_tup_read + idx_tup_fetch FROM pg_stat_user_tables WHERE relname = 'pagos'"
    )
    # 50,000 rows were inserted, never read: reading 50 payments by key reads ~100 rows.
    assert leidas < 50_000, f"{leidas} filas de pagos leídas para 50 reclamos y 50 resultados"


@pytest.mark.integration
async def test_guardar_resultados_no_recorre_los_reclamos_ya_terminados(postgres_server):
    """Between two vacuums an index holds an entry for every row version it ever matched. The result
    statement looks its payments up by primary key: a partial index over PROCESANDO rows, which
    statistics say are few, tempted the planner into reading every payment processed since the last
    vacuum (a bitmap scan over thousands of dead entries) to write ten results."""
    url = await create_database(postgres_server)
    engine = create_engine(url, pool_size=4)
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE pagos SET (autovacuum_enabled = false)"))
        await conn.execute(
            text("""
                INSERT INTO pagos (id_pago, id_afiliado, monto, moneda, estado, fecha_creacion, intentos,
                                   lease_owner, lease_expira)
                SELECT gen_random_uuid(), 'a', 1, 'USD', 'PROCESANDO', now(), 1, 'w0', now() + interval '1 hour'
                FROM generate_series(1, 30000)
            """)
        )
        await conn.execute(
            text(
                "UPDATE pagos SET estado = 'EXITOSO', lease_owner = NULL, lease_expira = NULL WHERE lease_owner = 'w0'"
            )
        )
        await conn.execute(text("ANALYZE pagos"))
    repo = PostgresPagoRepository(engine, max_batch=50, max_in_flight=1)
    await _pagar(repo, 10)
    await repo.close()
    await engine.dispose()  # the backends exit, and report their statistics as they do
    leidas = await estadistica_tras_cerrar(
        url,
        "SELECT sum(idx_tup_read) FROM pg_stat_user_indexes WHERE relname = 'pagos' AND indexrelname <> 'pk_pagos'",
    )
    assert leidas < 1_000, f"{leidas} entradas leídas de índices parciales de pagos para escribir 10 resultados"


@pytest.mark.integration
async def test_los_planes_que_guardan_las_conexiones_del_grupo(postgres_server):
    """The plans the group-commit connections keep, made on an empty, unanalysed database: nested
    loops through the primary key, never a scan of a table nor a hash or merge join, and the
    result's events matched to its payments by one hash (not each against each)."""
    url = await create_database(postgres_server)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for nombre, valor in _PLANNER_SETTINGS.items():
            await conn.execute("SELECT set_config($1, $2, false)", nombre, valor)
        planes = {}
        for nombre, statement in (("reclamar", _CLAIM), ("guardar", _SAVE_RESULTS)):
            sentencia = _SQL[statement]
            await conn.execute(f"PREPARE {nombre} AS {sentencia.sql}")
            nulos = ", ".join("NULL" for _ in sentencia.arguments(collections.defaultdict(lambda: None)))
            planes[nombre] = "\n".join(f[0] for f in await conn.fetch(f"EXPLAIN EXECUTE {nombre}({nulos})"))
    finally:
        await conn.close()
    for nombre, plan in planes.items():
        assert "Index Scan using pk_pagos on pagos" in plan, (nombre, plan)
        for prohibido in ("Seq Scan", "Bitmap", "Hash Join", "Merge Join"):
            assert prohibido not in plan, (nombre, plan)
    assert "hashed SubPlan" in planes["guardar"], planes["guardar"]


async def test_un_pago_senalado_no_se_reclama_ni_sale_como_atascado(subject):
    """Automatic retries are over for a payment flagged for attention: only an operator resumes it."""
    politica = PoliticaAtencion(max_intentos=1)
    pago = (await subject.repo.reclamar(solicitud(lease_s=10))).pago
    pago.resultado_desconocido("timeout", T0 + timedelta(seconds=1), politica)
    assert pago.requiere_atencion
    await subject.repo.liberar(pago, Liberacion.LLAMO, politica)
    await subject.envejecer(pago.id_pago, timedelta(minutes=5))
    reclamo = await subject.repo.reclamar(solicitud(pago.id_pago, owner="w2"))
    assert not reclamo.reclamado
    assert reclamo.pago.requiere_atencion
    assert pago.id_pago not in {p.id_pago for p in await subject.repo.atascados(timedelta(0), 10)}


async def test_la_generacion_de_clave_se_guarda_antes_de_usarla_y_solo_quien_lo_tiene(subject):
    pago = (await subject.repo.reclamar(solicitud(owner="w1"))).pago
    assert pago.generacion_clave == 1
    assert await subject.repo.renovar_clave(pago, POLITICA) is None  # a young key is not renewed
    await subject.envejecer(pago.id_pago, timedelta(hours=21))
    desde = await subject.repo.renovar_clave(pago, POLITICA)
    assert desde is not None
    guardado = await subject.repo.obtener(pago.id_pago)
    assert (guardado.generacion_clave, guardado.clave_desde, guardado.clave_agotada) == (2, desde, False)
    assert await subject.repo.renovar_clave(pago, POLITICA) is None  # generation 2 again: already recorded
    ajeno = await subject.repo.obtener(pago.id_pago)
    ajeno.reclamo = 7
    await subject.envejecer(pago.id_pago, timedelta(hours=21))
    assert await subject.repo.renovar_clave(ajeno, POLITICA) is None  # not the holder's claim
    assert (await subject.repo.obtener(pago.id_pago)).generacion_clave == 2


async def test_sin_clave_nueva_hasta_que_las_llamadas_previas_se_asienten(subject):
    """A call the earlier claim gave up on may still land, unlisted: no new key within the margin."""
    politica = PoliticaAtencion(max_antiguedad=timedelta(days=1))  # not flagged at 21 h: retried
    pago = (await subject.repo.reclamar(solicitud(owner="w1"))).pago
    await subject.envejecer(pago.id_pago, timedelta(hours=21))
    pago.resultado_desconocido("timeout", T0, politica)
    assert await subject.repo.liberar(pago, Liberacion.LLAMO, politica) is False  # its calls ended just now
    reclamo = await subject.repo.reclamar(solicitud(pago.id_pago, owner="w2"))
    assert reclamo.reclamado
    assert reclamo.fin_llamadas_previas is not None
    assert reclamo.fin_llamadas_previas >= reclamo.ahora - timedelta(seconds=5)
    assert await subject.repo.renovar_clave(reclamo.pago, politica) is None
    await subject.envejecer(pago.id_pago, politica.margen_asentamiento)
    assert await subject.repo.renovar_clave(reclamo.pago, politica) is not None


async def test_esperar_no_mueve_el_fin_de_las_llamadas(subject):
    """A claim that sent nothing leaves the calls' end where the earlier claims left it, and holds
    the payment until the margin past it (a redelivery meanwhile finds it in course)."""
    pago = (await subject.repo.reclamar(solicitud(owner="w1"))).pago
    pago.resultado_desconocido("timeout", T0, POLITICA, clave_agotada=True)
    await subject.repo.liberar(pago, Liberacion.LLAMO, POLITICA)
    segundo = await subject.repo.reclamar(solicitud(pago.id_pago, owner="w2"))
    assert segundo.pago.clave_agotada
    segundo.pago.no_intentado("esperando", T0)
    assert await subject.repo.liberar(segundo.pago, Liberacion.ESPERA, POLITICA) is False
    guardado = await subject.repo.obtener(pago.id_pago)
    assert guardado.lease.expira >= segundo.fin_llamadas_previas + POLITICA.margen_asentamiento
    assert guardado.intentos == 1  # the wait was no attempt
    assert not (await subject.repo.reclamar(solicitud(pago.id_pago, owner="w3"))).reclamado
    await subject.envejecer(pago.id_pago, POLITICA.margen_asentamiento)
    tercero = await subject.repo.reclamar(solicitud(pago.id_pago, owner="w3"))
    assert tercero.reclamado
    assert tercero.fin_llamadas_previas == segundo.fin_llamadas_previas - POLITICA.margen_asentamiento
    assert await subject.repo.renovar_clave(tercero.pago, POLITICA) is not None


@pytest.mark.integration
async def test_un_resultado_viejo_en_el_mismo_lote_no_tapa_el_del_reclamo_vigente(postgres):
    """A stale holder's result and the current holder's, flushed in one statement: the current one
    is stored and published, the stale one gets nothing (whichever came first)."""
    repo = PostgresPagoRepository(postgres.engine, max_batch=50, max_in_flight=1, linger=0.2)
    viejo = (await repo.reclamar(solicitud(owner="w1", lease_s=1))).pago
    await envejecer_pago(postgres.engine, viejo.id_pago, timedelta(seconds=2))
    nuevo = (await repo.reclamar(solicitud(viejo.id_pago, owner="w1"))).pago
    viejo.marcar_fallido("rechazo tardío", T0)
    nuevo.marcar_exitoso("tr_nuevo", T0)
    tardio, vigente = await asyncio.gather(repo.guardar_resultado(viejo), repo.guardar_resultado(nuevo))
    await repo.close()
    assert tardio is None
    assert [e.event_type for e in vigente] == ["PagoExitoso"]
    async with postgres.engine.connect() as conn:
        fila = (await conn.execute(text("SELECT estado, referencia_pago FROM pagos WHERE id_pago = :i"),
                                   {"i": viejo.id_pago})).one()  # fmt: skip
    assert tuple(fila) == ("EXITOSO", "tr_nuevo")
