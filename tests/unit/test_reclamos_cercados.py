"""Fenced claims on the store's clock: a holder that outlived its lease writes nothing, a host's
clock decides nothing, and no new key is used while an earlier call may still land (issue 23)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from pagos_worker.application.handlers import Accion, ProcesarPagoHandler
from pagos_worker.application.ports.pasarela import ClaveAgotadaError, ResultadoPago
from pagos_worker.application.reconciliador import Reconciliador
from pagos_worker.domain import EstadoPago, Pago, PoliticaAtencion
from tests.fakes import INDETERMINADO, ExitoSinRespuesta, FakePagoRepository, FakePasarelaDePagos
from tests.unit.test_handlers import Reloj, comando

LEASE = timedelta(seconds=30)
POLITICA = PoliticaAtencion(
    max_intentos=5, max_antiguedad=timedelta(hours=1), vida_clave=timedelta(hours=20),
    margen_asentamiento=timedelta(minutes=5),
)  # fmt: skip


def handler(repo, pasarela, reloj, owner="w1") -> ProcesarPagoHandler:
    return ProcesarPagoHandler(repo, pasarela, owner=owner, lease=LEASE, atencion=POLITICA, reloj=reloj)


class PasarelaRetenida(FakePasarelaDePagos):
    """Holds every payout call until `soltar` is set: a gateway slower than the lease."""

    def __init__(self, respuesta: ResultadoPago) -> None:
        super().__init__()
        self.respuesta = respuesta
        self.dentro = asyncio.Event()
        self.soltar = asyncio.Event()

    async def procesar_pago(self, pago: Pago) -> ResultadoPago:
        self.llamadas.append(pago.id_pago)
        self.dentro.set()
        await self.soltar.wait()
        return self.respuesta


async def test_un_rechazo_tardio_de_un_lease_vencido_no_se_guarda_ni_se_publica():
    reloj = Reloj()
    repo, cmd = FakePagoRepository(reloj), comando()
    lenta = PasarelaRetenida(ResultadoPago.fallo("rechazado tarde"))
    viejo = asyncio.create_task(handler(repo, lenta, reloj, "w1")(cmd))
    await asyncio.wait_for(lenta.dentro.wait(), 10)
    reloj.ahora += LEASE + timedelta(seconds=1)  # its lease ran out by the store's clock
    pasarela = FakePasarelaDePagos()
    pasarela.transferencias.clear()
    nuevo = await handler(repo, pasarela, reloj, "w1")(cmd)  # same process, redelivered command
    assert (nuevo.accion, nuevo.estado) == (Accion.ACK, "EXITOSO")
    lenta.soltar.set()
    tardio = await asyncio.wait_for(viejo, 10)
    assert tardio.estado is None  # nothing of it stored
    assert repo.pagos[cmd.id_pago].estado is EstadoPago.EXITOSO
    assert repo.eventos_de(cmd.id_pago) == ["PagoExitoso"]
    assert repo.obsoletas == ["resultado"]


async def test_una_liberacion_tardia_no_toca_el_reclamo_nuevo():
    reloj = Reloj()
    repo, cmd = FakePagoRepository(reloj), comando()
    lenta = PasarelaRetenida(ResultadoPago.exito("x"))

    async def sin_respuesta(_pago):
        lenta.dentro.set()
        await lenta.soltar.wait()
        raise ClaveAgotadaError("500 guardado")

    lenta.procesar_pago = sin_respuesta  # type: ignore[method-assign]
    viejo = asyncio.create_task(handler(repo, lenta, reloj, "w1")(cmd))
    await asyncio.wait_for(lenta.dentro.wait(), 10)
    reloj.ahora += LEASE + timedelta(seconds=1)
    retenida = PasarelaRetenida(ResultadoPago.exito("tr_nuevo"))
    nuevo = asyncio.create_task(handler(repo, retenida, reloj, "w1")(cmd))
    await asyncio.wait_for(retenida.dentro.wait(), 10)
    antes = repo.pagos[cmd.id_pago]
    lease, intentos = antes.lease, antes.intentos
    lenta.soltar.set()
    assert (await asyncio.wait_for(viejo, 10)).motivo == "en_curso"
    despues = repo.pagos[cmd.id_pago]
    assert (despues.lease, despues.intentos, despues.clave_agotada) == (lease, intentos, False)
    assert repo.obsoletas == ["liberar"]
    retenida.soltar.set()
    assert (await asyncio.wait_for(nuevo, 10)).estado == "EXITOSO"


async def test_una_replica_con_el_reloj_adelantado_no_reclama_un_pago_en_curso():
    """Only the store's clock says a lease has expired: five minutes ahead changes nothing."""
    reloj = Reloj()
    repo, cmd = FakePagoRepository(reloj), comando()
    lenta = PasarelaRetenida(ResultadoPago.exito("tr_1"))
    primero = asyncio.create_task(handler(repo, lenta, reloj, "w1")(cmd))
    await asyncio.wait_for(lenta.dentro.wait(), 10)
    adelantado = Reloj()
    adelantado.ahora = reloj.ahora + timedelta(minutes=5)
    otra = FakePasarelaDePagos()
    desenlace = await handler(repo, otra, adelantado, "w2")(cmd)
    assert desenlace.motivo == "en_curso"
    assert otra.llamadas == []
    assert otra.consultas == []
    lenta.soltar.set()
    assert (await asyncio.wait_for(primero, 10)).estado == "EXITOSO"


async def test_19_h_59_min_sin_segunda_clave_mientras_el_transfer_no_se_lista():
    """Resumed by an operator at 19 h 59 min, generation 1 pays and times out; resumed again
    seconds later, past 20 h, the lookup would not list the transfer yet (60 s of list lag): no
    `:2` is sent. Once the settle margin has passed, the lookup finds it and settles the payment."""
    reloj = Reloj()
    repo, cmd = FakePagoRepository(reloj), comando()
    pasarela = FakePasarelaDePagos(reloj=reloj, retraso_listado=timedelta(seconds=60))
    pasarela.respuestas[cmd.id_pago] = INDETERMINADO
    await handler(repo, pasarela, reloj)(cmd)
    repo.pagos[cmd.id_pago].requiere_atencion = True  # flagged, as it would be within the hour
    reloj.ahora += timedelta(hours=19, minutes=59, seconds=45)
    repo.pagos[cmd.id_pago].requiere_atencion = False  # `pagos reanudar`
    pasarela.respuestas[cmd.id_pago] = ExitoSinRespuesta()
    assert (await handler(repo, pasarela, reloj, "w2")(cmd)).motivo == "requiere_atencion"  # 20 h old
    for _ in range(10):  # resumed again and again, seconds apart, for the next minutes
        reloj.ahora += timedelta(seconds=20)
        repo.pagos[cmd.id_pago].requiere_atencion = False
        desenlace = await handler(repo, pasarela, reloj, "w3")(cmd)
        assert desenlace.accion is Accion.REINTENTAR
        assert desenlace.motivo in {"esperando_asentamiento", "en_curso"}
    reloj.ahora += timedelta(minutes=5)
    desenlace = await handler(repo, pasarela, reloj, "w4")(cmd)
    assert (desenlace.accion, desenlace.estado) == (Accion.ACK, "EXITOSO")
    assert [g for _, g in pasarela.claves] == [1, 1]  # generation 2 was never sent
    assert len(pasarela.pagados[cmd.id_pago]) == 1


async def test_una_clave_agotada_pasa_a_la_siguiente_tras_el_margen_y_una_consulta_vacia():
    """A saved 500 is final for its key: retries under it can never succeed. After a lookup that
    finds nothing, once the settle margin has passed, the next generation pays."""
    reloj = Reloj()
    repo, cmd = FakePagoRepository(reloj), comando()
    pasarela = FakePasarelaDePagos(reloj=reloj)
    pasarela.respuestas[cmd.id_pago] = ClaveAgotadaError("Stripe guardó un 500 bajo la clave")
    assert (await handler(repo, pasarela, reloj)(cmd)).motivo == "resultado_indeterminado"
    assert repo.pagos[cmd.id_pago].clave_agotada
    pasarela.respuestas.clear()
    reloj.ahora += timedelta(seconds=5)
    espera = await handler(repo, pasarela, reloj, "w2")(cmd)
    assert espera.motivo == "esperando_asentamiento"
    assert pasarela.consultas == []  # no lookup before the margin: it would prove nothing
    reloj.ahora += POLITICA.margen_asentamiento
    desenlace = await handler(repo, pasarela, reloj, "w3")(cmd)
    assert desenlace.estado == "EXITOSO"
    assert pasarela.claves == [(cmd.id_pago, 1), (cmd.id_pago, 2)]
    assert pasarela.consultas == [cmd.id_pago]


async def test_el_reconciliador_sigue_si_un_pago_revienta():
    reloj = Reloj()
    repo, pasarela = FakePagoRepository(reloj), FakePasarelaDePagos()
    malo, bueno = comando(), comando()
    for cmd in (malo, bueno):
        pasarela.respuestas[cmd.id_pago] = ClaveAgotadaError("500")
        await handler(repo, pasarela, reloj)(cmd)
        repo.pagos[cmd.id_pago].clave_agotada = False
    pasarela.respuestas.clear()
    reloj.ahora += timedelta(minutes=10)
    real = handler(repo, pasarela, reloj, "reconciliador")
    fallos: list[None] = []

    async def procesar(c):
        if c.id_pago == malo.id_pago:
            raise RuntimeError("un pago que revienta")
        return await real(c)

    reconciliador = Reconciliador(repo, procesar, gracia=timedelta(0), al_fallar=lambda: fallos.append(None))
    cuenta = await reconciliador.reconciliar()
    assert cuenta == {"error": 1, "procesado": 1}
    assert fallos == [None]
    assert repo.pagos[bueno.id_pago].estado is EstadoPago.EXITOSO


async def test_una_caida_de_la_base_termina_la_pasada_del_reconciliador():
    """An outage would meet every payment of the pass: the pass ends, the next one tries again."""
    reloj = Reloj()
    repo, pasarela = FakePagoRepository(reloj), FakePasarelaDePagos()
    for cmd in (comando(), comando()):
        pasarela.respuestas[cmd.id_pago] = INDETERMINADO
        await handler(repo, pasarela, reloj)(cmd)
    reloj.ahora += timedelta(minutes=10)
    intentados = []

    async def caido(c):
        intentados.append(c.id_pago)
        raise ConnectionError("PostgreSQL no responde")

    reconciliador = Reconciliador(repo, caido, gracia=timedelta(0), es_transitorio=lambda e: isinstance(e, OSError))
    with pytest.raises(ConnectionError):
        await reconciliador.reconciliar()
    assert len(intentados) == 1
