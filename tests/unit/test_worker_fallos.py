"""What the consumer does with a command that fails: an outage holds it for a growing, capped while
and puts it back, never counted; a failure of its own is counted across deliveries (not the broker's
redelivery count, which also counts outages and busy payments), and the one that reaches the limit
records the command as poison before it is dead-lettered."""

import asyncio

from pagos_worker.application.handlers import Accion, Desenlace
from tests.fake_command_source import FakeCommandSource
from tests.fakes import FakeFailureLog, FakePublisher, hasta
from tests.tiempo_virtual import tiempo_virtual
from tests.unit.test_worker import nuevo_worker, valido


class Fuente(FakeCommandSource):
    """Also records when each message was settled, on the loop's clock."""

    def __init__(self, payloads, redelivery_count=0) -> None:
        super().__init__(payloads, redelivery_count=redelivery_count)
        self.reloj = asyncio.get_running_loop().time
        self.inicio = self.reloj()
        self.asentado: list[float] = []

    def nack(self, entrega) -> None:
        super().nack(entrega)
        self.asentado.append(self.reloj() - self.inicio)

    def ack(self, entrega) -> None:
        super().ack(entrega)
        self.asentado.append(self.reloj() - self.inicio)


async def entregar(source, procesar, *, dlq=None, fallos=None, max_intentos=3, **opciones):
    """One delivery of each payload; returns once every one was settled."""
    dlq = dlq if dlq is not None else FakePublisher()
    stop = asyncio.Event()
    worker = nuevo_worker(
        source, procesar, dlq, fallos=fallos if fallos is not None else FakeFailureLog(),
        max_intentos=max_intentos, **opciones,
    )  # fmt: skip
    task = asyncio.create_task(worker.run(stop, drain_timeout=5))
    await hasta(lambda: len(source.acked) + len(source.nacked) == source.publicados)
    stop.set()
    await task
    return dlq


async def bug(cmd):
    raise KeyError("un bug que no se cura reintentando")


async def test_el_fallo_que_llega_al_limite_registra_el_comando_y_luego_va_a_la_dlq():
    data = valido()
    fallos = FakeFailureLog()

    class Dlq(FakePublisher):
        async def publicar(self, mensajes):
            assert fallos.venenosos, "dead-lettered before it was recorded"
            await super().publicar(mensajes)

    for entrega in range(3):
        source = FakeCommandSource([data], redelivery_count=entrega)
        dlq = await entregar(source, bug, dlq=Dlq(), fallos=fallos)
        if entrega < 2:
            assert (source.nacked, dlq.mensajes) == ([data], [])
    assert source.acked == [data]
    [mensaje] = dlq.mensajes
    assert mensaje.properties["motivo"] == "error_repetido"
    assert "3 entregas fallidas" in mensaje.properties["detalle"]
    assert "KeyError" in mensaje.properties["detalle"]
    [registro] = fallos.venenosos.values()
    assert str(registro.id_pago) in data.decode()  # operators find it by its payment


async def test_las_entregas_devueltas_por_caidas_o_pagos_en_curso_no_cuentan():
    """The broker says this is the 21st delivery (outages, a payment busy elsewhere): its first
    failure of its own is still only the first."""
    data = valido()
    source = FakeCommandSource([data], redelivery_count=20)
    dlq = await entregar(source, bug)
    assert (source.nacked, dlq.mensajes) == ([data], [])


async def test_sin_poder_contar_el_fallo_no_va_a_la_dlq():
    data = valido()
    source = FakeCommandSource([data])
    dlq = await entregar(source, bug, fallos=FakeFailureLog(falla=ConnectionError("postgres down")), max_intentos=1)
    assert (source.nacked, dlq.mensajes) == ([data], [])


async def test_si_la_dlq_no_responde_tras_registrarlo_vuelve():
    data = valido()
    source = FakeCommandSource([data])
    fallos = FakeFailureLog()
    dlq = await entregar(source, bug, dlq=FakePublisher(fallos=1), fallos=fallos, max_intentos=1)
    assert (source.nacked, source.acked, dlq.mensajes) == ([data], [], [])
    assert fallos.venenosos  # recorded: the next delivery dead-letters it


async def caida(cmd):
    raise ConnectionResetError("postgres went away")


@tiempo_virtual
async def test_tras_una_caida_la_espera_crece_con_las_entregas_hasta_el_tope():
    """On virtual time: the hold is the worker's own wait, whatever else this machine is doing."""
    esperas = {}
    for previas in (0, 3, 40):
        source = Fuente([valido()], redelivery_count=previas)
        await entregar(source, caida, espera_base=0.02, espera_maxima=0.3)
        [esperas[previas]] = source.asentado
    assert 0.01 <= esperas[0] <= 0.02  # 0.02 s, jittered down to half at most
    assert 0.08 <= esperas[3] <= 0.16  # 0.02 * 2**3
    assert 0.15 <= esperas[40] <= 0.3  # the cap, 0.3 s, not 0.02 * 2**40


@tiempo_virtual
async def test_lo_retenido_conserva_su_cupo_y_vuelve_enseguida_al_parar():
    data = valido()
    source = FakeCommandSource([data], redelivery_count=10)
    stop = asyncio.Event()
    worker = nuevo_worker(source, caida, espera_maxima=30)
    task = asyncio.create_task(worker.run(stop, drain_timeout=60))
    await asyncio.sleep(0.2)
    assert source.slots_in_use == 1  # held with its slot: intake stays bounded
    assert source.nacked == []
    loop = asyncio.get_running_loop()
    inicio = loop.time()
    stop.set()
    await asyncio.wait_for(task, 2)
    assert loop.time() - inicio < 0.5  # not its hold (15 s or more) nor the drain's 60 s
    assert source.nacked == [data]
    assert source.slots_in_use == 0


async def esperando(cmd):
    return Desenlace(Accion.ESPERAR, "esperando_pago")


@tiempo_virtual
async def test_lo_que_espera_a_algo_lento_se_retiene_cada_vez_mas_sin_contar_como_fallo():
    """A reversal waiting for its payment is held like an outage's command (never a hot loop of
    1 s redeliveries), and is no failure: nothing counted, nothing dead-lettered."""
    esperas = {}
    for previas in (0, 3, 40):
        source = Fuente([valido()], redelivery_count=previas)
        fallos = FakeFailureLog()
        dlq = await entregar(source, esperando, fallos=fallos, espera_base=0.02, espera_maxima=0.3)
        [esperas[previas]] = source.asentado
        assert (source.acked, dlq.mensajes, fallos.venenosos) == ([], [], {})
    assert 0.01 <= esperas[0] <= 0.02
    assert 0.08 <= esperas[3] <= 0.16
    assert 0.15 <= esperas[40] <= 0.3
