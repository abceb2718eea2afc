"""`conciliar` end to end on PostgreSQL and the simulator over HTTP: every class, the window's
edges, partial reversals, other currencies, what is recorded, an idempotent re-run, and the lock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import text

from pagos_worker.adapters.postgres.conciliacion import CLAVE_DEL_BLOQUEO, PostgresRegistroDeConciliaciones
from pagos_worker.adapters.postgres.database import DEFAULT_LIMITS, asyncpg_dsn
from pagos_worker.application.conciliacion import ConciliacionEnCursoError, ConciliarHandler
from pagos_worker.application.conciliacion_programada import ConciliacionProgramada
from pagos_worker.application.ports.conciliacion import LibroDeLaPasarela, TransferenciaVista
from pagos_worker.domain.conciliacion import ClaseDiferencia as C
from tests.integration.conciliacion_helpers import DESTINOS, T0, T1, escena

pytestmark = pytest.mark.integration


class LibroEnPausa:
    """Stripe's books, read only once the test lets it: a run held in the middle."""

    def __init__(self, libro: LibroDeLaPasarela) -> None:
        self._libro = libro
        self.dentro, self.seguir = asyncio.Event(), asyncio.Event()

    @property
    def peticiones(self) -> int:
        return self._libro.peticiones

    async def transferencias(self, desde: datetime, hasta: datetime) -> AsyncIterator[list[TransferenciaVista]]:
        self.dentro.set()
        await self.seguir.wait()
        async for pagina in self._libro.transferencias(desde, hasta):
            yield pagina

    async def de_los_pagos(self, ids: Sequence[uuid.UUID]) -> AsyncIterator[tuple[uuid.UUID, list[TransferenciaVista]]]:
        async for hallado in self._libro.de_los_pagos(ids):
            yield hallado

    async def reversados_en(self, desde: datetime, hasta: datetime) -> AsyncIterator[list[str]]:
        async for grupos in self._libro.reversados_en(desde, hasta):
            yield grupos


UNA_HORA = timedelta(hours=1)


def claves(resultado) -> set[tuple[C, uuid.UUID | None, uuid.UUID | None, str | None]]:
    return {(d.clase, d.id_pago, d.id_reverso, d.referencia) for d in resultado.diferencias}


async def test_todo_coincide(engine, database_url):
    async with escena(engine, database_url) as e:
        await e.pagado()
        await e.pagado(afiliado="afiliado_mapa", destino="acct_mapeado")  # the mapping file's account
        await e.pagado(en=T0, procesado=T0 + timedelta(seconds=1))  # created at the window's very start
        # A payment finished after the window whose transfer is in it; its lookup is not needed.
        await e.pagado(en=T1 - timedelta(seconds=1), procesado=T1 + timedelta(seconds=2))
        # One created before the window, finished in it: found by its payment.
        await e.pagado(en=T0 - UNA_HORA, procesado=T0 + UNA_HORA)
        # Partial reversals, ours, with Stripe showing them.
        id_pago, tr = await e.pagado(monto=5000)
        for monto in ("10.00", "5.50"):
            r = await e.reverso(id_pago, monto)
            referencia = await e.reversal(tr, int(float(monto) * 100), r)
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE reversos SET referencia_reverso = :f WHERE id_reverso = :r"),
                                   {"f": referencia, "r": r})  # fmt: skip
        # Outside the window on both sides: not looked at.
        await e.transfer(str(uuid.uuid4()), 100, en=T1)
        await e.transfer(str(uuid.uuid4()), 100, en=T0 - timedelta(seconds=1))
        await e.pago(procesado=T1 + UNA_HORA)  # finished after the window, no transfer: not this window's
        resultado = await e.handler(T0, T1, origen="cli")
        assert resultado.diferencias == []
        assert resultado.conteos[C.COINCIDE] == 6
        assert resultado.peticiones >= 2
        async with engine.connect() as conn:
            fila = (await conn.execute(text("SELECT estado, peticiones, conteos FROM conciliaciones"))).one()
        assert fila.estado == "COMPLETA"
        assert fila.peticiones == resultado.peticiones
        assert fila.conteos["coincide"] == 6


async def test_cada_clase_de_diferencia(engine, database_url):
    async with escena(engine, database_url) as e:
        sin_transfer = await e.pago(procesado=T0 + UNA_HORA, referencia="tr_inexistente")
        nunca = str(uuid.uuid4())
        tr_nunca = await e.transfer(nunca, 700, en=T0 + UNA_HORA)  # made directly, never recorded
        tr_invalido = await e.transfer("no-es-un-uuid", 700, en=T0 + UNA_HORA)
        fallido = await e.pago("FALLIDO", procesado=T0 + UNA_HORA)
        tr_fallido = await e.transfer(str(fallido), 1000, en=T0 + UNA_HORA)
        doble, _ = await e.pagado()
        await e.transfer(str(doble), 1000, en=T0 + 2 * UNA_HORA)
        otro_importe, tr_importe = await e.pagado(monto=999)
        async with engine.begin() as conn:  # the service believes it paid 10.00
            await conn.execute(text("UPDATE pagos SET monto = 10.00 WHERE id_pago = :i"), {"i": otro_importe})
        otra_moneda = uuid.uuid4()
        tr_moneda = await e.transfer(str(otra_moneda), 1000, currency="usd", en=T0 + UNA_HORA)
        await e.pago(moneda="EUR", referencia=tr_moneda, id_pago=otra_moneda, procesado=T0 + UNA_HORA)
        otro_destino, tr_destino = await e.pagado(destino="acct_de_otro")
        con_externo, tr_externo = await e.pagado(monto=5000)
        trr_externo = await e.reversal(tr_externo, 100)  # from the dashboard: no metadata of ours
        en_curso, tr_en_curso = await e.pagado(monto=5000)
        r_en_curso = await e.reverso(en_curso, "1.00", estado="PROCESANDO")
        trr_en_curso = await e.reversal(tr_en_curso, 100, r_en_curso)
        faltante, _ = await e.pagado(monto=5000)
        r_faltante = await e.reverso(faltante, "2.00", referencia="trr_que_stripe_no_tiene")

        resultado = await e.handler(T0, T1, origen="cli")

        assert claves(resultado) == {
            (C.EXITOSO_SIN_TRANSFERENCIA, sin_transfer, None, "tr_inexistente"),
            (C.TRANSFERENCIA_SIN_EXITO, uuid.UUID(nunca), None, tr_nunca),
            (C.TRANSFERENCIA_SIN_EXITO, None, None, tr_invalido),
            (C.TRANSFERENCIA_SIN_EXITO, fallido, None, tr_fallido),
            (C.TRANSFERENCIAS_MULTIPLES, doble, None, None),
            (C.IMPORTE_DISTINTO, otro_importe, None, tr_importe),
            (C.IMPORTE_DISTINTO, otra_moneda, None, tr_moneda),
            (C.DESTINO_DISTINTO, otro_destino, None, tr_destino),
            (C.REVERSO_EXTERNO, con_externo, None, trr_externo),
            (C.REVERSO_SIN_REGISTRO, en_curso, r_en_curso, trr_en_curso),
            (C.REVERSO_FALTANTE, faltante, r_faltante, "trr_que_stripe_no_tiene"),
        }
        assert resultado.conteos[C.TRANSFERENCIA_SIN_EXITO] == 3
        # The payments whose only difference is a reversal's still coincide as transfers.
        assert resultado.conteos[C.COINCIDE] == 0
        [importe] = [d for d in resultado.diferencias if d.referencia == tr_importe]
        assert importe.servicio["unidades_menores"] == 1000
        assert importe.pasarela["unidades_menores"] == 999
        [destino] = [d for d in resultado.diferencias if d.clase is C.DESTINO_DISTINTO]
        assert (destino.servicio["destino_esperado"], destino.pasarela["destino"]) == ("acct_af1", "acct_de_otro")
        [multiples] = [d for d in resultado.diferencias if d.clase is C.TRANSFERENCIAS_MULTIPLES]
        assert len(multiples.pasarela["transferencias"]) == 2

        # Recorded once; the same window again finds the same and records nothing new.
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM diferencias")) == 11
        otra = await e.handler(T0, T1, origen="cli")
        assert claves(otra) == claves(resultado)
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM diferencias")) == 11
            estados = (await conn.execute(text("SELECT estado FROM conciliaciones ORDER BY id"))).scalars().all()
        assert estados == ["COMPLETA", "COMPLETA"]


async def test_una_corrida_a_la_vez(engine, database_url):
    async with escena(engine, database_url) as e:
        await e.pagado()
        async with engine.begin() as conn:  # a run whose process died before its end
            await conn.execute(text("INSERT INTO conciliaciones (desde, hasta, origen, estado, iniciada) "
                                    "VALUES (:d, :h, 'cli', 'EN_CURSO', now())"), {"d": T0, "h": T1})  # fmt: skip
        otra = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            assert await otra.fetchval("SELECT pg_try_advisory_lock($1)", CLAVE_DEL_BLOQUEO)
            with pytest.raises(ConciliacionEnCursoError):
                await e.handler(T0, T1, origen="programada")
        finally:
            await otra.close()
        # Two at once: the first holds the lock while it reads Stripe; the second is refused.
        libro = LibroEnPausa(e.handler._libro)
        primera = asyncio.create_task(ConciliarHandler(e.registro, libro, margen=timedelta(minutes=5))(T0, T1))
        await libro.dentro.wait()
        with pytest.raises(ConciliacionEnCursoError):
            await e.handler(T0, T1, origen="cli")
        libro.seguir.set()
        assert (await primera).conteos[C.COINCIDE] == 1
        async with engine.connect() as conn:
            estados = (await conn.execute(text("SELECT estado, error FROM conciliaciones ORDER BY id"))).all()
        assert [e.estado for e in estados] == ["FALLIDA", "COMPLETA"]  # the lock refused the other one first
        assert estados[0].error.startswith("interrumpida")


async def test_stripe_inalcanzable_deja_la_corrida_fallida(engine, database_url):
    async with escena(engine, database_url) as e:
        await e.pagado()
        e.handler._libro._pasarela._url = e.handler._libro._pasarela._url.with_port(1)
        with pytest.raises(Exception, match="Stripe sin responder"):
            await e.handler(T0, T1, origen="cli")
        async with engine.connect() as conn:
            fila = (await conn.execute(text("SELECT estado, error FROM conciliaciones"))).one()
        assert fila.estado == "FALLIDA"
        assert "Stripe" in fila.error


async def test_la_pasada_programada_concilia_lo_asentado_hacia_atras(engine, database_url):
    async with escena(engine, database_url) as e:
        async with engine.connect() as conn:
            ahora = await conn.scalar(text("SELECT now()"))
        id_pago, _ = await e.pagado(en=ahora - UNA_HORA)
        reciente = await e.transfer(str(uuid.uuid4()), 100, en=ahora - timedelta(minutes=1))  # within the margin
        programada = ConciliacionProgramada(e.handler, intervalo=3600, retroceso=timedelta(days=1))
        r = await programada.pasada()
        async with engine.connect() as conn:
            despues = await conn.scalar(text("SELECT now()"))
        assert r is not None
        assert r.conteos[C.COINCIDE] == 1
        assert reciente not in {d.referencia for d in r.diferencias}  # not settled: the next pass's
        # The pass read the database's clock between `ahora` and `despues`; its window is in whole seconds.
        margen = timedelta(minutes=5)
        assert ahora - margen - timedelta(seconds=1) <= r.ventana.hasta <= despues - margen
        assert r.ventana.hasta - r.ventana.desde == timedelta(days=1)
        async with engine.connect() as conn:
            origen = await conn.scalar(text("SELECT origen FROM conciliaciones"))
        assert origen == "programada"
        assert id_pago


async def test_una_pasada_programada_por_intervalo_entre_todas_las_replicas(engine, database_url):
    """Every replica (workers and relays) runs the scheduled pass on its own timer: the lock kept two
    from running at once, but each ran one every interval (a window of a day, ~10,800 requests for a
    million payouts, read back to back with enough replicas). A pass that finds a scheduled run
    completed less than an interval ago, by the database's clock, skips; a failed one does not count,
    nor does an operator's."""
    async with escena(engine, database_url) as e:
        await e.pagado()
        replicas = [ConciliacionProgramada(e.handler, intervalo=3600, retroceso=timedelta(days=1)) for _ in range(3)]
        assert await replicas[0].pasada() is not None
        assert [await r.pasada() for r in replicas[1:]] == [None, None]
        async with engine.begin() as conn:  # an hour later by the database's clock
            await conn.execute(text("UPDATE conciliaciones SET iniciada = iniciada - interval '61 minutes'"))
        await e.handler(T0, T1, origen="cli")  # an operator's run is not the schedule's
        assert await replicas[1].pasada() is not None
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE conciliaciones SET estado = 'FALLIDA' WHERE id = (SELECT max(id) FROM conciliaciones)")
            )
        assert await replicas[2].pasada() is not None  # the last one failed: the next replica runs
        async with engine.connect() as conn:
            filas = (await conn.execute(text("SELECT origen, estado FROM conciliaciones ORDER BY id"))).all()
        assert [tuple(f) for f in filas] == [
            ("programada", "COMPLETA"), ("cli", "COMPLETA"), ("programada", "FALLIDA"), ("programada", "COMPLETA")
        ]  # fmt: skip


async def test_los_reversos_del_servicio_en_la_ventana_se_comprueban_aunque_su_transfer_sea_anterior(
    engine, database_url
):
    async with escena(engine, database_url) as e:
        viejo, _ = await e.pagado(monto=5000, en=T0 - timedelta(days=3))  # paid and reconciled days ago
        r = await e.reverso(viejo, "2.00", referencia="trr_que_stripe_no_tiene")  # finished in the window
        resultado = await e.handler(T0, T1, origen="cli")
        assert claves(resultado) == {(C.REVERSO_FALTANTE, viejo, r, "trr_que_stripe_no_tiene")}


async def test_un_reverso_aun_en_curso_no_es_una_diferencia(engine, database_url):
    async with escena(engine, database_url) as e:
        id_pago, tr = await e.pagado(monto=5000)
        r = await e.reverso(id_pago, "1.00", estado="PROCESANDO")
        async with engine.connect() as conn:
            ahora = await conn.scalar(text("SELECT now()"))
        e.reloj.ahora = ahora.timestamp()  # made at Stripe a moment ago: its outcome may be on its way
        await e.reversal(tr, 100, r)
        resultado = await e.handler(T0, T1, origen="cli")
        assert resultado.diferencias == []


async def test_se_devuelven_las_primeras_y_se_registran_todas(engine, database_url):
    async with escena(engine, database_url) as e:
        for _ in range(3):
            await e.pago(procesado=T0 + UNA_HORA)  # EXITOSO, no transfer
        registro = PostgresRegistroDeConciliaciones(database_url, DEFAULT_LIMITS, DESTINOS, mostrar=2)
        r = await ConciliarHandler(registro, e.handler._libro, margen=timedelta(minutes=5))(T0, T1)
        assert r.total_diferencias == 3
        assert len(r.diferencias) == 2
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM diferencias")) == 3


async def test_un_transfer_que_no_es_el_registrado_no_coincide(engine, database_url):
    """Stripe's only transfer of a paid payment is not the one we recorded: what we reported does not
    exist there (the reversals would target it), a critical exitoso_sin_transferencia, not coincide."""
    async with escena(engine, database_url) as e:
        id_pago = uuid.uuid4()
        tr = await e.transfer(str(id_pago), 1000, en=T0 + UNA_HORA)
        await e.pago(referencia="tr_no_es_este", id_pago=id_pago, procesado=T0 + UNA_HORA + timedelta(seconds=1))
        resultado = await e.handler(T0, T1, origen="cli")
        assert claves(resultado) == {(C.EXITOSO_SIN_TRANSFERENCIA, id_pago, None, "tr_no_es_este")}
        [diferencia] = resultado.diferencias
        assert diferencia.pasarela["referencia"] == tr
        assert resultado.conteos[C.COINCIDE] == 0


async def test_un_pago_en_pleno_proceso_no_se_juzga_hasta_asentarse(engine, database_url):
    """A transfer of a payment a worker holds now (or gave back less than the settle margin ago) is
    one in flight, not money moved unreported; the same payment stuck with an old lease is."""
    async with escena(engine, database_url) as e:
        en_vuelo, atascado = uuid.uuid4(), uuid.uuid4()
        for id_pago in (en_vuelo, atascado):
            await e.transfer(str(id_pago), 1000, en=T0 + UNA_HORA)
            await e.pago("PROCESANDO", id_pago=id_pago)
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE pagos SET lease_owner = 'w1', lease_expira = now() + interval '30 s' WHERE id_pago = :i"),
                {"i": en_vuelo},
            )
            await conn.execute(
                text(
                    "UPDATE pagos SET lease_owner = 'w1', lease_expira = now() - interval '1 hour' WHERE id_pago = :i"
                ),
                {"i": atascado},
            )
        resultado = await e.handler(T0, T1, origen="cli")
        assert {(c, i) for c, i, _, _ in claves(resultado)} == {(C.TRANSFERENCIA_SIN_EXITO, atascado)}


async def test_un_reverso_del_dashboard_en_la_ventana_de_un_transfer_anterior_se_ve(engine, database_url):
    # Reversals come days after their transfer: the window's reversal activity at Stripe (its
    # balance transactions) names the payments whose transfers must be looked up.
    async with escena(engine, database_url) as e:
        antiguo, tr = await e.pagado(monto=5000, en=T0 - timedelta(days=2))
        e.reloj.ahora = (T0 + 3 * UNA_HORA).timestamp()
        trr = await e.reversal(tr, 700)  # from the dashboard, in the window
        _, tr_fuera = await e.pagado(monto=5000, en=T0 - timedelta(days=3))
        e.reloj.ahora = (T1 + UNA_HORA).timestamp()
        await e.reversal(tr_fuera, 100)  # after the window: another run's

        resultado = await e.handler(T0, T1, origen="cli")

        assert claves(resultado) == {(C.REVERSO_EXTERNO, antiguo, None, trr)}
