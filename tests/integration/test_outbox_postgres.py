"""The outbox on PostgreSQL: atomic with the payment, skip-locked lots, NOTIFY wake-ups."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from sqlalchemy import text

from pagos_worker.adapters.postgres.database import create_engine
from pagos_worker.adapters.postgres.outbox import PostgresOutboxStore
from pagos_worker.adapters.postgres.repository import PostgresPagoRepository
from pagos_worker.adapters.postgres.views import PostgresPagoViews
from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.application.relay import OutboxRelay
from pagos_worker.domain import Dinero, EstadoPago, Lease, Moneda, Pago
from tests.conftest import create_database, estadistica_tras_cerrar
from tests.fakes import FakePublisher

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


async def pagos_procesados(repo, n: int, confirmados: list[OutboxEvent] | None = None) -> list[Pago]:
    """n payments paid, one after the other; what each result committed is added to `confirmados`."""
    pagos = []
    for i in range(n):
        pago = Pago.crear(
            id_pago=uuid.uuid4(), id_afiliado=f"a{i}", importe=Dinero(Decimal("10.00"), Moneda.EUR), ahora=T0
        )
        pago.iniciar_procesamiento(Lease("w", T0 + timedelta(minutes=1)), T0)
        pagos.append((await repo.reclamar(pago)).pago)
    for pago in pagos:  # one after the other: the outbox order is then defined
        pago.marcar_exitoso(f"tr_{pago.id_afiliado}", T0)
        eventos = await repo.guardar_resultado(pago)
        assert eventos is not None
        if confirmados is not None:
            confirmados.extend(eventos)
    return pagos


async def test_estado_y_evento_van_en_la_misma_transaccion(engine, postgres):
    """A unit of work: if the outbox row cannot be written, the new state is not written either."""
    repo = postgres.repo()
    [hecho] = await pagos_procesados(repo, 1)
    async with engine.connect() as conn:
        usado = await conn.scalar(text("SELECT event_id FROM outbox WHERE id_pago = :i"), {"i": hecho.id_pago})
    pago = Pago.crear(id_pago=uuid.uuid4(), id_afiliado="b", importe=Dinero(Decimal(5), Moneda.USD), ahora=T0)
    pago.iniciar_procesamiento(Lease("w", T0 + timedelta(minutes=1)), T0)
    pago = (await repo.reclamar(pago)).pago
    pago.marcar_exitoso("tr_b", T0)
    # An event id already in the outbox: the outbox insert violates its unique key.
    pago.eventos[0] = dataclasses.replace(pago.eventos[0], event_id=usado)
    with pytest.raises(asyncpg.UniqueViolationError):
        await repo.guardar_resultado(pago)
    assert (await repo.obtener(pago.id_pago)).estado is EstadoPago.PROCESANDO
    async with engine.connect() as conn:
        n = await conn.scalar(text("SELECT count(*) FROM outbox WHERE id_pago = :i"), {"i": pago.id_pago})
    assert n == 0


async def test_lotes_en_orden_y_marcados_al_terminar(engine, postgres):
    repo = postgres.repo()
    pagos = await pagos_procesados(repo, 5)
    store = postgres.outbox()
    async with store.reservar_pendientes(3) as lote:
        assert [e.id_pago for e in lote.eventos] == [p.id_pago for p in pagos[:3]]
        assert b'"event_type":"PagoExitoso"' in lote.eventos[0].payload
        await lote.marcar_publicados(datetime.now(UTC))
    async with store.reservar_pendientes(10) as lote:
        assert [e.id_pago for e in lote.eventos] == [p.id_pago for p in pagos[3:]]
    # Not marked: still pending.
    stats = await PostgresPagoViews(engine).estadisticas_outbox()
    assert (stats.total_eventos, stats.eventos_procesados, stats.eventos_pendientes) == (5, 3, 2)
    assert stats.antiguedad_pendiente_mas_antiguo_s is not None
    await store.close()


async def test_si_la_publicacion_falla_el_lote_sigue_pendiente(engine, postgres):
    await pagos_procesados(postgres.repo(), 2)
    store = postgres.outbox()
    with pytest.raises(ConnectionError):
        await OutboxRelay(store, FakePublisher(fallos=1)).publicar_pendientes()
    stats = await PostgresPagoViews(engine).estadisticas_outbox()
    assert stats.eventos_pendientes == 2
    await store.close()


async def test_dos_relays_a_la_vez_nunca_publican_un_evento_dos_veces(engine, postgres):
    await pagos_procesados(postgres.repo(), 400)
    stores = [postgres.outbox() for _ in range(2)]
    publishers = [FakePublisher(), FakePublisher()]
    relays = [OutboxRelay(s, p, lote=20) for s, p in zip(stores, publishers, strict=True)]
    await asyncio.gather(*(r.vaciar() for r in relays), *(r.vaciar() for r in relays))
    ids = [m.properties["event_id"] for p in publishers for m in p.mensajes]
    assert len(ids) == 400
    assert len(set(ids)) == 400
    assert all(p.mensajes for p in publishers)  # both took part
    stats = await PostgresPagoViews(engine).estadisticas_outbox()
    assert (stats.eventos_procesados, stats.eventos_pendientes) == (400, 0)
    for s in stores:
        await s.close()


async def _esperando_notify(store, timeout: float) -> tuple[asyncio.Task[None], float]:
    """The store listening, a wait of `timeout` s for the next NOTIFY under way, and when it began
    (it cannot time out sooner than `timeout` after that)."""
    await store.esperar_nuevos(0.01)  # connects and starts listening
    await store.esperar_nuevos(0.5)  # the first wait after connecting returns at once
    inicio = time.monotonic()
    espera = asyncio.create_task(store.esperar_nuevos(timeout))
    await asyncio.sleep(0.05)
    return espera, inicio


async def test_el_relay_despierta_con_cada_commit(engine, postgres):
    """Woken, not timed out: the wait's timeout is far longer than the test waits for it (how soon
    after the commit is latency, which the bench reports as `relay_lag_ms`)."""
    store = postgres.outbox()
    espera, _ = await _esperando_notify(store, 120)
    await pagos_procesados(postgres.repo(), 1)
    await asyncio.wait_for(espera, 60)
    await store.close()


async def test_la_retencion_borra_solo_lo_publicado_hace_tiempo(engine, postgres):
    pagos = await pagos_procesados(postgres.repo(), 6)
    async with engine.begin() as conn:
        # Two published long ago, two published just now, two still pending.
        for i, pago in enumerate(pagos[:4]):
            edad = timedelta(days=8) if i < 2 else timedelta(0)
            await conn.execute(
                text("UPDATE outbox SET publicado_en = now() - CAST(:edad AS interval) WHERE id_pago = :i"),
                {"edad": edad, "i": pago.id_pago},
            )
    store = postgres.outbox()
    relay = OutboxRelay(store, FakePublisher(), retencion=timedelta(days=7))
    assert await relay.limpiar(lote=1) == 2
    async with engine.connect() as conn:
        quedan = {r.id_pago for r in await conn.execute(text("SELECT id_pago FROM outbox"))}
    assert quedan == {p.id_pago for p in pagos[2:]}
    await store.close()


async def test_vista_de_estado_leida_de_postgres(engine, postgres):
    """The status view (read raw, in one round trip) has the stored payment's exact values and types."""
    [hecho] = await pagos_procesados(postgres.repo(), 1)
    vista = await PostgresPagoViews(engine).estado_pago(hecho.id_pago)
    assert vista is not None
    assert type(vista.id) is uuid.UUID
    assert vista.id == hecho.id_pago
    assert (vista.id_afiliado, vista.monto, vista.moneda, vista.estado) == ("a0", Decimal("10.00"), "EUR", "EXITOSO")
    assert vista.referencia_pago == "tr_a0"
    assert vista.fecha_creacion == hecho.fecha_creacion  # the database's time of the claim
    assert vista.fecha_creacion.tzinfo is not None
    assert await PostgresPagoViews(engine).estado_pago(uuid.uuid4()) is None


async def test_lo_que_publica_quien_lo_confirma_le_llega_y_los_relays_esperan_la_gracia(engine, postgres):
    confirmados = []
    repo = postgres.repo(publicador="w1")
    pagos = await pagos_procesados(repo, 3, confirmados)
    assert [e.id_pago for e in confirmados] == [p.id_pago for p in pagos]
    assert [e.event_id for e in confirmados] == [p.eventos[-1].event_id for p in pagos]
    assert all(e.creado_en is not None and b'"PagoExitoso"' in e.payload for e in confirmados)
    store = postgres.outbox()
    async with store.reservar_pendientes(10, gracia=timedelta(seconds=30)) as lote:
        assert lote.eventos == []  # w1's to publish for 30 s
    async with store.reservar_pendientes(10, gracia=timedelta(seconds=30), propio="w1") as lote:
        assert [e.id for e in lote.eventos] == [e.id for e in confirmados]  # w1's own last flush
    async with store.reservar_pendientes(10, gracia=timedelta(0)) as lote:
        assert len(lote.eventos) == 3  # past the grace period: any relay's
    t1, t2 = datetime.now(UTC), datetime.now(UTC) + timedelta(milliseconds=5)
    await asyncio.gather(store.marcar_publicados(confirmados[:2], t1), store.marcar_publicados(confirmados[2:], t2))
    async with engine.connect() as conn:
        marcas = (await conn.execute(text("SELECT publicado_en FROM outbox ORDER BY id"))).scalars().all()
    assert marcas == [t1, t1, t2]  # when the broker confirmed each, not when the mark was written
    stats = await PostgresPagoViews(engine).estadisticas_outbox()
    assert (stats.eventos_procesados, stats.eventos_pendientes) == (3, 0)


async def test_solo_lo_que_nadie_publica_por_si_mismo_despierta_a_los_relays(engine, postgres):
    store = postgres.outbox()
    espera, inicio = await _esperando_notify(store, 0.8)
    await pagos_procesados(postgres.repo(publicador="w1"), 1)
    await asyncio.wait_for(espera, 30)
    assert time.monotonic() - inicio >= 0.8  # no NOTIFY: it waited out its timeout


async def test_las_marcas_no_recorren_los_pendientes_aunque_la_cola_crezca(postgres_server):
    """A mark looks its events up by key whatever the backlog: with a plan kept from when the outbox
    was empty, each mark would walk every pending event (after a broker outage, all of them)."""
    url = await create_database(postgres_server)
    engine = create_engine(url, pool_size=4)
    confirmados: list[OutboxEvent] = []
    repo = PostgresPagoRepository(engine, publicador="w1")
    store = PostgresOutboxStore(engine, url)
    for _ in range(8):  # past the 5 custom plans after which PostgreSQL may settle on a generic one
        await pagos_procesados(repo, 1, confirmados)
        await store.marcar_publicados(confirmados[-1:], datetime.now(UTC))
    async with engine.begin() as conn:
        await conn.execute(
            text("""
                WITH p AS (
                    INSERT INTO pagos (id_pago, id_afiliado, monto, moneda, estado, fecha_creacion, intentos)
                    SELECT gen_random_uuid(), 'a', 1, 'USD', 'EXITOSO', now(), 1 FROM generate_series(1, 50000)
                    RETURNING id_pago
                )
                INSERT INTO outbox (event_id, event_type, id_pago, payload, publicador)
                SELECT gen_random_uuid(), 'PagoExitoso', id_pago, '{}', 'w2' FROM p
            """)
        )
    for _ in range(5):
        await pagos_procesados(repo, 2, confirmados)
        await store.marcar_publicados(confirmados[-2:], datetime.now(UTC))
    await store.close()
    await repo.close()
    await engine.dispose()  # the backends exit, and report their statistics as they do
    leidas = await estadistica_tras_cerrar(
        url, "SELECT seq_tup_read + idx_tup_fetch FROM pg_stat_user_tables WHERE relname = 'outbox'"
    )
    assert leidas < 50_000, f"{leidas} filas de outbox leídas para marcar 18 eventos"
    assert await estadistica_tras_cerrar(url, "SELECT count(*) FROM outbox WHERE publicado_en IS NOT NULL") == 18
