import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pagos_worker.domain import (
    Dinero,
    EstadoPago,
    Lease,
    Moneda,
    Pago,
    PagoEnCursoError,
    PagoExitoso,
    PagoFallido,
    PagoYaProcesadoError,
    PoliticaAtencion,
    TransicionInvalidaError,
)
from pagos_worker.domain.errors import PagoRequiereAtencionError

AHORA = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def nuevo_pago() -> Pago:
    return Pago.crear(
        id_pago=uuid.uuid4(), id_afiliado="afiliado_123", importe=Dinero(Decimal("100.50"), Moneda.USD), ahora=AHORA
    )


def lease(owner: str = "w1", segundos: int = 60) -> Lease:
    return Lease(owner, AHORA + timedelta(seconds=segundos))


def test_un_pago_nace_pendiente_y_sin_eventos():
    pago = nuevo_pago()
    assert pago.estado is EstadoPago.PENDIENTE
    assert pago.eventos == []
    assert pago.intentos == 0


def test_camino_feliz_registra_pago_exitoso():
    pago = nuevo_pago()
    pago.iniciar_procesamiento(lease(), AHORA)
    assert pago.estado is EstadoPago.PROCESANDO
    pago.marcar_exitoso("tr_1", AHORA + timedelta(seconds=1))
    assert pago.estado is EstadoPago.EXITOSO
    assert pago.lease is None
    assert pago.fecha_procesamiento == AHORA + timedelta(seconds=1)
    [evento] = pago.eventos
    assert isinstance(evento, PagoExitoso)
    assert (evento.id_pago, evento.referencia_pago, evento.importe) == (pago.id_pago, "tr_1", pago.importe)
    assert evento.timestamp.utcoffset() == timedelta(0)


def test_fallo_registra_pago_fallido_con_el_mensaje():
    pago = nuevo_pago()
    pago.iniciar_procesamiento(lease(), AHORA)
    pago.marcar_fallido("Fondos insuficientes", AHORA)
    assert pago.estado is EstadoPago.FALLIDO
    [evento] = pago.eventos
    assert isinstance(evento, PagoFallido)
    assert evento.mensaje_error == "Fondos insuficientes"


@pytest.mark.parametrize("final", ["exitoso", "fallido"])
def test_un_pago_procesado_no_se_procesa_otra_vez(final):
    pago = nuevo_pago()
    pago.iniciar_procesamiento(lease(), AHORA)
    if final == "exitoso":
        pago.marcar_exitoso("tr_1", AHORA)
    else:
        pago.marcar_fallido("Tarjeta rechazada", AHORA)
    with pytest.raises(PagoYaProcesadoError):
        pago.iniciar_procesamiento(lease("w2"), AHORA + timedelta(hours=1))
    with pytest.raises(TransicionInvalidaError):
        pago.marcar_exitoso("tr_2", AHORA)
    with pytest.raises(TransicionInvalidaError):
        pago.marcar_fallido("otra vez", AHORA)
    assert len(pago.eventos) == 1


def test_solo_desde_procesando_se_llega_a_un_estado_final():
    pago = nuevo_pago()
    with pytest.raises(TransicionInvalidaError):
        pago.marcar_exitoso("tr_1", AHORA)
    with pytest.raises(TransicionInvalidaError):
        pago.marcar_fallido("x", AHORA)
    assert pago.eventos == []


def test_lease_vigente_impide_otro_procesamiento_y_vencido_lo_permite():
    pago = nuevo_pago()
    pago.iniciar_procesamiento(lease("w1", segundos=30), AHORA)
    with pytest.raises(PagoEnCursoError):
        pago.iniciar_procesamiento(lease("w2"), AHORA + timedelta(seconds=29))
    pago.iniciar_procesamiento(lease("w2", segundos=90), AHORA + timedelta(seconds=30))
    assert pago.lease is not None
    assert pago.lease.owner == "w2"
    assert pago.intentos == 2


def test_timestamps_sin_zona_horaria_se_rechazan():
    with pytest.raises(ValueError, match="timezone"):
        Pago.crear(
            id_pago=uuid.uuid4(),
            id_afiliado="a",
            importe=Dinero(Decimal(1), Moneda.USD),
            ahora=datetime(2026, 1, 1),  # noqa: DTZ001
        )


def test_mismos_terminos():
    pago = nuevo_pago()
    igual = Pago.crear(id_pago=pago.id_pago, id_afiliado="afiliado_123", importe=pago.importe, ahora=AHORA)
    otro_monto = Pago.crear(
        id_pago=pago.id_pago, id_afiliado="afiliado_123", importe=Dinero(Decimal(1), Moneda.USD), ahora=AHORA
    )
    otro_afiliado = Pago.crear(id_pago=pago.id_pago, id_afiliado="otro", importe=pago.importe, ahora=AHORA)
    assert pago.mismos_terminos(igual)
    assert not pago.mismos_terminos(otro_monto)
    assert not pago.mismos_terminos(otro_afiliado)


def test_resultado_desconocido_libera_el_lease_y_no_es_fallido():
    pago = nuevo_pago()
    pago.iniciar_procesamiento(lease("w1"), AHORA)
    pago.resultado_desconocido("timeout", AHORA + timedelta(seconds=5), PoliticaAtencion(max_intentos=3))
    assert pago.estado is EstadoPago.PROCESANDO
    assert pago.lease == Lease("w1", AHORA + timedelta(seconds=5))  # expired as of now: resumable
    assert pago.ultimo_error == "timeout"
    assert not pago.requiere_atencion
    assert pago.eventos == []


def test_requiere_atencion_tras_demasiados_intentos_o_demasiado_tiempo():
    politica = PoliticaAtencion(max_intentos=2, max_antiguedad=timedelta(minutes=30))
    pago = nuevo_pago()
    pago.iniciar_procesamiento(lease("w1"), AHORA)
    pago.resultado_desconocido("500", AHORA, politica)
    assert not pago.requiere_atencion
    pago.iniciar_procesamiento(lease("w2"), AHORA + timedelta(minutes=2))
    pago.resultado_desconocido("500", AHORA + timedelta(minutes=2), politica)
    assert pago.requiere_atencion  # second attempt

    viejo = nuevo_pago()
    viejo.iniciar_procesamiento(lease("w1"), AHORA)
    viejo.resultado_desconocido("500", AHORA + timedelta(minutes=30), politica)
    assert viejo.requiere_atencion  # too old
    # No automatic retry from here: only an operator resumes it.
    with pytest.raises(PagoRequiereAtencionError):
        viejo.iniciar_procesamiento(lease("w2"), AHORA + timedelta(minutes=31))
    viejo.reanudar()
    # Resolved later: the flag goes away with the final state.
    viejo.iniciar_procesamiento(lease("w2"), AHORA + timedelta(minutes=31))
    viejo.marcar_exitoso("tr_1", AHORA + timedelta(minutes=31))
    assert not viejo.requiere_atencion


def test_resultado_desconocido_solo_en_proceso():
    with pytest.raises(TransicionInvalidaError):
        nuevo_pago().resultado_desconocido("x", AHORA, PoliticaAtencion())


def test_no_intentado_devuelve_el_intento_y_libera_el_lease():
    pago = nuevo_pago()
    pago.iniciar_procesamiento(lease("w1"), AHORA)
    pago.no_intentado("circuito abierto", AHORA + timedelta(seconds=1))
    assert pago.intentos == 0  # the gateway never saw it
    assert pago.estado is EstadoPago.PROCESANDO
    assert pago.lease == Lease("w1", AHORA + timedelta(seconds=1))  # resumable at once
    assert pago.ultimo_error == "circuito abierto"
    assert not pago.requiere_atencion
    with pytest.raises(TransicionInvalidaError):
        nuevo_pago().no_intentado("x", AHORA)


def test_la_clave_se_renueva_por_generaciones_y_nunca_se_reutiliza():
    politica = PoliticaAtencion(vida_clave=timedelta(hours=20))
    pago = nuevo_pago()
    pago.iniciar_procesamiento(lease("w1"), AHORA)
    assert not pago.es_reintento()
    assert not pago.clave_vencida(AHORA + timedelta(hours=19, minutes=59), politica)
    assert pago.clave_vencida(AHORA + timedelta(hours=20), politica)
    pago.renovar_clave(AHORA + timedelta(hours=20))
    pago.renovar_clave(AHORA + timedelta(hours=41))
    assert (pago.generacion_clave, pago.clave_desde) == (3, AHORA + timedelta(hours=41))
    assert not pago.clave_vencida(AHORA + timedelta(hours=42), politica)
    with pytest.raises(TransicionInvalidaError):
        nuevo_pago().renovar_clave(AHORA)  # only while it is being processed
