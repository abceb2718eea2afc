"""deploy/prometheus's manifests for the Prometheus Operator, checked offline: the PodMonitor and the
PrometheusRule against tests/data/prometheus-operator.schema.json (the fields of the operator's API
they use; unknown ones fail), the PrometheusRule's groups the very ones of pagos-worker.rules.yaml,
and both kustomizations rendered by the pinned kustomize: every runbook_url absolute, on the base the
kustomization sets, its anchor a section of docs/operations/runbooks.md; the PodMonitor's labels the
ones the rules read. `python tests/unit/test_monitorizacion.py` writes prometheusrule.yaml again."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from pagos_worker.config import CONTRACT_COMMANDS_TOPIC
from tests.herramientas_go import renderizar

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "pagos-worker.rules.yaml"
PROMETHEUSRULE = PROMETHEUS / "prometheusrule.yaml"
PODMONITOR = PROMETHEUS / "scrape" / "podmonitor.yaml"
KUBERNETES = ROOT / "deploy" / "kubernetes"
RUNBOOKS = ROOT / "docs" / "operations" / "runbooks.md"
SCHEMA = Path(__file__).parents[1] / "data" / "prometheus-operator.schema.json"
ROLES = {"worker", "relay", "api"}  # the components whose pods serve /metrics: the rules' role values

Doc = dict[str, Any]

_CABECERA = """\
# GENERATED from pagos-worker.rules.yaml: the same groups, for the Prometheus Operator. Do not edit:
# change the rules file, then run `python tests/unit/test_monitorizacion.py` (a test fails while the
# two differ). Why each alert is as it is: the rules file's comments. The runbook_url base below is
# replaced by the setting in kustomization.yaml.
"""


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the longer expressions) as literal blocks, as a person would write them."""


def _str(dumper: yaml.SafeDumper, valor: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", valor, style="|" if "\n" in valor else None)


_Dumper.add_representer(str, _str)


def _grupos() -> list[Doc]:
    return yaml.safe_load(RULES.read_text())["groups"]


def prometheusrule_esperada() -> str:
    regla = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "pagos-worker",
            "labels": {"app.kubernetes.io/name": "pagos-worker", "app.kubernetes.io/part-of": "pagos"},
        },
        "spec": {"groups": _grupos()},
    }
    return _CABECERA + yaml.dump(regla, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def _load(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@pytest.fixture(scope="module")
def esquema() -> Doc:
    return json.loads(SCHEMA.read_text())


def validar(doc: Doc, esquema: Doc) -> None:
    jsonschema.validate(doc, esquema, cls=jsonschema.Draft202012Validator)


# --- as written ---------------------------------------------------------------------------------------


def test_la_prometheusrule_tiene_los_grupos_del_archivo_de_reglas():
    assert PROMETHEUSRULE.read_text() == prometheusrule_esperada(), (
        "prometheusrule.yaml differs from pagos-worker.rules.yaml: python tests/unit/test_monitorizacion.py"
    )
    (regla,) = _load(PROMETHEUSRULE)
    assert regla["spec"]["groups"] == _grupos()


@pytest.mark.parametrize("path", [PROMETHEUSRULE, PODMONITOR], ids=lambda p: p.name)
def test_cada_manifiesto_es_valido(path, esquema):
    (doc,) = _load(path)
    validar(doc, esquema)


def _roto(doc: Doc, camino: tuple[str | int, ...], valor: Any) -> Doc:
    roto = copy.deepcopy(doc)
    destino: Any = roto
    for paso in camino[:-1]:
        destino = destino[paso]
    if valor is None:
        del destino[camino[-1]]
    else:
        destino[camino[-1]] = valor
    return roto


def test_el_esquema_rechaza_lo_que_el_operador_no_documenta(esquema):
    (monitor,) = _load(PODMONITOR)
    (regla,) = _load(PROMETHEUSRULE)
    ep = ("spec", "podMetricsEndpoints", 0)
    for doc, camino, valor in [
        (monitor, (*ep, "bearerToken"), "x"),  # removed from the API: authorization instead
        (monitor, (*ep, "relabelings", 0, "action"), "rename"),  # not an action
        (monitor, (*ep, "relabelings", 0, "source_labels"), ["x"]),  # prometheus.yml's spelling, not the operator's
        (monitor, (*ep, "authorization", "credentials"), {"name": "pagos-worker-scrape"}),  # no key
        (monitor, (*ep, "interval"), "30"),  # a duration has a unit
        (monitor, ("spec", "podTargetLabels"), "app.kubernetes.io/component"),  # a list
        (monitor, ("spec", "selector"), None),
        (regla, ("spec", "groups", 0, "rules", 0, "expr"), None),
        (regla, ("spec", "groups", 0, "rules", 0, "for"), "5 minutes"),
        (regla, ("spec", "groups", 0, "rules", 0, "labels", "severity"), 1),
        (regla, ("spec", "groups", 0, "name"), None),
    ]:
        with pytest.raises(jsonschema.ValidationError):
            validar(_roto(doc, camino, valor), esquema)


def _topic_de_comandos() -> str:
    """The commands topic the deployment sets (the overlay over the base), else the contract's."""
    topics = CONTRACT_COMMANDS_TOPIC
    for env in (KUBERNETES / "base" / "config.env", KUBERNETES / "overlays" / "production" / "config.env"):
        for linea in env.read_text().splitlines():
            if linea.startswith("PAGOS_COMMANDS_TOPIC="):
                topics = linea.partition("=")[2]
    return topics


def _relabelings(monitor: Doc) -> dict[str, Doc]:
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    return {r["targetLabel"]: r for r in endpoint["relabelings"]}


def test_el_podmonitor_pone_las_etiquetas_que_leen_las_reglas():
    (monitor,) = _load(PODMONITOR)
    spec = monitor["spec"]
    assert spec["selector"]["matchLabels"][spec["jobLabel"]] == "pagos-worker"  # job="pagos-worker"
    (endpoint,) = spec["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    assert endpoint["authorization"] == {
        "type": "Bearer", "credentials": {"name": "pagos-worker-scrape", "key": "token"},
    }  # fmt: skip
    etiquetas = _relabelings(monitor)
    assert etiquetas["role"]["sourceLabels"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_component"]
    assert etiquetas["role"].get("action", "replace") == "replace"
    topic = etiquetas["commands_topic"]
    assert "sourceLabels" not in topic
    assert topic["replacement"] == _topic_de_comandos()
    reglas = RULES.read_text()
    assert all(f"{e}=" in reglas or f"by ({e}" in reglas or f"on ({e}" in reglas for e in etiquetas)


def test_el_topic_del_podmonitor_es_el_que_escala_keda():
    (escalado,) = _load(KUBERNETES / "base" / "keda-scaledobject.yaml")
    (trigger,) = escalado["spec"]["triggers"]
    assert _relabelings(_load(PODMONITOR)[0])["commands_topic"]["replacement"] == trigger["metadata"]["topic"]


def test_cada_pod_que_sirve_metricas_tiene_un_rol_que_leen_las_reglas():
    """role is the pods' app.kubernetes.io/component: every pod with the port http has one of the
    values the rules name, and the rules name no other."""
    plantillas = [
        d["spec"]["template"]
        for p in sorted((KUBERNETES / "base").glob("*.yaml"))
        for d in _load(p)
        if d.get("kind") in {"Deployment", "StatefulSet", "DaemonSet", "Job"}
    ]
    componentes = {
        t["metadata"]["labels"].get("app.kubernetes.io/component")
        for t in plantillas
        if any(p.get("name") == "http" for c in t["spec"]["containers"] for p in c.get("ports", []))
    }
    assert componentes, "no pod serves the port http"
    assert componentes <= ROLES, componentes - ROLES
    nombrados = set(re.findall(r'role(?:!?=~?)"([^"]+)"', RULES.read_text()))
    assert {r for n in nombrados for r in n.split("|")} <= ROLES
    assert re.search(r'role!~"worker\|relay\|api"', RULES.read_text()), "MetricasSinEtiquetas names every role"


# --- rendered by kustomize ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kustomize(herramienta_go) -> Any:
    """The pinned kustomize (tests/herramientas_go.py), as for deploy/kubernetes: not kubectl's."""
    binario = herramienta_go("kustomize")
    return lambda directorio: renderizar(binario, directorio)


def _slug(heading: str) -> str:
    """The anchor GitHub (and GitLab) give a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anclas() -> set[str]:
    return {_slug(m) for m in re.findall(r"^#{2,3} (.+)$", RUNBOOKS.read_text(), flags=re.MULTILINE)}


def _ajuste(kustomization: Path) -> str:
    (generador,) = yaml.safe_load(kustomization.read_text())["configMapGenerator"]
    (literal,) = generador["literals"]
    nombre, _, valor = literal.partition("=")
    assert nombre == "runbooks"
    return valor


def _urls(docs: list[Doc]) -> dict[str, str]:
    return {
        r["alert"]: r["annotations"]["runbook_url"]
        for d in docs
        if d["kind"] == "PrometheusRule"
        for g in d["spec"]["groups"]
        for r in g["rules"]
    }


def test_las_reglas_renderizadas_enlazan_su_runbook_con_url_absoluta(kustomize, esquema):
    docs = kustomize(PROMETHEUS)
    assert [d["kind"] for d in docs] == ["PrometheusRule"], "the setting is local: only the rules are applied"
    (regla,) = docs
    validar(regla, esquema)
    assert regla["metadata"]["namespace"] == "monitoring"
    base = _ajuste(PROMETHEUS / "kustomization.yaml")
    partes = urlsplit(base)
    assert (partes.scheme, bool(partes.netloc), partes.fragment) == ("https", True, "")
    assert partes.path.endswith("/docs/operations/runbooks.md")
    urls = _urls(docs)
    assert set(urls) == {r["alert"] for g in _grupos() for r in g["rules"]}
    for alerta, url in urls.items():
        assert url == f"{base}#{_slug(alerta)}", alerta
        assert _slug(alerta) in _anclas(), f"{alerta}: no section in docs/operations/runbooks.md"


def test_la_base_de_los_runbooks_es_un_ajuste_de_la_kustomization(kustomize, tmp_path):
    copia = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS, copia)
    kustomization = copia / "kustomization.yaml"
    otra = "https://code.example.org/sre/pagos/blob/v2/docs/operations/runbooks.md"
    kustomization.write_text(kustomization.read_text().replace(_ajuste(kustomization), otra))
    for alerta, url in _urls(kustomize(copia)).items():
        assert url == f"{otra}#{_slug(alerta)}"


def test_el_podmonitor_renderizado_va_al_namespace_del_entorno(kustomize, esquema):
    (monitor,) = kustomize(PROMETHEUS / "scrape")
    validar(monitor, esquema)
    (namespace,) = _load(KUBERNETES / "overlays" / "production" / "namespace.yaml")
    assert monitor["metadata"]["namespace"] == namespace["metadata"]["name"], "beside its Secret"


def test_el_overlay_documentado_de_otro_entorno_cambia_namespace_y_topic(kustomize, esquema, tmp_path):
    """The guide's overlay for a second environment, rendered as written beside a copy of scrape/."""
    guia = (ROOT / "docs" / "deploy" / "kubernetes.md").read_text()
    bloques = re.findall(r"^```yaml\n(.*?)^```", guia, flags=re.MULTILINE | re.DOTALL)
    (overlay,) = [b for b in bloques if "../scrape" in b]
    copia = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS, copia)
    (copia / "scrape-staging").mkdir()
    (copia / "scrape-staging" / "kustomization.yaml").write_text(overlay)
    (monitor,) = kustomize(copia / "scrape-staging")
    validar(monitor, esquema)
    esperado = yaml.safe_load(overlay)
    assert monitor["metadata"]["namespace"] == esperado["namespace"] != "pagos"
    topic = _relabelings(monitor)["commands_topic"]["replacement"]
    assert topic != CONTRACT_COMMANDS_TOPIC
    assert topic in esperado["patches"][0]["patch"]
    assert _relabelings(monitor)["role"] == _relabelings(_load(PODMONITOR)[0])["role"]


if __name__ == "__main__":
    PROMETHEUSRULE.write_text(prometheusrule_esperada())
