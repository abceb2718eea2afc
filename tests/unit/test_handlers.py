import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pagos_worker.application.commands import ProcesarPago
from pagos_worker.application.handlers import Accion, ProcesarPagoHandler
from pagos_worker.application.ports.pasarela import PasarelaNoDisponibleError, ResultadoPago
from pagos_worker.domain import Dinero, EstadoPago, Lease, Moneda, Pago, PoliticaAtencion
from tests.fakes import INDETERMINADO, FakePagoRepository, FakePasarelaDePagos


class Reloj:
    def __init__(self) -> None:
        self.ahora = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.ahora


@pytest.fixture
def reloj() -> Reloj:
    return Reloj()


@pytest.fixture
def repo(reloj) -> FakePagoRepository:
    return FakePagoRepository(reloj)


def handler(repo, pasarela, reloj, owner="w1"):
    return ProcesarPagoHandler(repo, pasarela, owner=owner, lease=timedelta(seconds=30), reloj=reloj)


def comando(id_pago=None, monto="100.50", afiliado="afiliado_123") -> ProcesarPago:
    return ProcesarPago(id_pago or uuid.uuid4(), afiliado, Dinero(Decimal(monto), Moneda.USD))


async def test_pago_exitoso_guarda_estado_y_un_evento(repo, reloj):
    pasarela = FakePasarelaDePagos()
    cmd = comando()
    desenlace = await handler(repo, pasarela, reloj)(cmd)
    assert desenlace.accion is Accion.ACK
    pago = repo.pagos[cmd.id_pago]
    assert pago.estado is EstadoPago.EXITOSO
    assert pago.referencia_pago == f"ref_{cmd.id_pago.hex[:8]}"
    assert repo.eventos_de(cmd.id_pago) == ["PagoExitoso"]


async def test_pago_rechazado_queda_fallido_con_su_mensaje(repo, reloj):
    cmd = comando()
    pasarela = FakePasarelaDePagos({cmd.id_pago: ResultadoPago.fallo("Fondos insuficientes")})
    desenlace = await handler(repo, pasarela, reloj)(cmd)
    assert desenlace.accion is Accion.ACK
    pago = repo.pagos[cmd.id_pago]
    assert (pago.estado, pago.mensaje_error) == (EstadoPago.FALLIDO, "Fondos insuficientes")
    assert repo.eventos_de(cmd.id_pago) == ["PagoFallido"]


async def test_duplicado_de_un_pago_final_se_confirma_sin_pasarela_ni_evento(repo, reloj):
    pasarela = FakePasarelaDePagos()
    cmd = comando()
    await handler(repo, pasarela, reloj)(cmd)
    desenlace = await handler(repo, pasarela, reloj, owner="w2")(cmd)
    assert (desenlace.accion, desenlace.motivo) == (Accion.ACK, "ya_procesado")
    assert pasarela.llamadas == [cmd.id_pago]
    assert repo.eventos_de(cmd.id_pago) == ["PagoExitoso"]


async def test_duplicado_con_otros_terminos_va_a_la_dlq_y_no_toca_el_pago(repo, reloj):
    pasarela = FakePasarelaDePagos()
    cmd = comando()
    await handler(repo, pasarela, reloj)(cmd)
    desenlace = await handler(repo, pasarela, reloj)(comando(cmd.id_pago, monto="999.00"))
    assert (desenlace.accion, desenlace.motivo) == (Accion.DLQ, "conflicto_con_pago_existente")
    assert "999.00" in desenlace.detalle
    assert repo.pagos[cmd.id_pago].importe.monto == Decimal("100.50")
    assert len(pasarela.llamadas) == 1


async def test_resultado_indeterminado_no_marca_fallido_y_se_reintenta_con_la_misma_pasarela(repo, reloj):
    cmd = comando()
    pasarela = FakePasarelaDePagos({cmd.id_pago: INDETERMINADO})
    desenlace = await handler(repo, pasarela, reloj)(cmd)
    assert desenlace.accion is Accion.REINTENTAR
    assert repo.pagos[cmd.id_pago].estado is EstadoPago.PROCESANDO
    assert repo.outbox == []
    # The lease was released: a redelivery resumes at once, without waiting for it to expire.
    pasarela.respuestas.clear()
    desenlace = await handler(repo, pasarela, reloj, owner="w2")(cmd)
    assert desenlace.accion is Accion.ACK
    assert repo.pagos[cmd.id_pago].estado is EstadoPago.EXITOSO
    assert repo.pagos[cmd.id_pago].intentos == 2
    assert pasarela.llamadas == [cmd.id_pago, cmd.id_pago]


async def test_pago_en_curso_en_otra_replica_vuelve_mas_tarde(repo, reloj):
    cmd = comando()
    lento = FakePasarelaDePagos()
    h1 = handler(repo, lento, reloj, owner="w1")
    solicitado = await repo.reclamar(_reclamado(cmd, "w1", reloj))
    assert solicitado.reclamado
    desenlace = await handler(repo, FakePasarelaDePagos(), reloj, owner="w2")(cmd)
    assert (desenlace.accion, desenlace.motivo) == (Accion.REINTENTAR, "en_curso")
    # Once the lease has expired (its worker died), the payment is resumed.
    reloj.ahora += timedelta(seconds=31)
    desenlace = await h1(cmd)
    assert desenlace.accion is Accion.ACK
    assert repo.pagos[cmd.id_pago].intentos == 2


def _reclamado(cmd, owner, reloj):
    pago = Pago.crear(id_pago=cmd.id_pago, id_afiliado=cmd.id_afiliado, importe=cmd.importe, ahora=reloj())
    pago.iniciar_procesamiento(Lease(owner, reloj() + timedelta(seconds=30)), reloj())
    return pago


async def test_un_rechazo_del_circuito_no_cuenta_como_intento_ni_retiene_el_lease(repo, reloj):
    cmd = comando()
    pasarela = FakePasarelaDePagos({cmd.id_pago: PasarelaNoDisponibleError("circuito abierto")})
    h = ProcesarPagoHandler(
        repo, pasarela, owner="w1", lease=timedelta(seconds=30), atencion=PoliticaAtencion(max_intentos=2), reloj=reloj
    )
    for _ in range(3):
        desenlace = await h(cmd)
        assert (desenlace.accion, desenlace.motivo) == (Accion.REINTENTAR, "pasarela_no_disponible")
    pago = repo.pagos[cmd.id_pago]
    assert pago.intentos == 0
    assert not pago.requiere_atencion  # three refusals are not three attempts
    assert pago.lease.expira == reloj.ahora  # released: the next delivery may resume it at once
    pasarela.respuestas.clear()
    assert (await handler(repo, pasarela, reloj, owner="w2")(cmd)).accion is Accion.ACK
    assert repo.pagos[cmd.id_pago].intentos == 1
