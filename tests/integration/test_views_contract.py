"""The read side's `PagoViews` contract, on the fake and on PostgreSQL alike: what operators see of
a payment (with its reversals), the attention list and count, and the outbox's counters, written
through each one's repository. Reversals are stored as the worker leaves them (`guardar_reverso`):
on PostgreSQL, rows written with SQL from the aggregate."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial

import pytest
from sqlalchemy import text

from pagos_worker.adapters.postgres.views import PostgresPagoViews
from pagos_worker.application.ports.repository import Liberacion
from pagos_worker.application.queries import CausaAtencion, FiltroAtencion
from pagos_worker.domain import Dinero, Lease, Moneda, Pago, PoliticaAtencion
from pagos_worker.domain.reverso import CodigoReversoFallido, MotivoReverso, Reverso
from tests.conftest import envejecer_pago
from tests.fake_views import FakePagoViews
from tests.fakes import FakePagoRepository

EDAD = timedelta(hours=1)


class Subject:
    def __init__(self, repo, views, envejecer) -> None:
        self.repo = repo
        self.views = views
        self.envejecer = envejecer  # the store's clock moved on for one payment

    async def guardar_reverso(self, reverso: Reverso, hace: timedelta = timedelta(0)) -> None:
        """Stored as the worker leaves it, created `hace` ago by the store's clock."""
        self.views.reversos[reverso.id_reverso] = dataclasses.replace(
            reverso, fecha_creacion=datetime.now(UTC) - hace, eventos=[]
        )

    async def reversado(self, pago: Pago, monto: str) -> None:
        self.repo.pagos[pago.id_pago].monto_reversado = Decimal(monto)

    async def anular(self, id_pago: uuid.UUID, id_reverso: uuid.UUID) -> None:
        """The row a reversal leaves for a payment not known yet: no terms, annulled by it."""
        self.views.anulados[id_pago] = id_reverso


class PostgresSubject(Subject):
    def __init__(self, repo, views, engine) -> None:
        super().__init__(repo, views, partial(envejecer_pago, engine))
        self.engine = engine

    async def guardar_reverso(self, reverso: Reverso, hace: timedelta = timedelta(0)) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(INSERTAR_REVERSO, fila_reverso(reverso, hace))

    async def reversado(self, pago: Pago, monto: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                text("UPDATE pagos SET monto_reversado = :m WHERE id_pago = :i"),
                {"m": Decimal(monto), "i": pago.id_pago},
            )

    async def anular(self, id_pago: uuid.UUID, id_reverso: uuid.UUID) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO pagos (id_pago, estado, fecha_creacion, anulado_por) "
                    "VALUES (:i, 'PENDIENTE', clock_timestamp(), :r)"
                ),
                {"i": id_pago, "r": id_reverso},
            )


INSERTAR_REVERSO = text("""
INSERT INTO reversos (id_reverso, id_pago, monto_pedido, motivo, descripcion, operador, estado, monto, moneda,
    referencia_reverso, codigo, mensaje_error, fecha_creacion, fecha_procesamiento, lease_owner, lease_expira,
    intentos, ultimo_error, requiere_atencion, reclamo)
VALUES (:id_reverso, :id_pago, :monto_pedido, :motivo, :descripcion, :operador, :estado, :monto, :moneda,
    :referencia_reverso, :codigo, :mensaje_error, clock_timestamp() - CAST(:hace AS interval),
    :fecha_procesamiento, :lease_owner, :lease_expira, :intentos, :ultimo_error, :requiere_atencion, :reclamo)
""")


def fila_reverso(reverso: Reverso, hace: timedelta = timedelta(0)) -> dict[str, object]:
    """The reversos row of a `Reverso`, as the worker writes it."""
    return {
        "id_reverso": reverso.id_reverso,
        "id_pago": reverso.id_pago,
        "monto_pedido": reverso.monto_pedido,
        "motivo": reverso.motivo.value,
        "descripcion": reverso.descripcion,
        "operador": reverso.operador,
        "estado": reverso.estado.value,
        "monto": reverso.importe.monto if reverso.importe else None,
        "moneda": reverso.importe.moneda.value if reverso.importe else None,
        "referencia_reverso": reverso.referencia_reverso,
        "codigo": reverso.codigo.value if reverso.codigo else None,
        "mensaje_error": reverso.mensaje_error,
        "hace": hace,
        "fecha_procesamiento": reverso.fecha_procesamiento,
        "lease_owner": reverso.lease.owner if reverso.lease else None,
        "lease_expira": reverso.lease.expira if reverso.lease else None,
        "intentos": reverso.intentos,
        "ultimo_error": reverso.ultimo_error,
        "requiere_atencion": reverso.requiere_atencion,
        "reclamo": reverso.reclamo,
    }


@pytest.fixture(params=["fake", pytest.param("postgres", marks=pytest.mark.integration)])
def subject(request) -> Subject:
    if request.param == "fake":
        repo = FakePagoRepository()
        return Subject(repo, FakePagoViews(repo, atencion_tras=EDAD), repo.envejecer)
    postgres = request.getfixturevalue("postgres")
    engine = postgres.engine
    return PostgresSubject(postgres.repo(), PostgresPagoViews(engine, atencion_tras=EDAD), engine)


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


async def pagado(subject, monto: str = "100.00") -> Pago:
    pago = await reclamado(subject, monto=monto)
    pago.marcar_exitoso("tr_9", datetime.now(UTC))
    await subject.repo.guardar_resultado(pago)
    return pago


def reverso(pago: Pago, monto: str | None = None, **campos) -> Reverso:
    """A reversal of `pago` claimed by a worker (PROCESANDO, its amount fixed)."""
    ahora = datetime.now(UTC)
    nuevo = Reverso(
        id_reverso=uuid.uuid4(), id_pago=pago.id_pago, monto_pedido=None if monto is None else Decimal(monto),
        motivo=MotivoReverso.DUPLICADO, fecha_creacion=ahora, **campos,
    )  # fmt: skip
    nuevo.admitir(pago, otro_en_curso=False, lease=Lease("w1", ahora + timedelta(seconds=30)), ahora=ahora)
    return nuevo


async def test_un_pago_con_sus_reversos_el_mas_nuevo_primero(subject):
    pago = await pagado(subject)
    ahora = datetime.now(UTC)
    exitoso = reverso(pago, "30.00", descripcion="cobrado dos veces", operador="ana")
    exitoso.marcar_exitoso("trr_1", ahora)
    sin_saldo = reverso(pago, "50.00")
    sin_saldo.marcar_fallido(CodigoReversoFallido.SALDO_INSUFICIENTE, "saldo insuficiente en la cuenta", ahora)
    pendiente = Reverso(id_reverso=uuid.uuid4(), id_pago=pago.id_pago, monto_pedido=None,
                        motivo=MotivoReverso.FRAUDE, fecha_creacion=ahora)  # fmt: skip
    for hace, r in ((timedelta(minutes=30), exitoso), (timedelta(minutes=20), sin_saldo), (timedelta(0), pendiente)):
        await subject.guardar_reverso(r, hace)
    await subject.reversado(pago, "30.00")

    vista = await subject.views.estado_pago(pago.id_pago)
    assert vista.monto_reversado == Decimal("30.00")
    assert [r.id_reverso for r in vista.reversos] == [pendiente.id_reverso, sin_saldo.id_reverso, exitoso.id_reverso]
    nuevo, fallido, hecho = vista.reversos
    assert (nuevo.estado, nuevo.monto, nuevo.moneda, nuevo.monto_pedido, nuevo.motivo) == (
        "PENDIENTE",
        None,
        None,
        None,
        "fraude",
    )
    assert (hecho.estado, hecho.monto, hecho.moneda, hecho.monto_pedido) == (
        "EXITOSO",
        Decimal("30.00"),
        "COP",
        Decimal("30.00"),
    )
    assert (hecho.referencia_reverso, hecho.descripcion, hecho.operador, hecho.codigo) == (
        "trr_1",
        "cobrado dos veces",
        "ana",
        None,
    )
    assert hecho.fecha_procesamiento == ahora
    assert abs(hecho.fecha_creacion - (ahora - timedelta(minutes=30))) < timedelta(minutes=1)
    assert (fallido.estado, fallido.codigo, fallido.mensaje_error) == (
        "FALLIDO",
        "saldo_insuficiente",
        "saldo insuficiente en la cuenta",
    )
    assert (fallido.requiere_atencion, fallido.causa) == (True, CausaAtencion.SALDO_INSUFICIENTE)
    assert not hecho.requiere_atencion
    assert not nuevo.requiere_atencion
    assert not vista.requiere_atencion  # the payment itself is settled: its reversal is what needs a look
    assert await subject.views.reverso(hecho.id_reverso) == hecho
    assert await subject.views.reverso(uuid.uuid4()) is None


async def test_un_pago_sin_reversos(subject):
    pago = await pagado(subject)
    vista = await subject.views.estado_pago(pago.id_pago)
    assert (vista.monto_reversado, vista.reversos) == (Decimal("0.00"), ())


async def test_un_pago_anulado_antes_de_llegar_no_es_un_pago_aun(subject):
    id_pago, id_reverso = uuid.uuid4(), uuid.uuid4()
    await subject.anular(id_pago, id_reverso)
    assert await subject.views.estado_pago(id_pago) is None
    assert await subject.views.anulado_por(id_pago) == id_reverso
    assert await subject.views.anulado_por(uuid.uuid4()) is None
    pago = await pagado(subject)
    assert await subject.views.anulado_por(pago.id_pago) is None
    assert await subject.views.contar_requieren_atencion() == 0


async def test_los_reversos_que_requieren_atencion_con_su_causa(subject):
    pago = await pagado(subject)
    ahora = datetime.now(UTC)
    sin_saldo = reverso(pago, "10.00")
    sin_saldo.marcar_fallido(CodigoReversoFallido.SALDO_INSUFICIENTE, "saldo insuficiente", ahora)
    rechazado = reverso(pago, "10.00")
    rechazado.marcar_fallido(CodigoReversoFallido.RECHAZADO_POR_LA_PASARELA, "cuenta cerrada", ahora)
    hecho = reverso(pago, "10.00")
    hecho.marcar_exitoso("trr_2", ahora)
    # At most one reversal of a payment is PROCESANDO at a time: each of these has its own payment.
    marcado = reverso(await pagado(subject), "10.00")
    marcado.resultado_desconocido("Stripe 500", ahora, PoliticaAtencion(max_intentos=1))
    viejo = reverso(await pagado(subject), "10.00")  # PROCESANDO past the attention age, whatever kept it there
    joven = reverso(await pagado(subject), "10.00")  # in process, young: not listed
    for hace, r in (
        (timedelta(minutes=10), sin_saldo), (timedelta(minutes=20), marcado), (2 * EDAD, viejo),
        (timedelta(0), joven), (3 * EDAD, rechazado), (3 * EDAD, hecho),
    ):  # fmt: skip
        await subject.guardar_reverso(r, hace)
    pago_marcado = await reclamado(subject, hace=timedelta(minutes=5))
    pago_marcado.resultado_desconocido("timeout", datetime.now(UTC), PoliticaAtencion(max_intentos=1))
    await subject.repo.liberar(pago_marcado, Liberacion.LLAMO, PoliticaAtencion(max_intentos=1))

    # Every reversal refused at the gateway waits for an operator (the money is still out).
    lista = await subject.views.reversos_requieren_atencion(10)
    esperados = [rechazado.id_reverso, viejo.id_reverso, marcado.id_reverso, sin_saldo.id_reverso]
    assert [r.id_reverso for r in lista] == esperados  # oldest first
    assert [r.causa for r in lista] == [
        CausaAtencion.MARCADO, CausaAtencion.ANTIGUO, CausaAtencion.MARCADO, CausaAtencion.SALDO_INSUFICIENTE,
    ]  # fmt: skip
    assert [r.id_pago for r in lista] == [pago.id_pago, viejo.id_pago, marcado.id_pago, pago.id_pago]
    assert lista[2].ultimo_error == "Stripe 500"
    assert await subject.views.contar_requieren_atencion() == 5  # the payment and the four reversals
    assert [r.id_reverso for r in await subject.views.reversos_requieren_atencion(1)] == [rechazado.id_reverso]
    por_causa = {
        causa: [r.id_reverso for r in await subject.views.reversos_requieren_atencion(10, FiltroAtencion(causa=causa))]
        for causa in CausaAtencion
    }
    assert por_causa == {
        CausaAtencion.ANTIGUO: [viejo.id_reverso],
        CausaAtencion.MARCADO: [rechazado.id_reverso, marcado.id_reverso],
        CausaAtencion.SALDO_INSUFICIENTE: [sin_saldo.id_reverso],
        CausaAtencion.VENENOSO: [],
    }
    hace_15_min = datetime.now(UTC) - timedelta(minutes=15)
    antes = await subject.views.reversos_requieren_atencion(10, FiltroAtencion(hace_15_min))
    assert [r.id_reverso for r in antes] == [rechazado.id_reverso, viejo.id_reverso, marcado.id_reverso]
