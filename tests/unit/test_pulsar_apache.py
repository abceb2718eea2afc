"""The Apache Pulsar standalone of the tooling, without a JVM: what it needs, what it pins, what it
writes. Starting it is `make test-pulsar`'s (tests/conftest.py, `--broker pulsar`)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from pagos_dev import cli as dev_cli
from pagos_dev.embedded import pulsar_apache
from pagos_dev.embedded.process import EmbeddedServiceError
from pagos_dev.embedded.pulsar_apache import EmbeddedApachePulsar


def test_el_pom_y_el_modulo_fijan_la_misma_version():
    pom = pulsar_apache.POM.read_text()
    assert re.search(r"<pulsar.version>([^<]+)</pulsar.version>", pom)[1] == pulsar_apache.PULSAR_VERSION  # type: ignore[index]
    assert len(pulsar_apache.BROKER_SHA256) == 64


def test_sin_java_ni_maven_ensamblar_dice_que_falta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    assert pulsar_apache.missing_tools() == ["java", "mvn"]
    with pytest.raises(EmbeddedServiceError, match="java and mvn"):
        pulsar_apache.assemble(tmp_path / "cache")


def _cache_con_broker(cache: Path, contenido: bytes) -> None:
    jar = cache / "repository" / f"pulsar-broker-{pulsar_apache.PULSAR_VERSION}.jar"
    jar.parent.mkdir(parents=True)
    jar.write_bytes(contenido)
    (cache / "classpath.txt").write_text(str(jar))
    (cache / "pom.sha256").write_text(hashlib.sha256(pulsar_apache.POM.read_bytes()).hexdigest())


def test_un_broker_que_no_es_el_fijado_se_rechaza(tmp_path: Path):
    _cache_con_broker(tmp_path, b"otro jar")
    with pytest.raises(EmbeddedServiceError, match="not the pinned"):
        pulsar_apache.assemble(tmp_path)


def test_con_la_cache_completa_no_se_llama_a_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _cache_con_broker(tmp_path, b"el jar fijado")
    monkeypatch.setattr(pulsar_apache, "BROKER_SHA256", hashlib.sha256(b"el jar fijado").hexdigest())
    monkeypatch.setenv("PATH", str(tmp_path / "vacio"))  # no mvn: it must not be needed
    assert [p.name for p in pulsar_apache.assemble(tmp_path)] == [f"pulsar-broker-{pulsar_apache.PULSAR_VERSION}.jar"]


def test_la_configuracion_del_standalone(tmp_path: Path):
    broker = EmbeddedApachePulsar(tmp_path, port=16650, web_port=18080)
    conf = dict(linea.split("=", 1) for linea in broker._standalone_conf().splitlines())
    assert (conf["brokerServicePort"], conf["webServicePort"]) == ("16650", "18080")
    assert conf["advertisedAddress"] == "127.0.0.1"
    assert conf["managedLedgerDefaultEnsembleSize"] == conf["managedLedgerDefaultWriteQuorum"] == "1"
    assert conf["functionsWorkerEnabled"] == "false"
    assert conf["allowAutoTopicCreationType"] == "non-partitioned"  # as the deployment guide creates them
    assert (broker.url, broker.admin_url) == ("pulsar://127.0.0.1:16650", "http://127.0.0.1:18080")


def test_el_puerto_del_bookie_se_conserva_entre_arranques(tmp_path: Path):
    """The bookie's identity (its cookie) is its address: the same data must come back on it."""
    primero = EmbeddedApachePulsar(tmp_path)._bookie_port()
    assert EmbeddedApachePulsar(tmp_path)._bookie_port() == primero


@pytest.mark.parametrize("comando", ["run", "infra", "chaos"])
def test_el_broker_real_esta_a_una_opcion(comando: str):
    parser = dev_cli._parser()
    assert parser.parse_args([comando]).broker == "pulsar-lite"
    assert parser.parse_args([comando, "--broker", "pulsar"]).broker == "pulsar"
