import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pagos_worker.application.handlers import ProcesarPagoHandler
from pagos_worker.application.ports.pasarela import ResultadoPago
from pagos_worker.application.reconciliador import Reconciliador
from pagos_worker.domain import Dinero, EstadoPago, Lease, Moneda, Pago, PoliticaAtencion
from tests.fakes import INDETERMINADO, FakePagoRepository, FakePasarelaDePagos

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


class Reloj:
    def __init__(self) -> None:
        self.ahora = T0

    def __call__(self) -> datetime:
        return self.ahora


async def atascado(repo: FakePagoRepository, owner: str = "muerto") -> Pago:
    """A payment whose worker died mid-way: PROCESANDO under a lease that will expire."""
    pago = Pago.crear(id_pago=uuid.uuid4(), id_afiliado="a", importe=Dinero(Decimal("5.00"), Moneda.USD), ahora=T0)
    pago.iniciar_procesamiento(Lease(owner, T0 + timedelta(seconds=30)), T0)
    await repo.reclamar(pago)
    return pago


def montar(repo, pasarela, reloj, gracia=timedelta(minutes=5)):
    handler = ProcesarPagoHandler(
        repo, pasarela, owner="reconciliador", lease=timedelta(seconds=30), reloj=reloj,
        atencion=PoliticaAtencion(max_intentos=3),
    )  # fmt: skip
    return Reconciliador(repo, handler, gracia=gracia)


async def test_solo_toca_lo_vencido_hace_mas_que_la_gracia():
    reloj = Reloj()
    repo = FakePagoRepository(reloj)
    pago = await atascado(repo)
    pasarela = FakePasarelaDePagos()
    reconciliador = montar(repo, pasarela, reloj)
    reloj.ahora = T0 + timedelta(seconds=30) + timedelta(minutes=4)
    assert await reconciliador.reconciliar() == {}
    assert pasarela.llamadas == []
    reloj.ahora = T0 + timedelta(seconds=31) + timedelta(minutes=5)
    assert await reconciliador.reconciliar() == {"procesado": 1}
    assert repo.pagos[pago.id_pago].estado is EstadoPago.EXITOSO
    assert repo.eventos_de(pago.id_pago) == ["PagoExitoso"]
    assert pasarela.llamadas == [pago.id_pago]


async def test_un_resultado_que_no_se_sabe_nunca_es_fallido_y_acaba_pidiendo_atencion():
    reloj = Reloj()
    repo = FakePagoRepository(reloj)
    pago = await atascado(repo)
    pasarela = FakePasarelaDePagos({pago.id_pago: INDETERMINADO})
    reconciliador = montar(repo, pasarela, reloj, gracia=timedelta(0))
    for intento, motivo in ((2, "resultado_indeterminado"), (3, "requiere_atencion")):
        reloj.ahora += timedelta(minutes=1)
        assert await reconciliador.reconciliar() == {motivo: 1}
        guardado = repo.pagos[pago.id_pago]
        assert guardado.estado is EstadoPago.PROCESANDO
        assert guardado.intentos == intento
        assert guardado.requiere_atencion == (intento >= 3)
    assert repo.outbox == []
    # Flagged: the reconciler leaves it to an operator, however long it waits.
    reloj.ahora += timedelta(hours=2)
    assert await reconciliador.reconciliar() == {}
    assert len(pasarela.llamadas) == 2
    # An operator resumes it and the gateway answers again: resolved, no longer needing attention.
    repo.pagos[pago.id_pago].reanudar()
    pasarela.respuestas[pago.id_pago] = ResultadoPago.fallo("Fondos insuficientes")
    assert await reconciliador.reconciliar() == {"procesado": 1}
    guardado = repo.pagos[pago.id_pago]
    assert (guardado.estado, guardado.requiere_atencion) == (EstadoPago.FALLIDO, False)


async def test_al_parar_no_empieza_otro_pago_de_la_pasada():
    reloj = Reloj()
    repo = FakePagoRepository(reloj)
    for _ in range(5):
        await atascado(repo)
    parar = asyncio.Event()

    class Lenta(FakePasarelaDePagos):
        async def procesar_pago(self, pago):
            parar.set()  # SIGTERM arrives while the first payment is at the gateway
            return await super().procesar_pago(pago)

    pasarela = Lenta()
    reconciliador = montar(repo, pasarela, reloj, gracia=timedelta(0))
    reloj.ahora += timedelta(minutes=1)
    assert await reconciliador.reconciliar(parar) == {"procesado": 1}
    assert len(pasarela.llamadas) == 1  # the other four wait for the next start


async def test_run_termina_a_mitad_de_pasada_al_parar():
    reloj = Reloj()
    repo = FakePagoRepository(reloj)
    for _ in range(3):
        await atascado(repo)
    parar = asyncio.Event()

    class Colgada(FakePasarelaDePagos):
        async def procesar_pago(self, pago):
            self.llamadas.append(pago.id_pago)
            parar.set()
            await asyncio.sleep(0.1)
            return ResultadoPago.exito("tr")

    pasarela = Colgada()
    reconciliador = montar(repo, pasarela, reloj, gracia=timedelta(0))
    reloj.ahora += timedelta(minutes=1)
    # Stopping ends the pass midway and the loop at once: well before its 30 s interval.
    await asyncio.wait_for(reconciliador.run(parar), 20)
    assert len(pasarela.llamadas) == 1
