"""deploy/prometheus's alert rules and deploy/grafana's dashboard, checked offline: the rules by promtool
(syntax, and each alert fired on series that mean it and not on series that do not), every metric a
rule or a panel names exported by the service, written by Prometheus itself (`up`, of the scrape job
the docs configure) or by the Pulsar broker; every selector on the job and every aggregation by
namespace, so that two environments in one Prometheus never mix; the dashboard one namespace at a
time; and every alert's runbook_url absolute, its anchor a section of docs/operations/runbooks.md.
The alerts on who is there (WorkersAusentes and the others) and whole-system scenarios:
test_alertas_presencia.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from pagos_worker import observability
from tests.reglas_helpers import JOB, NS, RULES, TOPIC, Caso, promtool_test, rules, serie

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "pagos-worker.json"
RUNBOOKS = ROOT / "docs" / "operations" / "runbooks.md"
DEPLOY_DOCS = ROOT / "docs" / "deploy" / "kubernetes.md"
PODMONITOR = ROOT / "deploy" / "prometheus" / "scrape" / "podmonitor.yaml"
DE_PROMETHEUS = {"up"}  # series Prometheus writes for each target it scrapes
DE_PULSAR = {"pulsar_subscription_back_log"}  # the broker's, labelled cluster, namespace, topic, subscription
# Where the rules file points its runbooks until the kustomization (or the documented sed) sets the base.
RUNBOOKS_BASE = "https://git.example.com/pagos/pagos_worker/-/blob/main/docs/operations/runbooks.md"

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
        "(sum(rate(b_total[$__rate_interval])) or on () vector(0)) == 0 unless c offset 10m "
        'or label_replace(group by (t) (d), "t", "$1", "u", "(.+)") unless min_over_time(e[5m:1m] offset 5m)'
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c", "d", "e"}


def selectores(expr: str) -> list[tuple[str, str]]:
    """Each selection of a metric in `expr`: its name and its matchers ('' when it has none)."""
    return [
        (m.group(1), m.group(2) or "")
        for nombre in metric_names(expr)
        for m in re.finditer(rf"(?<![\w:\"])({re.escape(nombre)})\b(\{{[^}}]*\}})?", expr)
    ]


def test_selectores_de_una_expresion():
    expr = 'sum(a{job="x"}) / sum(a) and on (b) b_total{c="d"} offset 5m'
    assert sorted(selectores(expr)) == [("a", ""), ("a", '{job="x"}'), ("b_total", '{c="d"}')]


_AGREGACION = re.compile(
    r"\b(sum|max|min|avg|count|group|topk|bottomk|quantile|stddev|stdvar|count_values)\b\s*(?:by\s*\(([^)]*)\))?\s*\("
)


def agregaciones(expr: str) -> list[tuple[str, set[str], str]]:
    """Each aggregation in `expr`: its operator, the labels it keeps (by) and its argument."""
    encontradas = []
    for m in _AGREGACION.finditer(expr):
        profundidad, fin = 1, m.end()
        while profundidad:
            profundidad += {"(": 1, ")": -1}.get(expr[fin], 0)
            fin += 1
        por = {e.strip() for e in (m.group(2) or "").split(",") if e.strip()}
        encontradas.append((m.group(1), por, expr[m.end() : fin - 1]))
    return encontradas


def test_agregaciones_de_una_expresion():
    expr = (
        "time() - max by (namespace) (max_over_time(x[26h])) > 1 "
        "or topk by (a, b) (1, sum(y)) * histogram_quantile(0.9, z)"
    )
    assert agregaciones(expr) == [
        ("max", {"namespace"}, "max_over_time(x[26h])"),
        ("topk", {"a", "b"}, "1, sum(y)"),
        ("sum", set(), "y"),
    ]


def exported() -> set[str]:
    """Every series name the service's registry can expose, whether or not it has samples yet."""
    sufijos = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {f.name + s for f in observability.REGISTRY.collect() for s in sufijos[f.type]}


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panel_exprs() -> list[str]:
    return [t["expr"] for p in _dashboard()["panels"] for t in p.get("targets", [])]


def _rule_exprs() -> list[str]:
    return [r["expr"] for r in rules()]


def test_cada_metrica_nombrada_existe():
    conocidas = exported() | DE_PROMETHEUS | DE_PULSAR
    for origen, exprs in [("rule", _rule_exprs()), ("panel", _panel_exprs())]:
        for expr in exprs:
            assert metric_names(expr), expr
            assert metric_names(expr) <= conocidas, f"{origen} names {metric_names(expr) - conocidas}"


def test_el_tablero_muestra_cada_metrica_del_servicio():
    nombradas = set().union(*(metric_names(e) for e in _panel_exprs()))
    familias = {n.removesuffix("_bucket").removesuffix("_total") for n in nombradas}
    for f in observability.REGISTRY.collect():
        assert f.name in familias, f"no panel shows {f.name}"


def test_cada_selector_nombra_su_trabajo():
    """`up` is every scrape job's, and another job may export a metric of the same name: every
    selection of the service's series names the job; the broker's, the subscription pagos-worker."""
    for expr in _rule_exprs() + _panel_exprs():
        for nombre, matchers in selectores(expr):
            propio = 'subscription="pagos-worker"' if nombre in DE_PULSAR else f'job="{JOB}"'
            assert propio in matchers, f"{nombre}{matchers} in {expr}"


def test_cada_agregacion_de_las_reglas_conserva_el_entorno():
    """Two environments in one Prometheus never mix: every aggregation over the service's series keeps
    the namespace, every one over the broker's keeps the topic (the environment's commands topic)."""
    for regla in rules():
        for operador, por, argumento in agregaciones(regla["expr"]):
            clave = "topic" if metric_names(argumento) <= DE_PULSAR else "namespace"
            assert clave in por, f"{regla['alert']}: {operador} by ({', '.join(sorted(por))}) ({argumento})"


def test_el_tablero_muestra_un_entorno_a_la_vez():
    """Every selection of the service's series is of the dashboard's namespace; the broker's backlog
    is joined to it by the namespace's commands_topic."""
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    assert variables["namespace"]["type"] == "query"
    assert variables["namespace"]["query"]["query"] == f'label_values(up{{job="{JOB}"}}, namespace)'
    for expr in _panel_exprs():
        for nombre, matchers in selectores(expr):
            if nombre not in DE_PULSAR:
                assert 'namespace="$namespace"' in matchers, f"{nombre}{matchers} in {expr}"
        if metric_names(expr) & DE_PULSAR:
            assert re.search(r"and on \(topic\) label_replace\(.*namespace=\"\$namespace\"", expr), expr


def _bloques_yaml(texto: str) -> list[dict[str, Any]]:
    return [yaml.safe_load(b) for b in re.findall(r"^```yaml\n(.*?)^```", texto, flags=re.MULTILINE | re.DOTALL)]


def test_la_recogida_documentada_pone_las_etiquetas_del_podmonitor():
    """Both ways the docs give to scrape (the PodMonitor of deploy/prometheus/scrape, and a plain
    job in prometheus.yml) send a token, under the job the rules read, and label every series with
    what the rules read: namespace, pod, role (the pod's component) and commands_topic."""
    texto = DEPLOY_DOCS.read_text()
    assert "deploy/prometheus/scrape" in texto
    (trabajo,) = [s for b in _bloques_yaml(texto) for s in b.get("scrape_configs", [])]
    assert trabajo["job_name"] == JOB
    assert trabajo["authorization"]["type"] == "Bearer"
    assert trabajo["authorization"]["credentials_file"]
    reemplazos = {r["target_label"]: r for r in trabajo["relabel_configs"] if "target_label" in r}
    assert reemplazos["namespace"]["source_labels"] == ["__meta_kubernetes_namespace"]
    assert reemplazos["pod"]["source_labels"] == ["__meta_kubernetes_pod_name"]
    componente = "__meta_kubernetes_pod_label_app_kubernetes_io_component"
    (monitor,) = yaml.safe_load_all(PODMONITOR.read_text())
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    del_monitor = {r["targetLabel"]: r for r in endpoint["relabelings"]}
    assert reemplazos["role"]["source_labels"] == del_monitor["role"]["sourceLabels"] == [componente]
    assert reemplazos["commands_topic"]["replacement"] == del_monitor["commands_topic"]["replacement"] == TOPIC
    assert "source_labels" not in reemplazos["commands_topic"]


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
    """The anchor GitHub (and GitLab) give a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_cada_alerta_enlaza_su_runbook_con_una_url_absoluta():
    anclas = {_slug(m) for m in re.findall(r"^#{2,3} (.+)$", RUNBOOKS.read_text(), flags=re.MULTILINE)}
    assert urlsplit(RUNBOOKS_BASE).scheme == "https"
    assert urlsplit(RUNBOOKS_BASE).netloc
    for rule in rules():
        url = rule["annotations"]["runbook_url"]
        base, _, ancla = url.partition("#")
        assert base == RUNBOOKS_BASE, rule["alert"]
        assert ancla == _slug(rule["alert"]), rule["alert"]
        assert ancla in anclas, f"{rule['alert']}: no section #{ancla} in {RUNBOOKS.relative_to(ROOT)}"
        assert "{{" not in str(rule["annotations"]), "plain annotations (the promtool tests compare them)"


def test_la_tabla_de_alertas_de_operaciones_las_nombra_todas():
    texto = (ROOT / "docs" / "operations.md").read_text().partition("## Alerts and runbooks\n")[2].partition("\n## ")[0]
    tabla = set(re.findall(r"^\| `(\w+)` \|.*\(operations/runbooks\.md#(\w+)\) \|$", texto, flags=re.MULTILINE))
    assert tabla == {(r["alert"], _slug(r["alert"])) for r in rules()}


def test_la_guia_dice_como_poner_la_base_de_los_runbooks():
    """The placeholder base is replaced by the kustomization's setting (the PrometheusRule) or by the
    documented sed (the rules file): the guide names it as the rules file writes it."""
    assert RUNBOOKS_BASE in DEPLOY_DOCS.read_text()


def test_promtool_check_rules():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not on PATH (Debian: apt-get install prometheus): the rules are not checked")
    out = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False)  # noqa: S603
    assert out.returncode == 0, out.stdout + out.stderr


# Each alert on series that mean it (it fires) and on series that do not (it stays silent). The series
# are labelled as the scrape labels them (reglas_helpers.serie: job, namespace pagos, role worker,
# commands_topic); most alerts carry the namespace they fired for.
OUTBOX_EDAD = "outbox_pendiente_mas_antiguo_segundos"
RESPUESTAS_200 = serie("pasarela_respuestas_total", status="200")
RESPUESTAS_429 = serie("pasarela_respuestas_total", status="429")
LOOP = "event_loop_retraso_segundos_bucket"
EN_CURSO = serie("pagos_en_curso")
CASOS = [
    Caso("OutboxEventoSinPublicar", "4m", {serie(OUTBOX_EDAD): "0+15x20"}, []),
    Caso("OutboxEventoSinPublicar", "12m", {serie(OUTBOX_EDAD): "0+15x20"}, [NS]),
    Caso("OutboxEventoSinPublicar", "15m", {serie(OUTBOX_EDAD): "0.5x20"}, []),
    Caso(  # a relay of its own, beside the API's zeros
        "OutboxEventoSinPublicar",
        "12m",
        {serie(OUTBOX_EDAD, "relay"): "0+15x20", serie(OUTBOX_EDAD, "api"): "0x20"},
        [NS],
    ),
    Caso(
        "PagosSinProgreso",
        "20m",
        {EN_CURSO: "3x30", serie("pagos_comandos_total", motivo="en_curso"): "0+50x30"},
        [NS],
    ),
    Caso("PagosSinProgreso", "20m", {EN_CURSO: "3x30"}, [NS]),  # nothing settled, ever
    *(  # commands put back while something is down are no progress: the payments still wait
        Caso("PagosSinProgreso", "20m", {EN_CURSO: "3x30", serie("pagos_comandos_total", motivo=m): "0+50x30"}, [NS])
        for m in ("caida", "pasarela_no_disponible", "fallo_propio")
    ),
    Caso(  # a reversal waiting for a stuck payment is put back once a second: no progress either
        "PagosSinProgreso",
        "20m",
        {EN_CURSO: "3x30", serie("pagos_comandos_total", motivo="esperando_pago"): "0+60x30"},
        [NS],
    ),
    Caso(
        "PagosSinProgreso",
        "20m",
        {EN_CURSO: "3x30", serie("pagos_comandos_total", motivo="procesado"): "0+50x30"},
        [],
    ),
    Caso("PagosSinProgreso", "20m", {EN_CURSO: "0x30"}, []),
    Caso("PasarelaCircuitoAbierto", "8m", {serie("pasarela_circuito_abierto"): "1x20"}, [NS]),
    Caso("PasarelaCircuitoAbierto", "12m", {serie("pasarela_circuito_abierto"): " ".join(["1 0 0 0 0"] * 4)}, []),
    Caso(
        "PagosEnDLQ",
        "25m",
        {serie("pagos_dlq_total", motivo="comando_invalido"): "_x20 1x20"},
        [{**NS, "motivo": "comando_invalido"}],
    ),
    Caso("PagosEnDLQ", "35m", {serie("pagos_dlq_total", motivo="comando_invalido"): "_x20 1x20"}, []),
    Caso(
        "PagosEnDLQ",
        "25m",
        {serie("pagos_dlq_total", motivo="error_repetido"): "1x20 2x20"},
        [{**NS, "motivo": "error_repetido"}],
    ),
    Caso("PagoPagadoDosVeces", "10m", {serie("pasarela_transfers_multiples_total"): "0x5 1x15"}, [NS]),
    Caso("PagoPagadoDosVeces", "10m", {serie("pasarela_transfers_multiples_total"): "3x20"}, []),
    Caso(  # sampled by the API; the workers' zeros beside it change nothing
        "PagosRequierenAtencion",
        "15m",
        {serie("pagos_requieren_atencion", "api"): "0x5 2x20", serie("pagos_requieren_atencion"): "0x20"},
        [NS],
    ),
    Caso("PagosRequierenAtencion", "15m", {serie("pagos_requieren_atencion", "api"): "0x20"}, []),
    Caso(
        "EventLoopRetrasado",
        "20m",
        {
            serie(LOOP, pod="w1", le="0.1"): "0+90x30",
            serie(LOOP, pod="w1", le="0.25"): "0+100x30",
            serie(LOOP, pod="w1", le="+Inf"): "0+100x30",
        },
        [{**NS, "pod": "w1"}],
    ),
    Caso(
        "EventLoopRetrasado",
        "20m",
        {serie(LOOP, pod="w1", le="0.01"): "0+100x30", serie(LOOP, pod="w1", le="+Inf"): "0+100x30"},
        [],
    ),
    Caso(
        "PasarelaRespuestas429",
        "20m",
        {RESPUESTAS_200: "0+1000x30", RESPUESTAS_429: "0+50x30"},
        [NS],
    ),
    Caso(
        "PasarelaRespuestas429",
        "20m",
        {RESPUESTAS_200: "0+1000x30", RESPUESTAS_429: "0+1x30"},
        [],
    ),
]


SIN_SALDO = serie("pagos_reversos_total", resultado="saldo_insuficiente")
REVERSOS_ATENCION = serie("pagos_reversos_requieren_atencion", "api")
CASOS += [
    Caso("ReversosSinSaldo", "25m", {SIN_SALDO: "_x20 1x20"}, [NS]),  # the first in a process
    Caso("ReversosSinSaldo", "25m", {SIN_SALDO: "1x20 2x20"}, [NS]),
    Caso("ReversosSinSaldo", "40m", {SIN_SALDO: "_x20 1x20"}, []),  # 15 minutes on, quiet again
    Caso("ReversosSinSaldo", "20m", {serie("pagos_reversos_total", resultado="exitoso"): "0+5x30"}, []),
    Caso("ReversosRequierenAtencion", "20m", {REVERSOS_ATENCION: "0x5 1x20"}, [NS]),
    Caso("ReversosRequierenAtencion", "20m", {REVERSOS_ATENCION: "0x5 1x5 0x20"}, []),
    Caso("ReversosRequierenAtencion", "20m", {REVERSOS_ATENCION: "0x30"}, []),
]


# Reconciliation: each replica exports its own last complete run; the freshest one counts.
DIF, ULTIMA = "conciliacion_diferencias", "conciliacion_ultima_exitosa_timestamp_segundos"
CASOS += [
    Caso(
        "ConciliacionDiferenciaCritica",
        "20m",
        {
            serie(DIF, instance="w1", clase="transferencias_multiples"): "1x30",
            serie(DIF, instance="w1", clase="importe_distinto"): "0x30",
            serie(ULTIMA, instance="w1"): "600x30",
            serie(ULTIMA, instance="w2"): "0x30",  # a replica that has run none
        },
        [{**NS, "clase": "transferencias_multiples"}],
    ),
    Caso(  # only non-critical classes: not this alert
        "ConciliacionDiferenciaCritica",
        "20m",
        {
            serie(DIF, instance="w1", clase="transferencia_sin_exito"): "0x30",
            serie(DIF, instance="w1", clase="reverso_externo"): "2x30",
            serie(ULTIMA, instance="w1"): "600x30",
        },
        [],
    ),
    Caso(  # w1's older run found one; w2's newer run found it settled: the newer counts
        "ConciliacionDiferenciaCritica",
        "20m",
        {
            serie(DIF, instance="w1", clase="exitoso_sin_transferencia"): "1x30",
            serie(ULTIMA, instance="w1"): "600x30",
            serie(DIF, instance="w2", clase="exitoso_sin_transferencia"): "_x10 0x20",
            serie(ULTIMA, instance="w2"): "0x10 1200x20",
        },
        [],
    ),
    Caso(  # and the other way round
        "ConciliacionDiferenciaCritica",
        "20m",
        {
            serie(DIF, instance="w1", clase="exitoso_sin_transferencia"): "0x30",
            serie(ULTIMA, instance="w1"): "600x30",
            serie(DIF, instance="w2", clase="exitoso_sin_transferencia"): "_x10 1x20",
            serie(ULTIMA, instance="w2"): "0x10 1200x20",
        },
        [{**NS, "clase": "exitoso_sin_transferencia"}],
    ),
    Caso(
        "ConciliacionDiferencias",
        "20m",
        {
            serie(DIF, instance="w1", clase="reverso_externo"): "2x30",
            serie(DIF, instance="w1", clase="transferencia_sin_exito"): "1x30",
            serie(ULTIMA, instance="w1"): "600x30",
        },
        [{**NS, "clase": "reverso_externo"}],
    ),
    Caso(
        "ConciliacionDiferencias",
        "20m",
        {
            serie(DIF, instance="w1", clase="destino_distinto"): "0x30",
            serie(DIF, instance="w1", clase="transferencia_sin_exito"): "1x30",
            serie(ULTIMA, instance="w1"): "600x30",
        },
        [],
    ),
    # Promtool's clock starts at 0: the 26 hours are real hours of series, one sample a minute.
    Caso("ConciliacionSinEjecutar", "27h", {serie(ULTIMA, instance="w1"): "0x1700"}, [NS]),  # never one
    Caso(  # one at 1 h, none since
        "ConciliacionSinEjecutar", "28h", {serie(ULTIMA, instance="w1"): "0x60 3600x1700"}, [NS]
    ),
    Caso(  # one at 1 h and one at 25 h: the last is 3 h old
        "ConciliacionSinEjecutar", "28h", {serie(ULTIMA, instance="w1"): "0x60 3600x1440 90000x300"}, []
    ),
    Caso(  # the replica that ran it at 25 h is gone; the one that replaced it has run none yet
        "ConciliacionSinEjecutar",
        "30h",
        {serie(ULTIMA, instance="w1"): "0x1500 90000x60 stale", serie(ULTIMA, instance="w2"): "_x1570 0x300"},
        [],
    ),
    Caso("ConciliacionSinEjecutar", "45m", {EN_CURSO: "0x60"}, [{"job": JOB}]),  # exported by no process
]


UP = serie("up", instance="10.0.0.7:8000", pod="pagos-worker-7d9f-x2k4q")
UP_ETIQUETAS = {"job": JOB, **NS, "role": "worker", "commands_topic": TOPIC, "instance": "10.0.0.7:8000"}
CASOS += [
    Caso("MetricasNoRecogidas", "20m", {UP: "1x5 0x20"}, [{**UP_ETIQUETAS, "pod": "pagos-worker-7d9f-x2k4q"}]),
    Caso("MetricasNoRecogidas", "20m", {UP: "1x30"}, []),
    Caso("MetricasNoRecogidas", "20m", {UP: "1x5 0 0 1x20"}, []),  # a restart, scraped again
    Caso("MetricasNoRecogidas", "20m", {'up{job="otro", instance="x"}': "1x30"}, [{"job": JOB}]),  # no target
]


def test_promtool_test_rules(tmp_path):
    promtool_test(CASOS, [], tmp_path)
