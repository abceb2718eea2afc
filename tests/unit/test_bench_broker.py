"""The pipeline benchmark's broker option, without a JVM: `--broker pulsar` starts one Apache Pulsar
for the run (full JIT, the heap chosen), each scenario on topics of its own, the broker's process
counted and named in every result. The JVM run itself is `make bench BENCH_ARGS="cpu --broker pulsar"`."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from pagos_dev import cli as dev_cli
from pagos_dev.embedded import pulsar_apache
from pagos_dev.tools import bench, bench_broker
from pagos_dev.tools.bench_broker import Servidores, agrupar, familia_de_hilo
from pagos_dev.tools.cluster import Cluster, ClusterConfig
from pagos_worker.config import CONTRACT_COMMANDS_TOPIC


class BrokerFalso:
    """Stands for EmbeddedApachePulsar: records how it was built, started and closed."""

    creados: list[BrokerFalso] = []  # noqa: RUF012 - the instances of one test (reset by the fixture)

    def __init__(self, data_dir: Path, *, heap: str, quick: bool) -> None:
        self.data_dir, self.heap, self.quick = data_dir, heap, quick
        self.arranques = self.cierres = 0
        self.url, self.admin_url, self.pid = "pulsar://127.0.0.1:16650", "http://127.0.0.1:18080", 4242
        self.calentado = False
        BrokerFalso.creados.append(self)

    async def start(self) -> None:
        self.arranques += 1

    async def close(self) -> None:
        self.cierres += 1


CALENTADO = bench_broker.Calentamiento(100_000, (bench_broker.Ronda(4.0, 2.0), bench_broker.Ronda(4.0, 0.2)), 9.5)


@pytest.fixture
def broker_falso(monkeypatch: pytest.MonkeyPatch) -> list[BrokerFalso]:
    BrokerFalso.creados = []
    monkeypatch.setattr(bench_broker, "EmbeddedApachePulsar", BrokerFalso)

    async def calentar_falso(servidores: Servidores, log: Path) -> bench_broker.Calentamiento:
        (broker,) = BrokerFalso.creados
        assert broker.arranques == 1  # warmed up once it is up
        assert (servidores.pulsar_url, servidores.broker_pid) == (broker.url, broker.pid)
        broker.calentado = True
        return CALENTADO

    monkeypatch.setattr(bench_broker, "calentar", calentar_falso)
    return BrokerFalso.creados


def test_la_opcion_broker_del_bench_por_defecto_pulsar_lite():
    parser = dev_cli._parser()
    assert parser.parse_args(["bench", "pipeline", "cpu"]).broker == "pulsar-lite"
    assert parser.parse_args(["bench", "pipeline", "cpu", "--broker", "pulsar"]).broker == "pulsar"
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "pipeline", "--broker", "kafka"])


async def test_apache_pulsar_uno_para_la_corrida_con_jit_completo(tmp_path: Path, broker_falso: list[BrokerFalso]):
    async with bench_broker.broker_de_la_corrida(Servidores(broker="pulsar"), tmp_path) as servidores:
        (broker,) = broker_falso
        assert (broker.arranques, broker.cierres) == (1, 0)
        assert (broker.quick, broker.heap) == (False, bench_broker.HEAP_PULSAR)
        assert broker.data_dir == tmp_path / "pulsar-apache"
        assert broker.calentado  # before the first scenario
        assert servidores == Servidores(
            pulsar_url=broker.url,
            broker="pulsar",
            broker_pid=4242,
            broker_admin_url=broker.admin_url,
            calentamiento=CALENTADO,
        )
    assert broker.cierres == 1


@pytest.mark.parametrize(
    ("jit_por_ronda", "basta"),
    [
        ([], False),
        ([0.0, 0.0], False),  # fewer rounds than are judged
        ([0.5, 0.0, 0.0], False),  # one hot round of the last three outweighs two cold ones
        ([0.6, 0.5, 0.06, 0.05, 0.04], True),  # the last three under 10 %, whatever came before
        ([0.02, 0.03, 0.3], False),  # a recompilation in the last round counts
    ],
)
def test_el_calentamiento_acaba_cuando_la_jit_baja_de_un_decimo_en_tres_rondas(jit_por_ronda: list[float], basta: bool):
    rondas = [bench_broker.Ronda(cpu_s=4.0, jit_s=4.0 * j) for j in jit_por_ronda]
    assert bench_broker.basta_de_calentar(rondas) is basta


async def test_apache_pulsar_se_para_tambien_si_la_corrida_falla(tmp_path: Path, broker_falso: list[BrokerFalso]):
    with pytest.raises(RuntimeError, match="escenario roto"):
        async with bench_broker.broker_de_la_corrida(Servidores(broker="pulsar"), tmp_path):
            raise RuntimeError("escenario roto")
    assert broker_falso[0].cierres == 1


@pytest.mark.parametrize(
    "servidores", [Servidores(), Servidores(pulsar_url="pulsar://otro:6650", broker="pulsar")], ids=["lite", "dado"]
)
async def test_sin_jvm_para_pulsar_lite_ni_para_un_broker_dado(
    tmp_path: Path, broker_falso: list[BrokerFalso], servidores: Servidores
):
    async with bench_broker.broker_de_la_corrida(servidores, tmp_path) as dados:
        assert dados == servidores
    assert broker_falso == []


async def test_correr_todos_arranca_el_broker_una_vez_para_todos_los_escenarios(
    tmp_path: Path, broker_falso: list[BrokerFalso], monkeypatch: pytest.MonkeyPatch
):
    vistos: list[tuple[str, Servidores]] = []

    async def correr_falso(escenario: bench.Escenario, _: Path, servidores: Servidores) -> dict[str, Any]:
        assert broker_falso[0].arranques == 1  # up before the scenario, and the scenario starts none
        vistos.append((escenario.nombre, servidores))
        return {"escenario": escenario.nombre, "pagos_s_sostenido": 100.0}

    monkeypatch.setattr(bench, "_correr", correr_falso)
    await bench.correr_todos(["cpu", "semilla"], tmp_path / "r.json", tmp_path, 100, Servidores(broker="pulsar"))
    (broker,) = broker_falso
    assert (broker.arranques, broker.cierres) == (1, 1)
    assert [nombre for nombre, _ in vistos] == ["cpu", "semilla"]
    assert {(s.pulsar_url, s.broker_pid, s.broker) for _, s in vistos} == {(broker.url, 4242, "pulsar")}


def test_cada_escenario_con_sus_topicos_en_un_broker_compartido():
    propio = bench_broker.topicos("cpu", Servidores())
    assert propio["PAGOS_COMMANDS_TOPIC"] == CONTRACT_COMMANDS_TOPIC
    compartido = Servidores(pulsar_url="pulsar://127.0.0.1:16650", broker="pulsar", broker_pid=1)
    uno, otro = bench_broker.topicos("cpu", compartido), bench_broker.topicos("cpu", compartido)
    assert uno["PAGOS_COMMANDS_TOPIC"].startswith(CONTRACT_COMMANDS_TOPIC + "-bench-cpu-")
    assert set(uno.values()).isdisjoint(otro.values())
    assert set(uno.values()).isdisjoint(propio.values())


def test_cada_resultado_dice_en_que_broker_corrio():
    lite = Servidores().descripcion_broker()
    assert (lite["nombre"], lite["dado"]) == ("pulsar-lite", False)
    assert lite["version"]  # the installed pulsar-lite's
    apache = Servidores(pulsar_url="pulsar://127.0.0.1:16650", broker="pulsar", broker_pid=7).descripcion_broker()
    assert apache == {
        "nombre": "pulsar",
        "version": pulsar_apache.PULSAR_VERSION,
        "dado": False,
        "heap": bench_broker.HEAP_PULSAR,
    }
    dado = Servidores(pulsar_url="pulsar://otro:6650", broker="pulsar").descripcion_broker()
    assert dado == {"nombre": "pulsar", "version": None, "dado": True}
    calentado = Servidores(
        pulsar_url="pulsar://127.0.0.1:16650", broker="pulsar", broker_pid=7, calentamiento=CALENTADO
    )
    assert calentado.descripcion_broker()["calentamiento"] == {
        "mensajes": 200_000,
        "segundos": 9.5,
        "jit_por_ronda": [0.5, 0.05],
    }


def _cluster_falso(pulsar: object = None) -> Any:
    worker = SimpleNamespace(process=SimpleNamespace(pid=11))
    return SimpleNamespace(workers=[worker], simulador_pid=12, pulsar=pulsar, postgres=None, api=None)


def test_la_cpu_del_broker_de_la_corrida_cuenta_como_la_de_pulsar_lite():
    assert bench._procesos(_cluster_falso(), broker_pid=4242)["broker"] == [4242]
    assert bench._procesos(_cluster_falso(SimpleNamespace(pid=13)))["broker"] == [13]  # pulsar-lite's own
    assert "broker" not in bench._procesos(_cluster_falso())  # a given broker: not counted


@pytest.mark.parametrize(("broker", "con_offset"), [("pulsar-lite", True), ("pulsar", False)])
def test_ids_de_consumidor_propios_solo_en_pulsar_lite(tmp_path: Path, broker: Any, con_offset: bool):
    cluster = Cluster(
        ClusterConfig(
            tmp_path,
            postgres_url="postgresql://u@127.0.0.1:9/postgres",
            pulsar_url="pulsar://127.0.0.1:9",
            broker=broker,
        )
    )
    env = cluster.entorno_replica(8001, consumer_id_offset=1)
    assert env["PAGOS_HTTP_PORT"] == "8001"
    assert ("PAGOS_PULSAR_CONSUMER_ID_OFFSET" in env) is con_offset


async def test_los_topicos_del_escenario_se_borran_del_broker_de_la_corrida():
    borrados: list[str] = []

    async def borrar(request: web.Request) -> web.Response:
        borrados.append(f"{request.match_info['ruta']}?{request.query_string}")
        return web.Response(status=404 if "DLQ" in request.path else 204)  # never created: no error

    app = web.Application()
    app.router.add_delete("/admin/v2/{ruta:.*}", borrar)
    async with TestServer(app) as servidor:
        servidores = Servidores(
            pulsar_url="pulsar://x:1",
            broker="pulsar",
            broker_pid=1,
            broker_admin_url=str(servidor.make_url("")).rstrip("/"),
        )
        topicos = bench_broker.topicos("cpu", servidores)
        await bench_broker.borrar_topicos(servidores, topicos)
        assert sorted(borrados) == sorted(f"{t.replace('://', '/')}?force=true" for t in topicos.values())
        await bench_broker.borrar_topicos(Servidores(), topicos)  # pulsar-lite: its data dir goes instead
        assert len(borrados) == 3


async def test_un_topico_que_el_broker_no_borra_se_avisa_sin_perder_el_escenario(capsys: pytest.CaptureFixture[str]):
    async def negar(_: web.Request) -> web.Response:
        return web.Response(status=412, text="Topic has active producers")

    app = web.Application()
    app.router.add_delete("/admin/v2/{ruta:.*}", negar)
    async with TestServer(app) as servidor:
        admin = str(servidor.make_url("")).rstrip("/")
        servidores = Servidores(pulsar_url="pulsar://x:1", broker="pulsar", broker_pid=1, broker_admin_url=admin)
        await bench_broker.borrar_topicos(servidores, bench_broker.topicos("cpu", servidores))
    assert capsys.readouterr().err.count("left on the broker: HTTP 412 Topic has active producers") == 3


def test_familias_de_hilos_sin_la_numeracion_de_los_hermanos():
    assert familia_de_hilo("GC Thread#1\n") == "GC Thread"
    assert familia_de_hilo("pulsar-io-4-2") == "pulsar-io"
    assert familia_de_hilo("C2 CompilerThre") == "C2 CompilerThre"  # comm is 15 characters; "C2" names it
    assert familia_de_hilo("C1 CompilerThread0") == "C1 CompilerThread"
    assert familia_de_hilo("ForkJoinPool-1-worker-3") == "ForkJoinPool-worker"
    assert familia_de_hilo("42") == "42"


def test_agrupar_lo_pequeno_en_otros_y_lo_de_hilos_terminados():
    grupos = agrupar({"pulsar-io": 6.0, "C2 CompilerThre": 2.0, "a": 0.1, "b": 0.05}, total_s=10.0)
    assert grupos == {"pulsar-io": 6.0, "C2 CompilerThre": 2.0, "otros": 0.15, "(terminados)": 1.85}
    assert agrupar({}, total_s=0.0) == {}


def test_la_cpu_de_los_hilos_de_un_proceso_vivo():
    hilos = bench_broker.CpuPorHilo([os.getpid()])
    fin = time.process_time() + 0.3
    while time.process_time() < fin:
        pass
    grupos = hilos.gastado(total_s=0.3)
    principal = next(f for f in grupos if f.endswith(" (principal)"))  # this thread, apart from its siblings
    assert grupos[principal] >= 0.25  # it carries what it burned
    assert bench_broker.CpuPorHilo([]).gastado(total_s=1.0) == {}  # a broker not counted
