"""The `Reverso` aggregate's rules: what a reversal decides against its payment as it stands."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pagos_worker.domain import Dinero, EstadoPago, Lease, Moneda, Pago, PoliticaAtencion, TransicionInvalidaError
from pagos_worker.domain.events import PagoAnulado, PagoReversado, ReversoFallido
from pagos_worker.domain.reverso import (
    Admision,
    CodigoReversoFallido,
    EstadoReverso,
    MotivoReverso,
    Reverso,
)

AHORA = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
LEASE = Lease("w1", AHORA + timedelta(seconds=60))


def pagado(monto: str = "100.00", *, reversado: str = "0", moneda: Moneda = Moneda.USD) -> Pago:
    pago = Pago.crear(id_pago=uuid.uuid4(), id_afiliado="af_1", importe=Dinero(Decimal(monto), moneda), ahora=AHORA)
    pago.iniciar_procesamiento(LEASE, AHORA)
    pago.marcar_exitoso("tr_1", AHORA)
    pago.monto_reversado = Decimal(reversado)
    if pago.por_reversar == 0:
        pago.estado = EstadoPago.REVERSADO
    return pago


def reverso(pago: Pago | None = None, monto: str | None = None, **kw: object) -> Reverso:
    return Reverso(
        id_reverso=uuid.uuid4(),
        id_pago=pago.id_pago if pago else uuid.uuid4(),
        monto_pedido=None if monto is None else Decimal(monto),
        motivo=MotivoReverso.FRAUDE,
        fecha_creacion=AHORA,
        **kw,  # type: ignore[arg-type]
    )


def admitir(r: Reverso, pago: Pago | None, *, otro: bool = False) -> Admision:
    return r.admitir(pago, otro_en_curso=otro, lease=LEASE, ahora=AHORA)


def test_un_reverso_parcial_se_reclama_con_su_monto_en_la_moneda_del_pago():
    pago = pagado(moneda=Moneda.EUR)
    r = reverso(pago, "40.00")
    assert admitir(r, pago) is Admision.RECLAMADO
    assert r.estado is EstadoReverso.PROCESANDO
    assert r.importe == Dinero(Decimal("40.00"), Moneda.EUR)
    assert (r.intentos, r.lease, r.referencia_transfer) == (1, LEASE, "tr_1")
    assert r.eventos == []


def test_sin_monto_es_todo_lo_que_queda_por_revertir():
    pago = pagado("100.00", reversado="30.00")
    r = reverso(pago)
    assert admitir(r, pago) is Admision.RECLAMADO
    assert r.importe == Dinero(Decimal("70.00"), Moneda.USD)
    r.marcar_exitoso("trr_9", AHORA)
    [evento] = r.eventos
    assert isinstance(evento, PagoReversado)
    assert (evento.monto_reversado_total, evento.referencia_reverso, evento.id_reverso) == (
        Decimal("100.00"),
        "trr_9",
        r.id_reverso,
    )
    assert r.estado is EstadoReverso.EXITOSO
    assert r.lease is None


@pytest.mark.parametrize(("reversado", "pedido"), [("0", "100.01"), ("60.00", "40.01"), ("100.00", None)])
def test_mas_de_lo_que_queda_falla_sin_llamar(reversado, pedido):
    pago = pagado("100.00", reversado=reversado)
    r = reverso(pago, pedido)
    assert admitir(r, pago) is Admision.FALLIDO
    assert r.codigo is CodigoReversoFallido.EXCEDE_LO_PAGADO
    [evento] = r.eventos
    assert isinstance(evento, ReversoFallido)
    assert evento.codigo == "excede_lo_pagado"
    assert r.importe is None
    assert r.intentos == 0


def test_exactamente_lo_que_queda_se_admite():
    pago = pagado("100.00", reversado="60.00")
    assert admitir(reverso(pago, "40.00"), pago) is Admision.RECLAMADO


@pytest.mark.parametrize("pago", [None, "fallido"])
def test_sin_nada_pagado_queda_anulado(pago):
    if pago == "fallido":
        pago = Pago.crear(id_pago=uuid.uuid4(), id_afiliado="a", importe=Dinero(Decimal(5), Moneda.COP), ahora=AHORA)
        pago.iniciar_procesamiento(LEASE, AHORA)
        pago.marcar_fallido("Fondos insuficientes", AHORA)
    r = reverso(pago)
    assert admitir(r, pago) is Admision.ANULADO
    assert r.estado is EstadoReverso.ANULADO
    assert [type(e) for e in r.eventos] == [PagoAnulado]


def test_espera_mientras_el_pago_no_es_final_u_otro_reverso_esta_en_curso():
    pago = Pago.crear(id_pago=uuid.uuid4(), id_afiliado="a", importe=Dinero(Decimal(5), Moneda.USD), ahora=AHORA)
    pago.iniciar_procesamiento(LEASE, AHORA)
    r = reverso(pago)
    assert admitir(r, pago) is Admision.ESPERA
    assert (r.estado, r.eventos, r.intentos) == (EstadoReverso.PENDIENTE, [], 0)
    otro = pagado()
    assert admitir(reverso(otro), otro, otro=True) is Admision.ESPERA


def test_un_pago_exitoso_sin_referencia_no_tiene_que_revertir():
    pago = pagado()
    pago.referencia_pago = None
    r = reverso(pago)
    assert admitir(r, pago) is Admision.FALLIDO
    assert r.codigo is CodigoReversoFallido.PAGO_NO_EXITOSO


def test_lo_que_la_pasarela_rechaza_espera_a_un_operador():
    pago = pagado()
    r = reverso(pago, "10.00")
    admitir(r, pago)
    r.marcar_fallido(CodigoReversoFallido.SALDO_INSUFICIENTE, "sin saldo", AHORA, "req_1")
    assert (r.estado, r.requiere_atencion, r.referencia_reverso) == (EstadoReverso.FALLIDO, True, "req_1")
    otro = reverso(pago, "10.00")
    admitir(otro, pago)
    otro.marcar_fallido(CodigoReversoFallido.RECHAZADO_POR_LA_PASARELA, "no", AHORA)
    assert otro.requiere_atencion is True  # refused at the gateway: someone looks
    sin_llamar = reverso(pago, "1000.00")
    admitir(sin_llamar, pago)  # refused here, for the saga's own error: no one needs to
    assert (sin_llamar.codigo, sin_llamar.requiere_atencion) == (CodigoReversoFallido.EXCEDE_LO_PAGADO, False)


def test_un_reverso_ya_decidido_no_se_admite_otra_vez():
    pago = pagado()
    r = reverso(pago)
    admitir(r, pago)
    with pytest.raises(TransicionInvalidaError):
        admitir(r, pago)
    with pytest.raises(TransicionInvalidaError):
        reverso(pago).marcar_exitoso("trr", AHORA)


def test_mismos_terminos_es_un_duplicado_otros_un_conflicto():
    pago = pagado()
    r = reverso(pago, "10.00", descripcion="x")
    igual = Reverso(
        id_reverso=r.id_reverso, id_pago=r.id_pago, monto_pedido=Decimal("10.0"), motivo=r.motivo,
        descripcion="x", fecha_creacion=AHORA + timedelta(hours=1), operador="otro",
    )  # fmt: skip
    assert r.mismos_terminos(igual)
    for cambio in ({"monto_pedido": None}, {"motivo": MotivoReverso.DUPLICADO}, {"descripcion": None}):
        distinto = Reverso(**{**igual.__dict__, "eventos": [], **cambio})
        assert not r.mismos_terminos(distinto), cambio


def test_el_reclamo_es_el_mismo_mecanismo_que_el_de_un_pago():
    pago = pagado()
    r = reverso(pago)
    admitir(r, pago)
    politica = PoliticaAtencion(max_intentos=2)
    r.resultado_desconocido("timeout", AHORA, politica)
    assert (r.estado, r.requiere_atencion, r.lease.expira) == (EstadoReverso.PROCESANDO, False, AHORA)
    r.intentos = 2
    assert r.es_reintento()
    r.resultado_desconocido("timeout", AHORA, politica)
    assert r.requiere_atencion
    r.renovar_clave(AHORA)
    assert r.generacion_clave == 2
