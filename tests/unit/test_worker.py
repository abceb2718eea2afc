import asyncio
import json
import uuid

from pagos_worker.application.handlers import EN_CURSO, PROCESADO, YA_PROCESADO, Accion, Desenlace
from pagos_worker.entrypoints.worker import CommandWorker, manejar
from tests.fake_command_source import FakeCommandSource
from tests.fakes import FakeFailureLog, FakePublisher, es_caida, hasta
from tests.tiempo_virtual import tiempo_virtual


def nuevo_worker(source, procesar, dlq=None, **opciones) -> CommandWorker:
    opciones = {"es_transitorio": es_caida, "fallos": FakeFailureLog(), "espera_maxima": 0.05, **opciones}
    return CommandWorker(source, procesar, dlq or FakePublisher(), **opciones)


def valido(**cambios) -> bytes:
    cmd = {"id_pago": str(uuid.uuid4()), "id_afiliado": "a", "monto": "1.00", "moneda": "USD", **cambios}
    return json.dumps(cmd).encode()


async def test_manejar_rechaza_sin_llamar_a_la_aplicacion():
    llamadas = []

    async def procesar(cmd):
        llamadas.append(cmd)
        return PROCESADO

    desenlace = await manejar(b"{}", procesar)
    assert (desenlace.accion, desenlace.motivo) == (Accion.DLQ, "campo_faltante")
    assert llamadas == []
    assert (await manejar(valido(), procesar)) is PROCESADO
    assert len(llamadas) == 1


async def run_worker(payloads, procesar, dlq=None):
    source = FakeCommandSource(payloads)
    dlq = dlq or FakePublisher()
    stop = asyncio.Event()
    worker = nuevo_worker(source, procesar, dlq)
    task = asyncio.create_task(worker.run(stop, drain_timeout=5))
    await hasta(lambda: len(source.acked) + len(source.nacked) == len(payloads))
    stop.set()
    await task
    return source, dlq


async def test_cada_desenlace_se_asienta_como_corresponde():
    desenlaces = {b"ok": PROCESADO, b"dup": YA_PROCESADO, b"busy": EN_CURSO}

    async def procesar(cmd):
        return desenlaces[cmd.id_afiliado.encode()]

    ok, dup, busy, malo = valido(id_afiliado="ok"), valido(id_afiliado="dup"), valido(id_afiliado="busy"), b"\x00"
    source, dlq = await run_worker([ok, dup, busy, malo], procesar)
    assert sorted(source.acked) == sorted([ok, dup, malo])
    assert source.nacked == [busy]
    [mensaje] = dlq.mensajes
    assert mensaje.payload == malo
    assert mensaje.properties["motivo"] == "json_invalido"
    assert mensaje.properties["origen"] == "test"  # the original properties travel along
    assert mensaje.properties["topic_origen"] == "persistent://t/comandos"
    assert source.slots_in_use == 0


async def test_un_conflicto_se_publica_en_la_dlq_con_el_detalle():
    async def procesar(cmd):
        return Desenlace(Accion.DLQ, "conflicto_con_pago_existente", "otro monto")

    data = valido()
    source, dlq = await run_worker([data], procesar)
    assert source.acked == [data]
    assert dlq.mensajes[0].properties["detalle"] == "otro monto"


async def test_un_error_inesperado_devuelve_el_comando():
    async def procesar(cmd):
        raise RuntimeError("database down")

    data = valido()
    source, _ = await run_worker([data], procesar)
    assert source.nacked == [data]
    assert source.acked == []


async def test_si_la_dlq_no_responde_el_comando_vuelve_y_no_se_pierde():
    async def procesar(cmd):
        return PROCESADO

    source, _ = await run_worker([b"nope"], procesar, dlq=FakePublisher(fallos=1))
    assert source.nacked == [b"nope"]
    assert source.acked == []


@tiempo_virtual
async def test_al_parar_espera_a_los_pagos_en_curso():
    terminados = []

    async def procesar(cmd):
        await asyncio.sleep(0.2)
        terminados.append(cmd.id_pago)
        return PROCESADO

    source = FakeCommandSource([valido() for _ in range(5)])
    stop = asyncio.Event()
    worker = nuevo_worker(source, procesar)
    task = asyncio.create_task(worker.run(stop, drain_timeout=5))
    await asyncio.sleep(0.05)
    assert worker.in_flight == 5
    stop.set()
    await task
    assert len(terminados) == 5
    assert len(source.acked) == 5


@tiempo_virtual
async def test_lo_que_no_termina_a_tiempo_no_se_confirma():
    async def procesar(cmd):
        await asyncio.sleep(10)
        return PROCESADO

    source = FakeCommandSource([valido()])
    stop = asyncio.Event()
    task = asyncio.create_task(nuevo_worker(source, procesar).run(stop, drain_timeout=0.1))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert source.acked == []  # left unacknowledged: the broker redelivers it


@tiempo_virtual
async def test_con_la_pasarela_caida_el_worker_no_procesa_y_retiene_los_cupos():
    abierta = asyncio.Event()
    procesados = []

    async def gate():
        await abierta.wait()

    async def procesar(cmd):
        procesados.append(cmd.id_pago)
        return PROCESADO

    source = FakeCommandSource([valido() for _ in range(3)])
    stop = asyncio.Event()
    task = asyncio.create_task(nuevo_worker(source, procesar, gate=gate).run(stop, drain_timeout=5))
    await asyncio.sleep(0.1)
    assert procesados == []
    assert source.slots_in_use == 3  # held: the receiving side takes nothing more
    abierta.set()
    await asyncio.sleep(0.05)
    assert len(procesados) == 3
    assert source.slots_in_use == 0
    stop.set()
    await task


async def test_una_caida_de_la_base_de_datos_nunca_lleva_a_la_dlq():
    async def procesar(cmd):
        raise ConnectionRefusedError("postgres down")

    data = valido()
    source = FakeCommandSource([data], redelivery_count=50)
    dlq, fallos = FakePublisher(), FakeFailureLog()
    stop = asyncio.Event()
    task = asyncio.create_task(nuevo_worker(source, procesar, dlq, fallos=fallos).run(stop, drain_timeout=5))
    await hasta(lambda: source.nacked)
    stop.set()
    await task
    assert source.nacked == [data]
    assert dlq.mensajes == []
    assert fallos.fallos == {}  # an outage is never counted


async def test_un_reverso_cuenta_su_resultado_y_lo_devuelto_en_unidades_menores():
    from decimal import Decimal  # noqa: PLC0415

    from pagos_worker import observability as metrics  # noqa: PLC0415
    from pagos_worker.domain import Dinero, Moneda  # noqa: PLC0415

    def valor(nombre: str, etiquetas: dict[str, str]) -> float:
        return metrics.REGISTRY.get_sample_value(nombre, etiquetas) or 0.0

    antes = valor("pagos_monto_reversado_unidades_menores_total", {"moneda": "EUR"})
    exitos = valor("pagos_reversos_total", {"resultado": "exitoso"})
    reversado = Desenlace(Accion.ACK, "procesado", reverso="exitoso", reversado=Dinero(Decimal("40.25"), Moneda.EUR))

    async def procesar(cmd):
        return reversado

    source, _ = await run_worker([valido()], procesar)
    assert len(source.acked) == 1
    assert valor("pagos_monto_reversado_unidades_menores_total", {"moneda": "EUR"}) - antes == 4025
    assert valor("pagos_reversos_total", {"resultado": "exitoso"}) - exitos == 1
