"""The alert rules under promtool: input series labelled as the scrape labels them, and the cases and
scenarios the unit tests give it (tests/unit/test_alertas*.py)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "pagos-worker.rules.yaml"
JOB = "pagos-worker"  # the scrape job: the PodMonitor's jobLabel, the plain job's job_name
NAMESPACE = "pagos"  # the production overlay's
TOPIC = "persistent://public/default/pagos-comandos"  # its commands topic, the commands_topic label
NS = {"namespace": NAMESPACE}  # what most alerts carry beyond the rule's own labels


def rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def serie(nombre: str, role: str = "worker", namespace: str = NAMESPACE, **etiquetas: str) -> str:
    """A series of a pagos-worker pod as the scrape labels it (job, namespace, role, commands_topic)."""
    todas = {"job": JOB, "namespace": namespace, "role": role, "commands_topic": TOPIC, **etiquetas}
    return nombre + "{" + ", ".join(f'{k}="{v}"' for k, v in todas.items()) + "}"


def backlog(topic: str = TOPIC, cluster: str = "pulsar-prod") -> str:
    """The broker's backlog of subscription pagos-worker, labelled as Pulsar labels it (its own
    `namespace` is the Pulsar namespace, kept by honorLabels as the Pulsar chart scrapes it)."""
    pulsar_ns = topic.removeprefix("persistent://").rpartition("/")[0]
    return (
        f'pulsar_subscription_back_log{{job="broker", instance="broker-0:8080", cluster="{cluster}", '
        f'namespace="{pulsar_ns}", topic="{topic}", subscription="pagos-worker"}}'
    )


@dataclass(frozen=True)
class Caso:
    """One alert on series that mean it (it fires, with these labels) or do not ([]: silent)."""

    alerta: str
    cuando: str  # evaluation time, the series starting at 0 one sample a minute
    series: dict[str, str]  # promtool's input series and their values
    dispara: list[dict[str, str]]  # the labels (beyond the rule's) of each alert expected; [] = silent


@dataclass(frozen=True)
class Escenario:
    """A whole system's series at one time, and every alert that fires then: all the others stay silent."""

    nombre: str
    cuando: str
    series: dict[str, str]
    disparan: dict[str, list[dict[str, str]]] = field(default_factory=dict)


def _prueba(regla: dict[str, Any], cuando: str, dispara: list[dict[str, str]]) -> dict[str, Any]:
    """promtool's alert_rule_test: at `cuando`, the rule fires once for each label set of `dispara`."""
    esperadas = [
        {"exp_labels": {**regla["labels"], **labels}, "exp_annotations": regla["annotations"]} for labels in dispara
    ]
    return {"eval_time": cuando, "alertname": regla["alert"], "exp_alerts": esperadas}


def _grupo(series: dict[str, str], pruebas: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "alert_rule_test": pruebas,
    }


def promtool_test(casos: list[Caso], escenarios: list[Escenario], directorio: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not on PATH (Debian: apt-get install prometheus): the rules are not checked")
    reglas = {r["alert"]: r for r in rules()}
    grupos = [_grupo(c.series, [_prueba(reglas[c.alerta], c.cuando, c.dispara)]) for c in casos]
    for e in escenarios:
        assert set(e.disparan) <= set(reglas), e.nombre
        pruebas = [_prueba(r, e.cuando, e.disparan.get(a, [])) for a, r in reglas.items()]
        grupos.append(_grupo(e.series, pruebas))
    archivo = directorio / "pagos-worker.test.yaml"
    archivo.write_text(yaml.safe_dump({"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": grupos}))
    out = subprocess.run([promtool, "test", "rules", str(archivo)], capture_output=True, text=True, check=False)  # noqa: S603
    assert out.returncode == 0, out.stdout + out.stderr
