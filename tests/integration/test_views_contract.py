"""The read side's `PagoViews` contract, on the fake and on PostgreSQL alike: what operators see of
a payment, the attention list and count, and the outbox's counters, written through each one's
repository."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial

import pytest

from pagos_worker.adapters.postgres.views import PostgresPagoViews
from pagos_worker.application.ports.repository import Liberacion
from pagos_worker.application.queries import CausaAtencion, FiltroAtencion
from pagos_worker.domain import Dinero, Lease, Moneda, Pago, PoliticaAtencion
from tests.conftest import envejecer_pago
from tests.fake_views import FakePagoViews
from tests.fakes import FakePagoRepository

EDAD = timedelta(hours=1)


class Subject:
    def __init__(self, repo, views, envejecer) -> None:
        self.repo = repo
        self.views = views
        self.envejecer = envejecer  # the store's clock moved on for one payment


@pytest.fixture(params=["fake", pytest.param("postgres", marks=pytest.mark.integration)])
def subject(request) -> Subject:
    if request.param == "fake":
        repo = FakePagoRepository()
        return Subject(repo, FakePagoViews(repo, atencion_tras=EDAD), repo.envejecer)
    postgres = request.getfixturevalue("postgres")
    engine = postgres.engine
    return Subject(postgres.repo(), PostgresPagoViews(engine, atencion_tras=EDAD), partial(envejecer_pago, engine))


async def reclamado(subject, *, hace=timedelta(0), monto="100.50") -> Pago:
    """Claimed `hace` ago by the store's clock (the only one that dates a payment)."""
    ahora = datetime.now(UTC)
    pago = Pago.crear(id_pago=uuid.uuid4(), id_afiliado="af_9", importe=Dinero(Decimal(monto), Moneda.COP), ahora=ahora)
    pago.iniciar_procesamiento(Lease("w1", ahora + timedelta(seconds=30)), ahora)
    reclamado = (await subject.repo.reclamar(pago)).pago
    if hace:
        await subject.envejecer(pago.id_pago, hace)
        reclamado.fecha_creacion -= hace
    return reclamado


async def test_el_estado_de_un_pago_como_lo_ven_los_operadores(subject):
    pago = await reclamado(subject, monto="4000000000.00")
    pago.marcar_exitoso("tr_9", pago.fecha_creacion + timedelta(seconds=2))
    await subject.repo.guardar_resultado(pago)
    vista = await subject.views.estado_pago(pago.id_pago)
    assert (vista.id, vista.id_afiliado, vista.monto, vista.moneda) == (
        pago.id_pago,
        "af_9",
        Decimal("4000000000.00"),
        "COP",
    )
    assert (vista.estado, vista.referencia_pago, vista.intentos) == ("EXITOSO", "tr_9", 1)
    assert (vista.requiere_atencion, vista.ultimo_error, vista.mensaje_error) == (False, None, None)
    assert vista.fecha_creacion == pago.fecha_creacion
    assert vista.fecha_procesamiento == pago.fecha_creacion + timedelta(seconds=2)
    assert await subject.views.estado_pago(uuid.uuid4()) is None


async def test_la_lista_de_atencion_tiene_los_senalados_y_los_viejos_en_proceso(subject):
    senalado = await reclamado(subject, hace=timedelta(minutes=5))
    senalado.resultado_desconocido("timeout", datetime.now(UTC), PoliticaAtencion(max_intentos=1))
    await subject.repo.liberar(senalado, Liberacion.LLAMO, PoliticaAtencion(max_intentos=1))
    viejo = await reclamado(subject, hace=timedelta(hours=2))  # PROCESANDO past the age, whatever the cause
    await reclamado(subject)  # in process, young: not listed
    hecho = await reclamado(subject, hace=timedelta(hours=3))
    hecho.marcar_fallido("Fondos insuficientes", datetime.now(UTC))
    await subject.repo.guardar_resultado(hecho)  # final: not listed, however old
    lista = await subject.views.requieren_atencion(10)
    assert [v.id for v in lista] == [viejo.id_pago, senalado.id_pago]  # oldest first
    assert all(v.requiere_atencion and v.estado == "PROCESANDO" for v in lista)
    assert lista[1].ultimo_error == "timeout"
    assert await subject.views.contar_requieren_atencion() == 2
    assert [v.id for v in await subject.views.requieren_atencion(1)] == [viejo.id_pago]
    assert (await subject.views.estado_pago(viejo.id_pago)).requiere_atencion


async def test_la_lista_de_atencion_filtrada_por_edad_y_causa(subject):
    senalado = await reclamado(subject, hace=timedelta(minutes=5))
    senalado.resultado_desconocido("timeout", datetime.now(UTC), PoliticaAtencion(max_intentos=1))
    await subject.repo.liberar(senalado, Liberacion.LLAMO, PoliticaAtencion(max_intentos=1))
    viejo = await reclamado(subject, hace=timedelta(hours=2))
    causas = {v.id: v.causa for v in await subject.views.requieren_atencion(10, FiltroAtencion())}
    assert causas == {viejo.id_pago: CausaAtencion.ANTIGUO, senalado.id_pago: CausaAtencion.MARCADO}
    hace_una_hora = datetime.now(UTC) - timedelta(hours=1)
    assert [v.id for v in await subject.views.requieren_atencion(10, FiltroAtencion(hace_una_hora))] == [viejo.id_pago]
    marcados = await subject.views.requieren_atencion(10, FiltroAtencion(causa=CausaAtencion.MARCADO))
    assert [(v.id, v.marcado) for v in marcados] == [(senalado.id_pago, True)]
    antiguos = await subject.views.requieren_atencion(10, FiltroAtencion(causa=CausaAtencion.ANTIGUO))
    assert [v.id for v in antiguos] == [viejo.id_pago]


async def test_los_contadores_del_outbox(subject):
    vacio = await subject.views.estadisticas_outbox()
    assert (vacio.total_eventos, vacio.eventos_pendientes, vacio.antiguedad_pendiente_mas_antiguo_s) == (0, 0, None)
    for _ in range(2):
        pago = await reclamado(subject)
        pago.marcar_exitoso("tr", datetime.now(UTC))
        await subject.repo.guardar_resultado(pago)
    stats = await subject.views.estadisticas_outbox()
    assert (stats.total_eventos, stats.eventos_procesados, stats.eventos_pendientes) == (2, 0, 2)
    assert 0 <= stats.antiguedad_pendiente_mas_antiguo_s < 60


async def test_los_comandos_venenosos(subject):
    if isinstance(subject.views, FakePagoViews):
        pytest.skip("the fake failure log keeps no times: poison records are PostgreSQL's (test_atencion_postgres)")
    assert await subject.views.comandos_venenosos(10) == []
    assert await subject.views.comando_venenoso(uuid.uuid4()) is None
