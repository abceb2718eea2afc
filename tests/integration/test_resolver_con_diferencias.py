"""`pagos resolver` and the reconciliation's differences (real PostgreSQL): settling a payment still
PROCESANDO EXITOSO from Stripe's one transfer closes, in the same transaction, the unresolved
`transferencia_sin_exito` of that very transfer, and nothing else; where the evidence is
ambiguous it refuses, and every difference stays as recorded. End to end: the reconciliation run
against the simulator over HTTP, then the resolver looking the payment up there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from pagos_worker.adapters.postgres.operador import PostgresOperadorRepository
from pagos_worker.adapters.postgres.views import PostgresPagoViews
from pagos_worker.application.operador import OperacionRechazadaError, ResolverPagoHandler
from pagos_worker.application.ports.pasarela import TransferenciaHallada
from pagos_worker.domain import EstadoPago
from pagos_worker.domain.conciliacion import ClaseDiferencia as C
from tests.integration.conciliacion_helpers import T0, T1, escena
from tests.integration.test_diferencias_postgres import conciliacion, diferencia
from tests.integration.test_operador_postgres import SIN_MARGEN, TRANSFER, Pasarela, marcado
from tests.integration.test_stripe_adapter import adaptador

pytestmark = pytest.mark.integration
UNA_HORA = timedelta(hours=1)


async def filas(engine) -> dict[int, tuple]:
    async with engine.connect() as conn:
        resultado = await conn.execute(text("SELECT id, resuelta_en, resuelta_por, nota FROM diferencias"))
        return {f.id: (f.resuelta_en, f.resuelta_por, f.nota) for f in resultado}


async def test_resolver_exitoso_cierra_la_transferencia_sin_exito_de_ese_transfer_y_nada_mas(postgres):
    repo = postgres.repo()
    pago, otro = await marcado(repo), await marcado(repo)
    c = await conciliacion(postgres.engine)
    suya = await diferencia(postgres.engine, c, id_pago=pago.id_pago, referencia="tr_1")
    de_otro_transfer = await diferencia(postgres.engine, c, id_pago=pago.id_pago, referencia="tr_viejo")
    de_otra_clase = await diferencia(postgres.engine, c, "reverso_externo", id_pago=pago.id_pago, referencia="trr_1")
    de_otro_pago = await diferencia(postgres.engine, c, id_pago=otro.id_pago, referencia="tr_1")

    resolver = ResolverPagoHandler(PostgresOperadorRepository(postgres.engine), Pasarela([TRANSFER]),
                                   lease=timedelta(seconds=60))  # fmt: skip
    resuelto = await resolver(pago.id_pago, operador="ana", motivo="visto en el dashboard")

    assert (resuelto.pago.estado, resuelto.pago.referencia_pago) == (EstadoPago.EXITOSO, "tr_1")
    assert resuelto.diferencias_resueltas == (suya,)
    despues = await filas(postgres.engine)
    resuelta_en, por, nota = despues[suya]
    async with postgres.engine.connect() as conn:
        resuelto_en = await conn.scalar(text("SELECT resuelto_en FROM resoluciones WHERE id_pago = :i"),
                                        {"i": pago.id_pago})  # fmt: skip
    assert resuelta_en >= resuelto_en  # the database's clock, as it wrote the resolution
    assert por == "ana"
    assert "tr_1" in nota
    assert "visto en el dashboard" in nota
    for intacta in (de_otro_transfer, de_otra_clase, de_otro_pago):
        assert despues[intacta] == (None, None, None)
    views = PostgresPagoViews(postgres.engine)
    assert suya not in {d.id for d in await views.diferencias_sin_resolver(100)}
    assert [d.id for d in (await views.estado_pago(pago.id_pago)).diferencias] == [de_otro_transfer, de_otra_clase]


async def test_con_evidencia_ambigua_o_un_fallido_no_cierra_ninguna(postgres):
    repo = postgres.repo()
    operador = PostgresOperadorRepository(postgres.engine)
    c = await conciliacion(postgres.engine)
    # Two transfers for one payment: paid twice, refused as before.
    doble = await marcado(repo)
    d_doble = await diferencia(postgres.engine, c, id_pago=doble.id_pago, referencia="tr_1")
    otro_transfer = TransferenciaHallada("tr_2", 2500, "USD", datetime.now(UTC), "acct_af_1")
    with pytest.raises(OperacionRechazadaError, match="pagado más de una vez"):
        await ResolverPagoHandler(operador, Pasarela([TRANSFER, otro_transfer]), lease=timedelta(seconds=60))(
            doble.id_pago, operador="ana"
        )
    # Of another amount: refused too.
    importe = await marcado(repo)
    d_importe = await diferencia(postgres.engine, c, id_pago=importe.id_pago, referencia="tr_1")
    caro = TransferenciaHallada("tr_1", 9999, "USD", datetime.now(UTC), "acct_af_1")
    with pytest.raises(OperacionRechazadaError, match="revíselo en Stripe"):
        await ResolverPagoHandler(operador, Pasarela([caro]), lease=timedelta(seconds=60))(
            importe.id_pago, operador="ana"
        )
    # Left FALLIDO (no transfer at Stripe now): the difference is not explained by it.
    fallido = await marcado(repo)
    d_fallido = await diferencia(postgres.engine, c, id_pago=fallido.id_pago, referencia="tr_borrado")
    resuelto = await ResolverPagoHandler(operador, Pasarela([]), lease=timedelta(seconds=60),
                                         margen_fallido=SIN_MARGEN)(fallido.id_pago, operador="ana",
                                                                    fallido="nunca se pagó")  # fmt: skip
    assert (resuelto.pago.estado, resuelto.diferencias_resueltas) == (EstadoPago.FALLIDO, ())
    despues = await filas(postgres.engine)
    assert [despues[d] for d in (d_doble, d_importe, d_fallido)] == [(None, None, None)] * 3


async def test_de_punta_a_punta_conciliar_y_resolver_contra_el_simulador(engine, database_url):
    async with escena(engine, database_url) as e:
        # Paid at Stripe, still PROCESANDO here (the worker never heard back): the reconciliation's
        # transferencia_sin_exito. Another paid twice at Stripe: ambiguous.
        en_curso = await e.pago("PROCESANDO", monto="10.00", afiliado="af1")
        tr = await e.transfer(str(en_curso), 1000, destino="acct_af1", en=T0 + UNA_HORA)
        doble = await e.pago("PROCESANDO", monto="10.00", afiliado="af1")
        for hora in (2, 3):
            await e.transfer(str(doble), 1000, destino="acct_af1", en=T0 + hora * UNA_HORA)

        resultado = await e.handler(T0, T1, origen="cli")
        sin_exito = {(d.id_pago, d.referencia) for d in resultado.diferencias if d.clase is C.TRANSFERENCIA_SIN_EXITO}
        assert (en_curso, tr) in sin_exito
        assert len([1 for id_pago, _ in sin_exito if id_pago == doble]) == 2
        async with engine.connect() as conn:
            [suya] = (await conn.execute(text("SELECT id FROM diferencias WHERE referencia = :r"), {"r": tr})).scalars()

        async with adaptador(e.url) as stripe:
            resolver = ResolverPagoHandler(PostgresOperadorRepository(engine), stripe, lease=timedelta(seconds=60))
            resuelto = await resolver(en_curso, operador="ana")
            with pytest.raises(OperacionRechazadaError, match="pagado más de una vez"):
                await resolver(doble, operador="ana")

        assert (resuelto.pago.estado, resuelto.pago.referencia_pago) == (EstadoPago.EXITOSO, tr)
        assert resuelto.diferencias_resueltas == (suya,)
        views = PostgresPagoViews(engine)
        pendientes = {(d.id_pago, d.clase) for d in await views.diferencias_sin_resolver(100)}
        assert (en_curso, "transferencia_sin_exito") not in pendientes
        assert (doble, "transferencia_sin_exito") in pendientes  # the ambiguous ones stay for an operator
        # A later run finds the payment EXITOSO with its one transfer: it coincides.
        again = await e.handler(T0, T1, origen="cli")
        assert again.conteos[C.COINCIDE] == 1
        assert not any(d.id_pago == en_curso for d in again.diferencias)
