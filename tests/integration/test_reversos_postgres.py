"""Reversals on PostgreSQL, through the handlers a worker runs: partial and full, duplicates and
conflicts, before and during their payment, of a failed payment, refused for balance, unknown
outcomes retried after a lookup, and fenced claims. The gateway is the fake (its contract with
Stripe is the adapter's tests'); everything stored is the real store's."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker.adapters.postgres.operador import PostgresOperadorRepository
from pagos_worker.adapters.postgres.reversos import PostgresReversoRepository
from pagos_worker.adapters.postgres.views import PostgresPagoViews
from pagos_worker.application.commands import ProcesarPago, ReversarPago
from pagos_worker.application.despacho import Despacho
from pagos_worker.application.handlers import Accion, ProcesarPagoHandler
from pagos_worker.application.operador import OperacionRechazadaError, ReanudarPagoHandler
from pagos_worker.application.ports.pasarela import ResultadoPago
from pagos_worker.application.queries import PagoNoEncontradoError
from pagos_worker.application.reconciliador import Reconciliador
from pagos_worker.application.reversos import ReversarPagoHandler
from pagos_worker.clock import utcnow
from pagos_worker.domain import Dinero, Moneda, PoliticaAtencion
from pagos_worker.domain.reclamo import Lease
from pagos_worker.domain.reverso import EstadoReverso, MotivoReverso, Reverso
from tests.fakes import INDETERMINADO, ExitoSinRespuesta, FakePasarelaDePagos

pytestmark = pytest.mark.integration

LEASE = timedelta(seconds=30)


class Mundo:
    """A worker's two handlers on one store and one fake gateway."""

    def __init__(
        self,
        postgres,
        *,
        owner: str = "w1",
        politica: PoliticaAtencion | None = None,
        pasarela: FakePasarelaDePagos | None = None,
    ) -> None:
        self.engine: AsyncEngine = postgres.engine
        self.pasarela = pasarela or FakePasarelaDePagos()
        self.reversos = PostgresReversoRepository(self.engine)
        politica = politica or PoliticaAtencion()
        self.pagar = ProcesarPagoHandler(postgres.repo(), self.pasarela, owner=owner, lease=LEASE, atencion=politica)
        self.reversar = ReversarPagoHandler(self.reversos, self.pasarela, owner=owner, lease=LEASE, atencion=politica)

    async def pago(self, monto: str = "100.00", id_pago: uuid.UUID | None = None, afiliado: str = "af_1"):
        comando = ProcesarPago(id_pago or uuid.uuid4(), afiliado, Dinero(Decimal(monto), Moneda.USD))
        return comando, await self.pagar(comando)

    async def fila(self, tabla: str, columna: str, valor: uuid.UUID) -> dict:
        async with self.engine.connect() as conn:
            fila = (await conn.execute(text(f"SELECT * FROM {tabla} WHERE {columna} = :v"), {"v": valor})).mappings()  # noqa: S608
            return dict(fila.one())

    async def eventos(self, id_pago: uuid.UUID) -> list[tuple[str, uuid.UUID | None]]:
        async with self.engine.connect() as conn:
            filas = await conn.execute(
                text("SELECT event_type, id_reverso FROM outbox WHERE id_pago = :i ORDER BY id"), {"i": id_pago}
            )
            return [(f.event_type, f.id_reverso) for f in filas]

    async def envejecer_reverso(self, id_reverso: uuid.UUID, delta: timedelta) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                text("""
                    WITH t AS (SELECT CAST(:d AS interval) AS d)
                    UPDATE reversos SET fecha_creacion = fecha_creacion - t.d, lease_expira = lease_expira - t.d,
                        clave_desde = clave_desde - t.d, fin_llamadas = fin_llamadas - t.d
                    FROM t WHERE id_reverso = :i
                """),
                {"d": delta, "i": id_reverso},
            )


def reverso(id_pago: uuid.UUID, monto: str | None = None, **kw) -> ReversarPago:
    return ReversarPago(
        kw.pop("id_reverso", uuid.uuid4()), id_pago, None if monto is None else Decimal(monto), MotivoReverso.FRAUDE,
        **kw,
    )  # fmt: skip


@pytest.fixture
def mundo(postgres) -> Mundo:
    return Mundo(postgres)


async def test_parcial_y_luego_el_resto_deja_el_pago_reversado(mundo):
    pago, _ = await mundo.pago("100.00")
    primero = reverso(pago.id_pago, "40.00", operador="ana")
    desenlace = await mundo.reversar(primero)
    assert (desenlace.accion, desenlace.reverso, desenlace.reversado) == (
        Accion.ACK,
        "exitoso",
        Dinero(Decimal("40.00"), Moneda.USD),
    )
    fila_pago = await mundo.fila("pagos", "id_pago", pago.id_pago)
    assert (fila_pago["estado"], fila_pago["monto_reversado"]) == ("EXITOSO", Decimal("40.00"))
    guardado = await mundo.fila("reversos", "id_reverso", primero.id_reverso)
    assert (guardado["estado"], guardado["monto"], guardado["operador"]) == ("EXITOSO", Decimal("40.00"), "ana")
    assert guardado["referencia_reverso"].startswith("trr_fake_")

    resto = reverso(pago.id_pago)  # no amount: everything not reversed yet
    await mundo.reversar(resto)
    fila_pago = await mundo.fila("pagos", "id_pago", pago.id_pago)
    assert (fila_pago["estado"], fila_pago["monto_reversado"]) == ("REVERSADO", Decimal("100.00"))
    assert (await mundo.fila("reversos", "id_reverso", resto.id_reverso))["monto"] == Decimal("60.00")
    assert await mundo.eventos(pago.id_pago) == [
        ("PagoExitoso", None),
        ("PagoReversado", primero.id_reverso),
        ("PagoReversado", resto.id_reverso),
    ]
    async with mundo.engine.connect() as conn:
        total = (
            await conn.execute(
                text("SELECT payload::jsonb -> 'data' ->> 'monto_reversado_total' FROM outbox WHERE id_reverso = :i"),
                {"i": resto.id_reverso},
            )
        ).scalar()
    assert total == "100.00"
    # Nothing is left: a third is refused without a gateway call.
    tercero = reverso(pago.id_pago, "0.01")
    assert (await mundo.reversar(tercero)).reverso == "excede_lo_pagado"
    assert [r for r, _ in mundo.pasarela.reversos_llamadas] == [primero.id_reverso, resto.id_reverso]


async def test_el_mismo_id_reverso_es_un_duplicado_y_con_otros_terminos_un_conflicto(mundo):
    pago, _ = await mundo.pago()
    comando = reverso(pago.id_pago, "10.00")
    await mundo.reversar(comando)
    duplicado = await mundo.reversar(comando)
    assert (duplicado.accion, duplicado.motivo) == (Accion.ACK, "ya_procesado")
    conflicto = await mundo.reversar(reverso(pago.id_pago, "20.00", id_reverso=comando.id_reverso))
    assert (conflicto.accion, conflicto.motivo) == (Accion.DLQ, "conflicto_con_reverso_existente")
    assert len(mundo.pasarela.reversos_llamadas) == 1
    assert [t for t, _ in await mundo.eventos(pago.id_pago)] == ["PagoExitoso", "PagoReversado"]


async def test_mas_de_lo_pagado_falla_sin_llamar(mundo):
    pago, _ = await mundo.pago("50.00")
    comando = reverso(pago.id_pago, "50.01")
    desenlace = await mundo.reversar(comando)
    assert (desenlace.accion, desenlace.reverso) == (Accion.ACK, "excede_lo_pagado")
    assert mundo.pasarela.reversos_llamadas == []
    assert (await mundo.fila("reversos", "id_reverso", comando.id_reverso))["estado"] == "FALLIDO"


async def test_un_reverso_antes_de_su_pago_lo_anula_y_el_pago_falla_sin_llamar(mundo):
    id_pago = uuid.uuid4()
    comando = reverso(id_pago)
    desenlace = await mundo.reversar(comando)
    assert (desenlace.accion, desenlace.reverso) == (Accion.ACK, "anulado")
    assert await mundo.eventos(id_pago) == [("PagoAnulado", comando.id_reverso)]
    assert (await mundo.reversar(comando)).motivo == "ya_procesado"  # a redelivery: no second event

    _, pagado = await mundo.pago("30.00", id_pago=id_pago)
    assert (pagado.accion, pagado.estado) == (Accion.ACK, "FALLIDO")
    assert mundo.pasarela.llamadas == []
    fila = await mundo.fila("pagos", "id_pago", id_pago)
    assert (fila["estado"], fila["mensaje_error"], fila["id_afiliado"], fila["monto"]) == (
        "FALLIDO",
        "anulado antes de pagar",
        "af_1",
        Decimal("30.00"),
    )
    assert [t for t, _ in await mundo.eventos(id_pago)] == ["PagoAnulado", "PagoFallido"]
    # The payment's command again: already final, nothing more.
    _, otra_vez = await mundo.pago("30.00", id_pago=id_pago)
    assert otra_vez.motivo == "ya_procesado"
    # A second reversal of an annulled payment is annulled too, with its own event.
    segundo = reverso(id_pago)
    assert (await mundo.reversar(segundo)).reverso == "anulado"


async def test_de_un_pago_fallido_queda_anulado(mundo):
    id_pago = uuid.uuid4()
    mundo.pasarela.respuestas[id_pago] = ResultadoPago.fallo("Fondos insuficientes")
    await mundo.pago(id_pago=id_pago)
    comando = reverso(id_pago)
    assert (await mundo.reversar(comando)).reverso == "anulado"
    assert mundo.pasarela.reversos_llamadas == []


async def test_mientras_el_pago_procesa_el_reverso_espera(mundo):
    id_pago = uuid.uuid4()
    mundo.pasarela.respuestas[id_pago] = INDETERMINADO
    await mundo.pago(id_pago=id_pago)  # left PROCESANDO, outcome unknown
    comando = reverso(id_pago, "10.00")
    espera = await mundo.reversar(comando)
    assert (espera.accion, espera.motivo) == (Accion.ESPERAR, "esperando_pago")
    assert (await mundo.fila("reversos", "id_reverso", comando.id_reverso))["estado"] == "PENDIENTE"
    mundo.pasarela.respuestas[id_pago] = ResultadoPago.exito("tr_x")
    await mundo.pago(id_pago=id_pago)  # the redelivery pays it
    assert (await mundo.reversar(comando)).reverso == "exitoso"
    assert (await mundo.fila("pagos", "id_pago", id_pago))["monto_reversado"] == Decimal("10.00")


async def test_saldo_insuficiente_falla_y_queda_para_un_operador(mundo):
    pago, _ = await mundo.pago()
    comando = reverso(pago.id_pago, "10.00")
    mundo.pasarela.respuestas_reverso[comando.id_reverso] = ResultadoPago.fallo(
        "sin saldo", "req_1", "saldo_insuficiente"
    )
    desenlace = await mundo.reversar(comando)
    assert (desenlace.accion, desenlace.reverso) == (Accion.ACK, "saldo_insuficiente")
    fila = await mundo.fila("reversos", "id_reverso", comando.id_reverso)
    assert (fila["estado"], fila["codigo"], fila["requiere_atencion"]) == ("FALLIDO", "saldo_insuficiente", True)
    assert fila["referencia_reverso"] == "req_1"  # Stripe's request id: what its support asks for
    assert (await mundo.fila("pagos", "id_pago", pago.id_pago))["monto_reversado"] == 0
    assert [t for t, _ in await mundo.eventos(pago.id_pago)] == ["PagoExitoso", "ReversoFallido"]


async def test_un_resultado_desconocido_se_consulta_antes_de_volver_a_llamar(mundo):
    pago, _ = await mundo.pago()
    comando = reverso(pago.id_pago, "25.00")
    mundo.pasarela.respuestas_reverso[comando.id_reverso] = ExitoSinRespuesta()
    primero = await mundo.reversar(comando)
    assert (primero.accion, primero.motivo) == (Accion.REINTENTAR, "resultado_indeterminado")
    # The redelivery finds the reversal the first call made: settled, not sent again.
    segundo = await mundo.reversar(comando)
    assert segundo.reverso == "exitoso"
    assert mundo.pasarela.reversos_consultas == [comando.id_reverso]
    assert mundo.pasarela.reversos_llamadas == [(comando.id_reverso, 1)]
    assert (await mundo.fila("pagos", "id_pago", pago.id_pago))["monto_reversado"] == Decimal("25.00")


async def test_sin_hallar_nada_se_reintenta_con_la_misma_clave_y_tras_los_limites_se_marca(postgres):
    mundo = Mundo(postgres, politica=PoliticaAtencion(max_intentos=2))
    pago, _ = await mundo.pago()
    comando = reverso(pago.id_pago, "5.00")
    mundo.pasarela.respuestas_reverso[comando.id_reverso] = INDETERMINADO
    assert (await mundo.reversar(comando)).motivo == "resultado_indeterminado"
    segundo = await mundo.reversar(comando)
    assert (segundo.accion, segundo.motivo) == (Accion.ACK, "requiere_atencion")
    assert mundo.pasarela.reversos_llamadas == [(comando.id_reverso, 1), (comando.id_reverso, 1)]
    fila = await mundo.fila("reversos", "id_reverso", comando.id_reverso)
    assert (fila["estado"], fila["requiere_atencion"], fila["intentos"]) == ("PROCESANDO", True, 2)
    assert (await mundo.reversar(comando)).motivo == "requiere_atencion"  # no more automatic calls
    assert len(mundo.pasarela.reversos_llamadas) == 2


async def test_un_reverso_en_curso_no_se_reclama_dos_veces_y_un_tenedor_obsoleto_no_escribe(postgres):
    a = Mundo(postgres, owner="a")
    b = Mundo(postgres, owner="b", pasarela=a.pasarela)  # one gateway, two workers
    pago, _ = await a.pago()
    comando = reverso(pago.id_pago, "10.00")
    llegada = asyncio.Event()
    soltar = asyncio.Event()
    original = a.pasarela.revertir

    async def lenta(r):
        llegada.set()
        await soltar.wait()
        return await original(r)

    a.pasarela.revertir = lenta  # type: ignore[method-assign]
    en_a = asyncio.create_task(a.reversar(comando))
    await llegada.wait()
    assert (await b.reversar(comando)).motivo == "en_curso"  # a's lease is live
    await a.envejecer_reverso(comando.id_reverso, LEASE + timedelta(seconds=1))  # a's lease ran out
    a.pasarela.revertir = original  # type: ignore[method-assign]
    a.pasarela.respuestas_reverso[comando.id_reverso] = INDETERMINADO
    tomado = await b.reversar(comando)  # b claims it again, finds nothing yet, and its own call is lost
    assert tomado.motivo == "resultado_indeterminado"
    a.pasarela.respuestas_reverso[comando.id_reverso] = ResultadoPago.exito("trr_de_a")
    soltar.set()
    tarde = await en_a  # a's call comes back paid, under a claim taken since: it writes nothing
    assert tarde.motivo == "ya_procesado"
    fila = await a.fila("reversos", "id_reverso", comando.id_reverso)
    assert (fila["estado"], fila["reclamo"]) == ("PROCESANDO", 2)
    assert (await a.fila("pagos", "id_pago", pago.id_pago))["monto_reversado"] == 0
    # The next delivery looks it up, finds what a's call made, and settles it once.
    assert (await b.reversar(comando)).reverso == "exitoso"
    assert (await a.fila("pagos", "id_pago", pago.id_pago))["monto_reversado"] == Decimal("10.00")
    assert [t for t, _ in await a.eventos(pago.id_pago)] == ["PagoExitoso", "PagoReversado"]


async def test_dos_reversos_del_mismo_pago_a_la_vez_van_de_uno_en_uno(mundo):
    pago, _ = await mundo.pago("100.00")
    uno, otro = reverso(pago.id_pago, "60.00"), reverso(pago.id_pago, "60.00")
    llegada, soltar = asyncio.Event(), asyncio.Event()
    original = mundo.pasarela.revertir

    async def lenta(r):
        llegada.set()
        await soltar.wait()
        return await original(r)

    mundo.pasarela.revertir = lenta  # type: ignore[method-assign]
    primero = asyncio.create_task(mundo.reversar(uno))
    await llegada.wait()
    espera = await mundo.reversar(otro)  # the first is at the gateway: this one waits its turn
    assert (espera.accion, espera.motivo) == (Accion.ESPERAR, "esperando_pago")
    soltar.set()
    assert (await primero).reverso == "exitoso"
    # Its turn now: 60 of the 40 left is more than was paid, refused without a call.
    assert (await mundo.reversar(otro)).reverso == "excede_lo_pagado"
    assert (await mundo.fila("pagos", "id_pago", pago.id_pago))["monto_reversado"] == Decimal("60.00")


async def test_reverso_y_pago_a_la_vez_nunca_se_pierden_el_uno_al_otro(postgres):
    """Whatever the order the store serializes them in, the result is coherent: either the payment
    is paid and the reversal reverses it (or waits for it), or the payment is annulled unpaid."""
    mundo = Mundo(postgres)
    for _ in range(20):
        mundo.pasarela.llamadas.clear()
        id_pago = uuid.uuid4()
        comando = reverso(id_pago)
        (_, pagado), revertido = await asyncio.gather(mundo.pago("10.00", id_pago=id_pago), mundo.reversar(comando))
        if revertido.reverso == "anulado":
            if pagado.estado is None:  # it met the annulled row being written: its redelivery closes it
                assert pagado.motivo == "en_curso"
                _, pagado = await mundo.pago("10.00", id_pago=id_pago)
            assert pagado.estado == "FALLIDO"
            assert mundo.pasarela.llamadas == []
        else:
            assert pagado.estado == "EXITOSO"
            assert revertido.reverso == "exitoso" or revertido.motivo == "esperando_pago"


@pytest.mark.parametrize(("monto_b", "llegada_b"), [("40.00", "en_curso"), ("500.00", "conflicto")])
async def test_dos_entregas_nuevas_del_mismo_reverso_a_la_vez_se_deciden_una_tras_otra(mundo, monto_b, llegada_b):
    """Both read before either stored it (the payment's row held meanwhile): the second must still
    see the first's claim: a live claim (same terms) or a conflict (other terms), never a second
    claim nor an overwrite of the first."""
    pago, _ = await mundo.pago("100.00")
    id_reverso = uuid.uuid4()

    def pedido(monto: str) -> tuple[Reverso, Lease]:
        ahora = utcnow()
        reverso_ = Reverso(
            id_reverso=id_reverso, id_pago=pago.id_pago, monto_pedido=Decimal(monto), motivo=MotivoReverso.FRAUDE,
            fecha_creacion=ahora,
        )  # fmt: skip
        return reverso_, Lease("w", ahora + LEASE)

    async with mundo.engine.connect() as bloqueo:
        tx = await bloqueo.begin()
        await bloqueo.execute(text("SELECT 1 FROM pagos WHERE id_pago = :i FOR UPDATE"), {"i": pago.id_pago})
        a = asyncio.create_task(mundo.reversos.reclamar(*pedido("40.00")))
        await asyncio.sleep(0.3)
        b = asyncio.create_task(mundo.reversos.reclamar(*pedido(monto_b)))
        await asyncio.sleep(0.3)
        await tx.commit()
    ra, rb = await asyncio.gather(a, b)
    assert (ra.llegada.value, rb.llegada.value) == ("reclamado", llegada_b)
    fila = await mundo.fila("reversos", "id_reverso", id_reverso)
    assert (fila["estado"], fila["monto"], fila["reclamo"]) == ("PROCESANDO", Decimal("40.00"), 1)
    assert await mundo.eventos(pago.id_pago) == [("PagoExitoso", None)]


async def test_el_reconciliador_retoma_un_reverso_cuyo_comando_se_perdio(mundo, postgres):
    """A reversal that waited for its payment, whose command then never came back (dead-lettered,
    lost): past the grace the reconciler re-runs it from what it asked, and it ends."""
    id_pago = uuid.uuid4()
    mundo.pasarela.respuestas[id_pago] = INDETERMINADO
    await mundo.pago(id_pago=id_pago)
    comando = reverso(id_pago, "10.00")
    assert (await mundo.reversar(comando)).motivo == "esperando_pago"
    mundo.pasarela.respuestas[id_pago] = ResultadoPago.exito("tr_x")
    await mundo.pago(id_pago=id_pago)  # paid now; the reversal's command is gone
    reconciliador = Reconciliador(
        postgres.repo(), Despacho(mundo.pagar, mundo.reversar), reversos=mundo.reversos, gracia=timedelta(seconds=60)
    )
    assert await reconciliador.reconciliar() == {}  # not yet past the grace
    await mundo.envejecer_reverso(comando.id_reverso, timedelta(minutes=2))
    assert await reconciliador.reconciliar() == {"procesado": 1}
    fila = await mundo.fila("reversos", "id_reverso", comando.id_reverso)
    assert (fila["estado"], fila["monto"]) == ("EXITOSO", Decimal("10.00"))


class Comandos:
    def __init__(self) -> None:
        self.publicados: list = []

    async def publicar(self, comandos) -> None:
        self.publicados += comandos


async def test_un_operador_reconoce_un_reverso_rechazado_y_reanuda_uno_desconocido(postgres):
    """`pagos reanudar` with a reversal's id: a refused one is acknowledged (out of the attention
    list, nothing published: the saga has its ReversoFallido); one flagged after unknown outcomes
    goes back to automatic processing, and its command, published again, settles it once."""
    mundo = Mundo(postgres, politica=PoliticaAtencion(max_intentos=1))
    views = PostgresPagoViews(mundo.engine)
    pago, _ = await mundo.pago()
    rechazado, desconocido = reverso(pago.id_pago, "10.00"), reverso(pago.id_pago, "20.00")
    mundo.pasarela.respuestas_reverso[rechazado.id_reverso] = ResultadoPago.fallo(
        "sin saldo", "req_1", "saldo_insuficiente"
    )
    mundo.pasarela.respuestas_reverso[desconocido.id_reverso] = ExitoSinRespuesta()
    await mundo.reversar(rechazado)
    assert (await mundo.reversar(desconocido)).motivo == "requiere_atencion"  # one attempt, outcome unknown
    assert await views.contar_requieren_atencion() == 2
    comandos = Comandos()
    reanudar = ReanudarPagoHandler(PostgresOperadorRepository(mundo.engine), comandos)

    reconocido = await reanudar(rechazado.id_reverso)
    assert (reconocido.reverso.estado, reconocido.comando_publicado) == (EstadoReverso.FALLIDO, False)
    assert comandos.publicados == []
    with pytest.raises(OperacionRechazadaError, match="no está marcado"):
        await reanudar(rechazado.id_reverso)

    reanudado = await reanudar(desconocido.id_reverso)
    assert reanudado.comando_publicado
    [publicado] = comandos.publicados
    assert (publicado.id_reverso, publicado.monto) == (desconocido.id_reverso, Decimal("20.00"))
    assert await views.contar_requieren_atencion() == 0
    assert (await mundo.reversar(publicado)).reverso == "exitoso"  # the lookup finds the first call's
    assert mundo.pasarela.reversos_llamadas.count((desconocido.id_reverso, 1)) == 1
    assert (await mundo.fila("pagos", "id_pago", pago.id_pago))["monto_reversado"] == Decimal("20.00")


async def test_el_reconciliador_no_se_atasca_con_reversos_que_aun_deben_esperar(mundo, postgres):
    """Waiting reversals that must still wait (their payment unsettled) are not what it takes up:
    with a batch of one, a reversal that can go on is still found behind an older one that cannot."""
    atascado = uuid.uuid4()
    mundo.pasarela.respuestas[atascado] = INDETERMINADO
    await mundo.pago(id_pago=atascado)  # left PROCESANDO
    espera = reverso(atascado)
    assert (await mundo.reversar(espera)).motivo == "esperando_pago"
    listo = uuid.uuid4()
    mundo.pasarela.respuestas[listo] = INDETERMINADO
    await mundo.pago(id_pago=listo)
    puede = reverso(listo, "5.00")
    assert (await mundo.reversar(puede)).motivo == "esperando_pago"
    mundo.pasarela.respuestas[listo] = ResultadoPago.exito("tr_y")
    await mundo.pago(id_pago=listo)  # paid now; its reversal's command is gone
    for r in (espera, puede):
        await mundo.envejecer_reverso(r.id_reverso, timedelta(minutes=2))
    await mundo.envejecer_reverso(espera.id_reverso, timedelta(minutes=1))  # the older of the two
    reconciliador = Reconciliador(
        postgres.repo(), Despacho(mundo.pagar, mundo.reversar), reversos=mundo.reversos,
        gracia=timedelta(seconds=60), lote=1,
    )  # fmt: skip
    assert await reconciliador.reconciliar() == {"procesado": 1}
    assert (await mundo.fila("reversos", "id_reverso", puede.id_reverso))["estado"] == "EXITOSO"
    assert (await mundo.fila("reversos", "id_reverso", espera.id_reverso))["estado"] == "PENDIENTE"


async def test_un_pago_anulado_antes_de_llegar_no_es_un_pago_para_el_operador(mundo):
    id_pago = uuid.uuid4()
    await mundo.reversar(reverso(id_pago))
    reanudar = ReanudarPagoHandler(PostgresOperadorRepository(mundo.engine), Comandos())
    with pytest.raises(PagoNoEncontradoError, match="no existe el pago"):
        await reanudar(id_pago)  # the row without terms is no payment (never a crash reading it)
