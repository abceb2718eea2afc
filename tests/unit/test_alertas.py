"""deploy/prometheus's alert rules and deploy/grafana's dashboard, checked offline: the rules by promtool
(syntax, and each alert fired on series that mean it and not on series that do not), every metric a
rule or a panel names exported by the service or written by
Prometheus itself (`up`, of the scrape job the docs configure), and every alert's runbook_url the
anchor of a section of docs/operations/runbooks.md."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pagos_worker import observability

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "pagos-worker.rules.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "pagos-worker.json"
RUNBOOKS = ROOT / "docs" / "operations" / "runbooks.md"
DEPLOY_DOCS = ROOT / "docs" / "deploy" / "kubernetes.md"
JOB = "pagos-worker"  # the scrape job docs/deploy/kubernetes.md configures
DE_PROMETHEUS = {"up"}  # series Prometheus writes for each target it scrapes

_NOT_METRICS = {"and", "or", "unless", "offset", "bool", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are neither functions nor
    keywords, outside strings, label matchers, ranges and grouping clauses."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = re.findall(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)\b(?!\s*\()", e)
    return {n for n in names if n.lower() not in _NOT_METRICS}


def test_metric_names_de_una_expresion():
    expr = (
        'sum by (le, instance) (rate(a_bucket{le!="0.1", x=~"y|z"}[5m])) > 0.1 and on () '
        "(sum(rate(b_total[$__rate_interval])) or on () vector(0)) == 0 unless c offset 10m"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}


def exported() -> set[str]:
    """Every series name the service's registry can expose, whether or not it has samples yet."""
    sufijos = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {f.name + s for f in observability.REGISTRY.collect() for s in sufijos[f.type]}


def _rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panel_exprs() -> list[str]:
    return [t["expr"] for p in _dashboard()["panels"] for t in p.get("targets", [])]


def test_cada_metrica_nombrada_existe():
    conocidas = exported() | DE_PROMETHEUS
    for origen, exprs in [("rule", [r["expr"] for r in _rules()]), ("panel", _panel_exprs())]:
        for expr in exprs:
            assert metric_names(expr), expr
            assert metric_names(expr) <= conocidas, f"{origen} names {metric_names(expr) - conocidas}"


def test_el_tablero_muestra_cada_metrica_del_servicio():
    nombradas = set().union(*(metric_names(e) for e in _panel_exprs()))
    familias = {n.removesuffix("_bucket").removesuffix("_total") for n in nombradas}
    for f in observability.REGISTRY.collect():
        assert f.name in familias, f"no panel shows {f.name}"


def test_up_solo_del_trabajo_documentado():
    """`up` is every scrape job's: a rule or a panel reads that of pagos-worker's job alone."""
    for expr in [r["expr"] for r in _rules()] + _panel_exprs():
        if "up" in metric_names(expr):
            selectores = re.findall(r"\bup\b(\{[^}]*\})?", expr)
            assert all(s == f'{{job="{JOB}"}}' for s in selectores), expr


def _bloques_yaml(texto: str) -> list[dict[str, Any]]:
    return [yaml.safe_load(b) for b in re.findall(r"^```yaml\n(.*?)^```", texto, flags=re.MULTILINE | re.DOTALL)]


def test_la_recogida_documentada_envia_un_token_como_el_trabajo_que_miran_las_alertas():
    """/metrics wants a bearer token: both scrape configurations the docs give send one, under the
    job name the rules and the dashboard read."""
    bloques = _bloques_yaml(DEPLOY_DOCS.read_text())
    (monitor,) = [b for b in bloques if b.get("kind") == "PodMonitor"]
    (trabajo,) = [s for b in bloques for s in b.get("scrape_configs", [])]
    assert trabajo["job_name"] == JOB
    assert trabajo["authorization"]["type"] == "Bearer"
    assert trabajo["authorization"]["credentials_file"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    assert endpoint["authorization"]["type"] == "Bearer"
    assert endpoint["authorization"]["credentials"] == {"name": "pagos-worker-scrape", "key": "token"}
    # The operator names the job after the value of the pods' label jobLabel names.
    assert monitor["spec"]["selector"]["matchLabels"][monitor["spec"]["jobLabel"]] == JOB


def test_el_tablero_es_json_ordenado_y_coherente():
    texto = DASHBOARD.read_text()
    tablero = json.loads(texto)
    assert texto == json.dumps(tablero, indent=2, ensure_ascii=False) + "\n", "tidy: json.dumps(indent=2)"
    paneles = tablero["panels"]
    assert len({p["id"] for p in paneles}) == len(paneles)
    assert tablero["templating"]["list"][0] == {
        "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
    }  # fmt: skip
    for p in paneles:
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]  # Grafana's grid
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
            assert p["targets"], p["title"]


def _slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_cada_alerta_tiene_su_runbook():
    anclas = {_slug(m) for m in re.findall(r"^#{2,3} (.+)$", RUNBOOKS.read_text(), flags=re.MULTILINE)}
    for rule in _rules():
        ruta, _, ancla = rule["annotations"]["runbook_url"].partition("#")
        assert (ROOT / ruta) == RUNBOOKS, rule["alert"]
        assert ancla == _slug(rule["alert"]), rule["alert"]
        assert ancla in anclas, f"{rule['alert']}: no section #{ancla} in {ruta}"
        assert "{{" not in str(rule["annotations"]), "plain annotations (the promtool tests compare them)"


@pytest.fixture(scope="module")
def promtool() -> str:
    ruta = shutil.which("promtool")
    if ruta is None:
        pytest.skip("promtool is not on PATH (Debian: apt-get install prometheus): the rules are not checked")
    return ruta


def test_promtool_check_rules(promtool):
    out = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False)  # noqa: S603
    assert out.returncode == 0, out.stdout + out.stderr


@dataclass(frozen=True)
class Caso:
    alerta: str
    cuando: str  # evaluation time, the series starting at 0 one sample a minute
    series: dict[str, str]  # promtool's input series and their values
    dispara: list[dict[str, str]]  # the labels (beyond the rule's) of each alert expected; [] = silent


# Each alert on series that mean it (it fires) and on series that do not (it stays silent).
OUTBOX_EDAD = "outbox_pendiente_mas_antiguo_segundos"
LOOP = "event_loop_retraso_segundos_bucket"
CASOS = [
    Caso("OutboxEventoSinPublicar", "4m", {OUTBOX_EDAD: "0+15x20"}, []),
    Caso("OutboxEventoSinPublicar", "12m", {OUTBOX_EDAD: "0+15x20"}, [{}]),
    Caso("OutboxEventoSinPublicar", "15m", {OUTBOX_EDAD: "0.5x20"}, []),
    Caso(
        "PagosSinProgreso",
        "20m",
        {"pagos_en_curso": "3x30", 'pagos_comandos_total{motivo="en_curso"}': "0+50x30"},
        [{}],
    ),
    Caso("PagosSinProgreso", "20m", {"pagos_en_curso": "3x30"}, [{}]),  # nothing settled, ever
    *(  # commands put back while something is down are no progress: the payments still wait
        Caso(
            "PagosSinProgreso",
            "20m",
            {"pagos_en_curso": "3x30", f'pagos_comandos_total{{motivo="{m}"}}': "0+50x30"},
            [{}],
        )
        for m in ("caida", "pasarela_no_disponible", "fallo_propio")
    ),
    Caso(  # a reversal waiting for a stuck payment is put back once a second: no progress either
        "PagosSinProgreso",
        "20m",
        {"pagos_en_curso": "3x30", 'pagos_comandos_total{motivo="esperando_pago"}': "0+60x30"},
        [{}],
    ),
    Caso(
        "PagosSinProgreso", "20m", {"pagos_en_curso": "3x30", 'pagos_comandos_total{motivo="procesado"}': "0+50x30"}, []
    ),
    Caso("PagosSinProgreso", "20m", {"pagos_en_curso": "0x30"}, []),
    Caso("PasarelaCircuitoAbierto", "8m", {"pasarela_circuito_abierto": "1x20"}, [{}]),
    Caso("PasarelaCircuitoAbierto", "12m", {"pasarela_circuito_abierto": " ".join(["1 0 0 0 0"] * 4)}, []),
    Caso(
        "PagosEnDLQ",
        "25m",
        {'pagos_dlq_total{motivo="comando_invalido"}': "_x20 1x20"},
        [{"motivo": "comando_invalido"}],
    ),
    Caso("PagosEnDLQ", "35m", {'pagos_dlq_total{motivo="comando_invalido"}': "_x20 1x20"}, []),
    Caso(
        "PagosEnDLQ", "25m", {'pagos_dlq_total{motivo="error_repetido"}': "1x20 2x20"}, [{"motivo": "error_repetido"}]
    ),
    Caso("PagoPagadoDosVeces", "10m", {"pasarela_transfers_multiples_total": "0x5 1x15"}, [{}]),
    Caso("PagoPagadoDosVeces", "10m", {"pasarela_transfers_multiples_total": "3x20"}, []),
    Caso("PagosRequierenAtencion", "15m", {"pagos_requieren_atencion": "0x5 2x20"}, [{}]),
    Caso("PagosRequierenAtencion", "15m", {"pagos_requieren_atencion": "0x20"}, []),
    Caso(
        "EventLoopRetrasado",
        "20m",
        {
            LOOP + '{instance="w1", le="0.1"}': "0+90x30",
            LOOP + '{instance="w1", le="0.25"}': "0+100x30",
            LOOP + '{instance="w1", le="+Inf"}': "0+100x30",
        },
        [{"instance": "w1"}],
    ),
    Caso(
        "EventLoopRetrasado",
        "20m",
        {LOOP + '{instance="w1", le="0.01"}': "0+100x30", LOOP + '{instance="w1", le="+Inf"}': "0+100x30"},
        [],
    ),
    Caso(
        "PasarelaRespuestas429",
        "20m",
        {'pasarela_respuestas_total{status="200"}': "0+1000x30", 'pasarela_respuestas_total{status="429"}': "0+50x30"},
        [{}],
    ),
    Caso(
        "PasarelaRespuestas429",
        "20m",
        {'pasarela_respuestas_total{status="200"}': "0+1000x30", 'pasarela_respuestas_total{status="429"}': "0+1x30"},
        [],
    ),
]


SIN_SALDO = 'pagos_reversos_total{resultado="saldo_insuficiente"}'
CASOS += [
    Caso("ReversosSinSaldo", "25m", {SIN_SALDO: "_x20 1x20"}, [{}]),  # the first in a process
    Caso("ReversosSinSaldo", "25m", {SIN_SALDO: "1x20 2x20"}, [{}]),
    Caso("ReversosSinSaldo", "40m", {SIN_SALDO: "_x20 1x20"}, []),  # 15 minutes on, quiet again
    Caso("ReversosSinSaldo", "20m", {'pagos_reversos_total{resultado="exitoso"}': "0+5x30"}, []),
    Caso("ReversosRequierenAtencion", "20m", {"pagos_reversos_requieren_atencion": "0x5 1x20"}, [{}]),
    Caso("ReversosRequierenAtencion", "20m", {"pagos_reversos_requieren_atencion": "0x5 1x5 0x20"}, []),
    Caso("ReversosRequierenAtencion", "20m", {"pagos_reversos_requieren_atencion": "0x30"}, []),
]


# Reconciliation: each replica exports its own last complete run; the freshest one counts.
DIF, ULTIMA = "conciliacion_diferencias", "conciliacion_ultima_exitosa_timestamp_segundos"
CASOS += [
    Caso(
        "ConciliacionDiferenciaCritica",
        "20m",
        {
            f'{DIF}{{instance="w1", clase="transferencias_multiples"}}': "1x30",
            f'{DIF}{{instance="w1", clase="importe_distinto"}}': "0x30",
            f'{ULTIMA}{{instance="w1"}}': "600x30",
            f'{ULTIMA}{{instance="w2"}}': "0x30",  # a replica that has run none
        },
        [{"clase": "transferencias_multiples"}],
    ),
    Caso(  # only non-critical classes: not this alert
        "ConciliacionDiferenciaCritica",
        "20m",
        {
            f'{DIF}{{instance="w1", clase="transferencia_sin_exito"}}': "0x30",
            f'{DIF}{{instance="w1", clase="reverso_externo"}}': "2x30",
            f'{ULTIMA}{{instance="w1"}}': "600x30",
        },
        [],
    ),
    Caso(  # w1's older run found one; w2's newer run found it settled: the newer counts
        "ConciliacionDiferenciaCritica",
        "20m",
        {
            f'{DIF}{{instance="w1", clase="exitoso_sin_transferencia"}}': "1x30",
            f'{ULTIMA}{{instance="w1"}}': "600x30",
            f'{DIF}{{instance="w2", clase="exitoso_sin_transferencia"}}': "_x10 0x20",
            f'{ULTIMA}{{instance="w2"}}': "0x10 1200x20",
        },
        [],
    ),
    Caso(  # and the other way round
        "ConciliacionDiferenciaCritica",
        "20m",
        {
            f'{DIF}{{instance="w1", clase="exitoso_sin_transferencia"}}': "0x30",
            f'{ULTIMA}{{instance="w1"}}': "600x30",
            f'{DIF}{{instance="w2", clase="exitoso_sin_transferencia"}}': "_x10 1x20",
            f'{ULTIMA}{{instance="w2"}}': "0x10 1200x20",
        },
        [{"clase": "exitoso_sin_transferencia"}],
    ),
    Caso(
        "ConciliacionDiferencias",
        "20m",
        {
            f'{DIF}{{instance="w1", clase="reverso_externo"}}': "2x30",
            f'{DIF}{{instance="w1", clase="transferencia_sin_exito"}}': "1x30",
            f'{ULTIMA}{{instance="w1"}}': "600x30",
        },
        [{"clase": "reverso_externo"}],
    ),
    Caso(
        "ConciliacionDiferencias",
        "20m",
        {
            f'{DIF}{{instance="w1", clase="destino_distinto"}}': "0x30",
            f'{DIF}{{instance="w1", clase="transferencia_sin_exito"}}': "1x30",
            f'{ULTIMA}{{instance="w1"}}': "600x30",
        },
        [],
    ),
    # Promtool's clock starts at 0: the 26 hours are real hours of series, one sample a minute.
    Caso("ConciliacionSinEjecutar", "27h", {f'{ULTIMA}{{instance="w1"}}': "0x1700"}, [{}]),  # never one
    Caso(  # one at 1 h, none since
        "ConciliacionSinEjecutar", "28h", {f'{ULTIMA}{{instance="w1"}}': "0x60 3600x1700"}, [{}]
    ),
    Caso(  # one at 1 h and one at 25 h: the last is 3 h old
        "ConciliacionSinEjecutar", "28h", {f'{ULTIMA}{{instance="w1"}}': "0x60 3600x1440 90000x300"}, []
    ),
    Caso(  # the replica that ran it at 25 h is gone; the one that replaced it has run none yet
        "ConciliacionSinEjecutar",
        "30h",
        {f'{ULTIMA}{{instance="w1"}}': "0x1500 90000x60 stale", f'{ULTIMA}{{instance="w2"}}': "_x1570 0x300"},
        [],
    ),
    Caso("ConciliacionSinEjecutar", "45m", {"pagos_en_curso": "0x60"}, [{}]),  # exported by no process
]


UP = f'up{{job="{JOB}", instance="10.0.0.7:8000"}}'
CASOS += [
    Caso("MetricasNoRecogidas", "20m", {UP: "1x5 0x20"}, [{"job": JOB, "instance": "10.0.0.7:8000"}]),
    Caso("MetricasNoRecogidas", "20m", {UP: "1x30"}, []),
    Caso("MetricasNoRecogidas", "20m", {UP: "1x5 0 0 1x20"}, []),  # a restart, scraped again
    Caso("MetricasNoRecogidas", "20m", {'up{job="otro", instance="x"}': "1x30"}, [{"job": JOB}]),  # no target
]


def test_cada_alerta_probada_en_ambos_sentidos():
    for rule in _rules():
        resultados = [bool(c.dispara) for c in CASOS if c.alerta == rule["alert"]]
        assert True in resultados and False in resultados, rule["alert"]  # noqa: PT018


def test_promtool_test_rules(promtool, tmp_path):
    reglas = {r["alert"]: r for r in _rules()}
    tests = []
    for caso in CASOS:
        regla = reglas[caso.alerta]
        esperadas = [
            {"exp_labels": {**regla["labels"], **labels}, "exp_annotations": regla["annotations"]}
            for labels in caso.dispara
        ]
        tests.append(
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in caso.series.items()],
                "alert_rule_test": [{"eval_time": caso.cuando, "alertname": caso.alerta, "exp_alerts": esperadas}],
            }
        )
    archivo = tmp_path / "pagos-worker.test.yaml"
    archivo.write_text(yaml.safe_dump({"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests}))
    out = subprocess.run([promtool, "test", "rules", str(archivo)], capture_output=True, text=True, check=False)  # noqa: S603
    assert out.returncode == 0, out.stdout + out.stderr
