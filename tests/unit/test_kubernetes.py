"""deploy/kubernetes, checked offline. Every YAML file as written is validated (the core kinds against
the Kubernetes schemas of `kubernetes-validate`, strict: unknown fields fail; the KEDA objects against
tests/data/keda-pulsar.schema.json, the fields KEDA documents; the overlays' network settings against
tests/data/network-settings.schema.json). Every kustomization (the app's and the migrations', base and
overlays) is also rendered, by the kustomize pinned in pagos_dev/herramientas.py (built with `go install`
on first use: skipped, saying so, only where Go is absent), and every rendered object validated and
checked: the app's apply holds no Job, and the migrations' nothing else; every pod denies traffic both
ways but for exactly its listed destinations; budgets, spreads, rollouts and probes as the Deployments'
comments say."""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr

from pagos_worker.bootstrap import CHEQUEO_LISTO_S
from pagos_worker.config import CONTRACT_COMMANDS_TOPIC, CONTRACT_SUBSCRIPTION, Settings
from tests.herramientas_go import renderizar

KUBERNETES = "1.30"  # the oldest version the manifests are meant for
STRIPE_LIVE_BUDGET = 100  # requests/s per account, shared by every replica
PRESTOP_S = 5  # the API's preStop pause
SECRET = "pagos-worker-secrets"  # noqa: S105 - the name of the operator's Secret
MIGRATION_KEY = "migration-database-url"  # the Job's database role, which owns the schema
DOCS = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "kubernetes.md"
DATA = Path(__file__).parents[1] / "data"

APPS = ["base", "overlays/production"]  # the app's kustomizations
MIGRATIONS = ["migrations", "overlays/production/migrations"]  # the migrations', applied apart
NETWORK = {"overlays/production": "overlays/production/network/network.yaml"}
NETWORK |= {"overlays/production/migrations": NETWORK["overlays/production"]}

# What each pod kind runs, and whom it may talk to (the issue's list: the API needs no broker, the
# migration Job only DNS and PostgreSQL); the collector too for worker and relay with tracing on.
ROLES = {"worker": "worker,relay", "relay": "relay", "api": "api"}
EGRESS = {
    "worker": {"dns", "postgres", "pulsar", "stripe"},
    "relay": {"dns", "postgres", "pulsar", "stripe"},
    "api": {"dns", "postgres"},
    "migration": {"dns", "postgres"},
}
INGRESS = {"worker": {"monitoring"}, "relay": {"monitoring"}, "api": {"monitoring", "api"}, "migration": set()}
DNS_RULE = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
}

Doc = dict[str, Any]


def _root() -> Path:
    return Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def _load(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _raw_files() -> list[Path]:
    """Every manifest file: the resources of the kustomizations, the examples and the settings; not
    the kustomizations themselves nor the patches."""
    return sorted(p for p in _root().rglob("*.yaml") if p.name != "kustomization.yaml" and "patches" not in p.parts)


def _env_file(path: Path) -> dict[str, str]:
    lines = (ln.strip() for ln in path.read_text().splitlines())
    return dict(ln.split("=", 1) for ln in lines if ln and not ln.startswith("#"))


@pytest.fixture(scope="module")
def keda_schema() -> Doc:
    return json.loads((DATA / "keda-pulsar.schema.json").read_text())


def validate(doc: Doc, keda_schema: Doc) -> None:
    if doc["apiVersion"].startswith("keda.sh/"):
        jsonschema.validate(doc, keda_schema, cls=jsonschema.Draft202012Validator)
        if behavior := doc["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior"):
            # KEDA hands it to the HPA it creates: it must be a valid autoscaling/v2 behavior.
            hpa = {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "keda-hpa"},
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 1},
            }
            hpa["spec"]["behavior"] = behavior
            kubernetes_validate.validate(hpa, KUBERNETES, strict=True)
    elif doc["kind"] == "NetworkSettings":
        validate_network_settings(doc)
    else:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def validate_network_settings(doc: Doc) -> None:
    schema = json.loads((DATA / "network-settings.schema.json").read_text())
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    for destino in doc["spec"]["egress"].values():
        for bloque in (peer["ipBlock"] for peer in destino["to"] if "ipBlock" in peer):
            for cidr in [bloque["cidr"], *bloque.get("except", [])]:
                if cidr != "REPLACE_ME":  # the placeholder the API server refuses until it is set
                    ipaddress.ip_network(cidr)


# --- every file as written (no kubectl needed) ------------------------------------------------------


@pytest.mark.parametrize("path", _raw_files(), ids=lambda p: str(p.relative_to(_root())))
def test_cada_manifiesto_es_valido(path, keda_schema):
    docs = _load(path)
    assert docs, path
    for doc in docs:
        validate(doc, keda_schema)


def test_el_esquema_de_keda_rechaza_lo_que_keda_no_documenta(keda_schema):
    (scaled,) = _load(_root() / "base" / "keda-scaledobject.yaml")
    for camino, valor in [
        (("spec", "triggers", 0, "metadata", "backlogThreshold"), "600"),  # not a pulsar field
        (("spec", "triggers", 0, "metadata", "msgBacklogThreshold"), 600),  # metadata values are strings
        (("spec", "maxReplicas"), 4),  # the HPA's name, not KEDA's
        (("spec", "triggers", 0, "type"), "kafka"),
    ]:
        roto = copy.deepcopy(scaled)
        destino: Any = roto
        for paso in camino[:-1]:
            destino = destino[paso]
        destino[camino[-1]] = valor
        with pytest.raises(jsonschema.ValidationError):
            validate(roto, keda_schema)


def test_los_ajustes_de_red_rechazan_lo_que_las_sustituciones_no_leen():
    (ajustes,) = _load(_root() / NETWORK["overlays/production"])
    for camino, valor in [
        (("spec", "egress", "postgres", "puerto"), 5432),  # misspelt: the replacement would not read it
        (("spec", "egress", "pulsar", "port"), "6650"),  # a string would be a named port
        (("spec", "egress", "postgres", "to", 0, "ipBlock", "cidr"), "10.0.0.1"),  # no prefix length
        (("spec", "egress", "postgres", "to", 0), {}),  # an empty peer admits everything
        (("spec", "ingress", "monitoringNamespace"), "Monitoring"),
    ]:
        roto = copy.deepcopy(ajustes)
        destino: Any = roto
        for paso in camino[:-1]:
            destino = destino[paso]
        destino[camino[-1]] = valor
        with pytest.raises(jsonschema.ValidationError):
            validate_network_settings(roto)


def test_las_kustomizations_nombran_archivos_que_existen():
    for kustomization in _root().rglob("kustomization.yaml"):
        k = yaml.safe_load(kustomization.read_text())
        nombrados = list(k.get("resources", [])) + list(k.get("components", []))
        nombrados += [p["path"] for p in k.get("patches", [])]
        nombrados += [e for g in k.get("configMapGenerator", []) for e in g.get("envs", [])]
        for nombre in nombrados:
            assert (kustomization.parent / nombre).exists(), f"{kustomization}: {nombre}"
            assert "examples" not in Path(nombre).parts, "the examples hold placeholders, never deployed"


def _files(directorio: str) -> list[Doc]:
    """The resources of a kustomization directory as written (no kustomize)."""
    archivos = sorted((_root() / directorio).glob("*.yaml"))
    return [d for p in archivos if p.name != "kustomization.yaml" for d in _load(p)]


def _config_base() -> dict[str, str]:
    return _env_file(_root() / "base" / "config.env")


def campos_secretos() -> set[str]:
    """The settings that hold a secret: every SecretStr one, and the database URL (its password)."""
    secretos = {n for n, f in Settings.model_fields.items() if SecretStr in (f.annotation, *get_args(f.annotation))}
    return secretos | {"database_url"}


def test_los_secretos_del_servicio():
    assert campos_secretos() == {"database_url", "stripe_secret_key", "http_tokens", "pulsar_token"}


def test_la_configuracion_son_settings_del_servicio():
    """Settings ignores unknown variables: a misspelt name here would be silently lost."""
    for env in (_config_base(), _env_file(_root() / "overlays" / "production" / "config.env")):
        campos = {k.removeprefix("PAGOS_").lower(): v for k, v in env.items()}
        assert set(campos) <= set(Settings.model_fields), set(campos) - set(Settings.model_fields)
        Settings.model_validate(campos)  # and every value parses
        assert not campos_secretos() & set(campos), "secrets come from the Secret"


# --- invariants, checked on the files as written and on every rendered kustomization -----------------


def _pod_templates(docs: list[Doc]) -> Iterator[tuple[Doc, Doc]]:
    for d in docs:
        if d["kind"] in {"Deployment", "Job"}:
            yield d, d["spec"]["template"]


def _component(template: Doc) -> str:
    return str(template["metadata"]["labels"]["app.kubernetes.io/component"])


def _config(docs: list[Doc]) -> dict[str, str]:
    """The settings of the pods: the rendered ConfigMap, or base/config.env for the files as written."""
    config = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("pagos-worker-config")]
    return config[0]["data"] if config else _config_base()


def _shutdown(docs: list[Doc]) -> float:
    return float(_config(docs)["PAGOS_SHUTDOWN_TIMEOUT_SECONDS"])


def _por_tipo(docs: list[Doc]) -> dict[str, dict[str, Doc]]:
    por_tipo: dict[str, dict[str, Doc]] = {}
    for d in docs:
        por_tipo.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    return por_tipo


def _selects(selector: Doc, template: Doc) -> bool:
    """A label selector (matchLabels and matchExpressions with In) against a pod template's labels."""
    labels = template["metadata"]["labels"]
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expresion in selector.get("matchExpressions", []):
        assert expresion["operator"] == "In", "only In is read here"
        if labels.get(expresion["key"]) not in expresion["values"]:
            return False
    return True


def check_app(docs: list[Doc], red: Doc | None = None) -> None:
    """The app's kustomization: three Deployments, no Job (it would break an apply with a new image,
    a rollback included), and everything the Deployments' comments promise."""
    por_tipo = _por_tipo(docs)
    assert "Secret" not in por_tipo, "secrets are created by the operator, never shipped"
    assert "Job" not in por_tipo, "the migration Job is applied apart: a Job's pod template is immutable"
    deployments = por_tipo["Deployment"]
    assert set(deployments) == {"pagos-worker", "pagos-worker-relay", "pagos-worker-api"}
    for nombre, d in deployments.items():
        template = d["spec"]["template"]
        roles = ROLES[_component(template)]
        assert template["spec"]["containers"][0]["args"] == ["run", "--roles", roles, "--no-migrate"], nombre
    assert "replicas" not in deployments["pagos-worker"]["spec"], "KEDA owns the worker's replica count"
    assert deployments["pagos-worker-relay"]["spec"]["replicas"] >= 2, "a drain or a rollout leaves one relay"

    check_pods(docs)
    for owner, template in _pod_templates(docs):
        check_deployment(owner, template, por_tipo, docs)

    (servicio,) = por_tipo["Service"].values()
    assert _selects({"matchLabels": servicio["spec"]["selector"]}, deployments["pagos-worker-api"]["spec"]["template"])
    assert [p["targetPort"] for p in servicio["spec"]["ports"]] == ["http"]
    check_network(docs, red)
    check_keda(por_tipo, docs)
    check_secretos(docs)


def check_deployment(owner: Doc, template: Doc, por_tipo: dict[str, dict[str, Doc]], docs: list[Doc]) -> None:
    spec, nombre = template["spec"], owner["metadata"]["name"]
    assert spec["terminationGracePeriodSeconds"] > _shutdown(docs) + PRESTOP_S, nombre
    (c,) = spec["containers"]
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}], nombre
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, nombre
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, nombre
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        # /readyz's checks give up at CHEQUEO_LISTO_S and answer 503 with the reason: the kubelet
        # must wait longer than that, or a slow dependency reads as a probe timeout.
        assert c[probe]["timeoutSeconds"] > CHEQUEO_LISTO_S, f"{nombre}: {probe}"
    assert owner["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items(), nombre
    anotaciones = template["metadata"].get("annotations", {})
    assert not any(a.startswith("prometheus.io/") for a in anotaciones), f"{nombre}: /metrics wants a token"
    # Rollouts add a pod before taking one away; the Stripe budget is the account's, in PostgreSQL
    # (ADR 0009), so a surge cannot overspend.
    assert owner["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    budgets = [p for p in por_tipo["PodDisruptionBudget"].values() if _selects(p["spec"]["selector"], template)]
    assert len(budgets) == 1, f"{nombre}: one PodDisruptionBudget"
    (budget,) = budgets
    assert budget["spec"]["maxUnavailable"] == 1, nombre
    assert "minAvailable" not in budget["spec"], nombre
    assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow", nombre
    # Spread over zones, then nodes, each among the pods of its own kind.
    dominios = [r["topologyKey"] for r in spec["topologySpreadConstraints"]]
    assert dominios == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"], nombre
    for regla in spec["topologySpreadConstraints"]:
        assert regla["maxSkew"] == 1, nombre
        assert regla["labelSelector"]["matchLabels"] == owner["spec"]["selector"]["matchLabels"], nombre


def check_pods(docs: list[Doc]) -> None:
    for owner, template in _pod_templates(docs):
        spec, nombre = template["spec"], owner["metadata"]["name"]
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] == 10001, nombre  # noqa: PT018
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}, nombre
        assert spec["automountServiceAccountToken"] is False, nombre
        tmp = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, nombre
            assert sc["readOnlyRootFilesystem"] is True, nombre
            assert sc["capabilities"] == {"drop": ["ALL"]}, nombre
            assert any(m["mountPath"] == "/tmp" and m["name"] in tmp for m in c["volumeMounts"]), nombre  # noqa: S108
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), nombre
            assert "memory" in c["resources"]["limits"], nombre
            for ref in (e["valueFrom"]["secretKeyRef"] for e in c.get("env", []) if "valueFrom" in e):
                assert ref["name"] == SECRET, nombre
                assert ref["key"] in _example_secret_keys(), f"{ref['key']} missing from the example Secret"


def check_migrations(docs: list[Doc], red: Doc | None = None) -> None:
    """The migrations' kustomization: the Job, its own ServiceAccount and its policies, nothing of
    the app's (applying it must never touch the running release)."""
    por_tipo = _por_tipo(docs)
    assert set(por_tipo) == {"Job", "ServiceAccount", "NetworkPolicy"}, set(por_tipo)
    (job,) = por_tipo["Job"].values()
    assert job["metadata"]["name"] == "pagos-worker-migrate"
    spec = job["spec"]
    assert spec["backoffLimit"] >= 3, "an attempt that met a lock (its lock timeout) is tried again"
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    (c,) = spec["template"]["spec"]["containers"]
    assert c["args"] == ["migrate"]
    (cuenta,) = por_tipo["ServiceAccount"].values()
    assert spec["template"]["spec"]["serviceAccountName"] == cuenta["metadata"]["name"], "its own, applied with it"
    assert cuenta["automountServiceAccountToken"] is False
    assert _desde_el_secret(c) == {"PAGOS_DATABASE_URL": {"name": SECRET, "key": MIGRATION_KEY}}
    check_pods(docs)
    check_network(docs, red)


def _example_secret_keys() -> set[str]:
    (secret,) = _load(_root() / "examples" / "secret.example.yaml")
    return set(secret["stringData"])


def _destino(politica: Doc) -> str:
    """What a policy opens, from its name: pagos-worker[-migrate]-egress-<destination> or -ingress-<source>."""
    nombre = politica["metadata"]["name"]
    coincide = re.fullmatch(r"pagos-worker(?:-migrate)?-(?:egress|ingress)-(\w+)", nombre)
    assert coincide is not None, f"{nombre}: a policy that opens something says what in its name"
    return coincide.group(1)


def _regla(destino: Doc) -> Doc:
    """The egress rule a destination of the network settings makes: its peers, one TCP port."""
    return {"to": destino["to"], "ports": [{"port": destino["port"], "protocol": "TCP"}]}


def check_network(docs: list[Doc], red: Doc | None) -> None:
    """Every pod denies traffic both ways but for exactly its kind's listed destinations and sources,
    each opened by a policy of its own. With the overlay's settings (`red`), each destination is
    exactly the one set there; without (base), each is one placeholder address block and one TCP port."""
    politicas = [d for d in docs if d["kind"] == "NetworkPolicy"]
    for owner, template in _pod_templates(docs):
        nombre, tipo = owner["metadata"]["name"], _component(template)
        suyas = [p for p in politicas if _selects(p["spec"]["podSelector"], template)]
        tipos = {t for p in suyas for t in p["spec"]["policyTypes"]}
        assert tipos == {"Ingress", "Egress"}, f"{nombre}: denied both ways unless a policy opens"
        salidas = [p for p in suyas if "egress" in p["spec"]]
        entradas = [p for p in suyas if "ingress" in p["spec"]]
        assert {_destino(p) for p in salidas} == EGRESS[tipo] | _con_trazas(docs, tipo), nombre
        assert {_destino(p) for p in entradas} == INGRESS[tipo], nombre
        assert len(salidas) == len({_destino(p) for p in salidas}), f"{nombre}: one policy per destination"
        for politica in salidas:
            (regla,) = politica["spec"]["egress"]
            destino = _destino(politica)
            if destino == "dns":
                assert regla == DNS_RULE, nombre
            elif red is not None:
                assert regla == _regla(red["spec"]["egress"][destino]), f"{nombre}: {destino}"
            else:
                ((puerto,),) = [regla["ports"]]
                assert regla["to"] == [{"ipBlock": {"cidr": "REPLACE_ME"}}], f"{nombre}: {destino}"
                assert puerto["protocol"] == "TCP", f"{nombre}: {destino}"
        for politica in entradas:
            (regla,) = politica["spec"]["ingress"]
            assert regla["ports"] == [{"port": "http", "protocol": "TCP"}], f"{nombre}: only port http"
            ((peer,),) = [regla["from"]]
            assert set(peer) == {"namespaceSelector"}, f"{nombre}: from a namespace named in the settings"
            if red is not None:
                campo = {"monitoring": "monitoringNamespace", "api": "ingressNamespace"}[_destino(politica)]
                esperado = {"kubernetes.io/metadata.name": red["spec"]["ingress"][campo]}
                assert peer["namespaceSelector"] == {"matchLabels": esperado}, nombre


def _con_trazas(docs: list[Doc], tipo: str) -> set[str]:
    """With tracing on (OTEL_EXPORTER_OTLP_ENDPOINT in a pod of this kind), its collector too."""
    for _, template in _pod_templates(docs):
        if _component(template) == tipo:
            nombres = {e["name"] for c in template["spec"]["containers"] for e in c.get("env", [])}
            return {"otlp"} if "OTEL_EXPORTER_OTLP_ENDPOINT" in nombres else set()
    return set()


def check_keda(por_tipo: dict[str, dict[str, Doc]], docs: list[Doc]) -> None:
    (scaled,) = por_tipo["ScaledObject"].values()
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == "pagos-worker"
    (trigger,) = spec["triggers"]
    meta = trigger["metadata"]
    assert (meta["topic"], meta["subscription"]) == (CONTRACT_COMMANDS_TOPIC, CONTRACT_SUBSCRIPTION)
    assert int(meta["activationMsgBacklogThreshold"]) < int(meta["msgBacklogThreshold"])
    # Zero workers is safe (the relay Deployment publishes and recovers), and then one command
    # waiting must wake a worker: above zero, the activation threshold would let commands wait.
    assert "pagos-worker-relay" in por_tipo["Deployment"]
    if spec["minReplicaCount"] == 0:
        assert meta["activationMsgBacklogThreshold"] == "0", "with minReplicaCount 0 a command must wake a worker"
    assert spec["fallback"]["replicas"] <= spec["maxReplicaCount"]
    config = _config(docs)
    rate = float(config["PAGOS_STRIPE_RATE_LIMIT"])  # the account's, shared by every replica
    assert rate <= STRIPE_LIVE_BUDGET, "beyond Stripe's budget"
    # Enough calls in flight at most replicas to fill the budget when Stripe takes 2 s a call.
    assert spec["maxReplicaCount"] * int(config["PAGOS_PASARELA_CONCURRENCY"]) >= rate * 2
    assert int(config["PAGOS_WORKER_CONCURRENCY"]) >= int(config["PAGOS_PASARELA_CONCURRENCY"])
    assert meta["authModes"] == "bearer"
    auth = por_tipo["TriggerAuthentication"][trigger["authenticationRef"]["name"]]
    (ref,) = auth["spec"]["secretTargetRef"]
    assert (ref["parameter"], ref["name"]) == ("bearerToken", SECRET)
    assert ref["key"] in _example_secret_keys()


def _desde_el_secret(container: Doc) -> dict[str, Doc]:
    """The container's environment variables taken from a Secret: name -> its secretKeyRef."""
    refs = (e.get("valueFrom", {}).get("secretKeyRef") for e in container.get("env", []))
    return {e["name"]: ref for e, ref in zip(container.get("env", []), refs, strict=True) if ref is not None}


def check_secretos(docs: list[Doc]) -> None:
    """Each key of the Secret is the setting of its name (http-tokens: PAGOS_HTTP_TOKENS). A pod bound
    beyond loopback gets its HTTP tokens (else it refuses to start); the pods that talk to Pulsar get
    the token KEDA uses, optional so that a broker without authentication works; the Stripe key
    only where payments are made or recovered; the migrations' database role never in the app."""
    por_tipo = _por_tipo(docs)
    publico = Settings.model_validate({"http_host": _config(docs)["PAGOS_HTTP_HOST"]}).http_publico()
    (auth,) = por_tipo["TriggerAuthentication"].values()
    (ref_keda,) = auth["spec"]["secretTargetRef"]
    for owner, template in _pod_templates(docs):
        nombre, tipo = owner["metadata"]["name"], _component(template)
        (c,) = template["spec"]["containers"]
        refs = _desde_el_secret(c)
        for variable, ref in refs.items():
            campo = variable.removeprefix("PAGOS_").lower()
            assert campo in campos_secretos(), f"{nombre}: {variable} is no secret setting"
            assert ref["key"] == campo.replace("_", "-"), f"{nombre}: {variable} from key {ref['key']}"
        if publico:
            tokens = refs.get("PAGOS_HTTP_TOKENS")
            assert tokens is not None, f"{nombre} binds beyond loopback: PAGOS_HTTP_TOKENS from the Secret"
            assert not tokens.get("optional", False), f"{nombre}: without tokens it does not start"
        pulsar = refs.get("PAGOS_PULSAR_TOKEN")
        if "pulsar" in EGRESS[tipo]:
            assert pulsar is not None, f"{nombre} talks to Pulsar: PAGOS_PULSAR_TOKEN from the Secret"
            assert pulsar["key"] == ref_keda["key"], f"{nombre}: the token KEDA uses"
            assert pulsar.get("optional") is True, f"{nombre}: a broker without authentication must work"
        else:
            assert pulsar is None, f"{nombre} never talks to Pulsar"
        paga = "PAGOS_STRIPE_SECRET_KEY" in refs
        assert paga is ("stripe" in EGRESS[tipo]), f"{nombre}: the Stripe key where Stripe is reachable"


def test_invariantes_de_los_archivos_tal_como_estan():
    check_app(_files("base"))
    check_migrations(_files("migrations"))


def test_el_ejemplo_de_secret_tiene_exactamente_las_claves_leidas():
    usadas = set()
    for docs in (_files("base"), _files("migrations")):
        for _, template in _pod_templates(docs):
            usadas |= {ref["key"] for c in template["spec"]["containers"] for ref in _desde_el_secret(c).values()}
    (auth,) = (d for d in _files("base") if d["kind"] == "TriggerAuthentication")
    usadas |= {ref["key"] for ref in auth["spec"]["secretTargetRef"]}
    assert usadas == _example_secret_keys()


def _claves_creadas(texto: str) -> set[str]:
    """The keys of `kubectl create secret generic pagos-worker-secrets`, its lines continued by \\."""
    (orden,) = re.findall(rf"create secret generic {SECRET}((?:[^\n]*\\\n)*[^\n]*)", texto)
    return set(re.findall(r"--from-literal=([\w-]+)=", orden))


def test_la_orden_documentada_crea_las_claves_del_ejemplo():
    for texto in (DOCS.read_text(), (_root() / "examples" / "secret.example.yaml").read_text()):
        assert _claves_creadas(texto) == _example_secret_keys()


def test_sin_el_rodeo_del_rol_api_en_los_workers():
    """Every process serves /healthz, /readyz and /metrics: no worker pod needs the api role for them."""
    assert "worker,relay,api" not in DOCS.read_text()


def test_el_ejemplo_de_secret_solo_tiene_marcadores():
    (secret,) = _load(_root() / "examples" / "secret.example.yaml")
    assert all("REPLACE_ME" in v for v in secret["stringData"].values())
    destinos = json.loads((_root() / "examples" / "destinations.example.json").read_text())
    assert all(v == "acct_REPLACE_ME" for v in destinos.values())


def test_las_politicas_del_base_esperan_los_ajustes_del_overlay():
    """Every destination and namespace the settings fill in is REPLACE_ME in the base as written: an
    overlay without its settings fails at apply (the API server refuses it), never opens egress."""
    for directorio in ("base", "migrations"):
        for politica in (d for d in _files(directorio) if d["kind"] == "NetworkPolicy"):
            texto = json.dumps(politica)
            if _destino_o_nada(politica) not in {None, "dns"}:
                assert "REPLACE_ME" in texto, politica["metadata"]["name"]


def _destino_o_nada(politica: Doc) -> str | None:
    return None if "default-deny" in politica["metadata"]["name"] else _destino(politica)


# --- rendered by kustomize ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kustomize(herramienta_go) -> Any:
    binario = herramienta_go("kustomize")
    return lambda overlay: renderizar(binario, _root() / overlay)


def _red(overlay: str, raiz: Path | None = None) -> Doc | None:
    """The network settings an overlay renders with (None for the base, which has none)."""
    if overlay not in NETWORK:
        return None
    (ajustes,) = _load((raiz or _root()) / NETWORK[overlay])
    return ajustes


def test_cada_kustomization_se_renderiza():
    """Every directory with a kustomization that is not a component is rendered by a test below."""
    todas = {
        str(k.parent.relative_to(_root()))
        for k in _root().rglob("kustomization.yaml")
        if yaml.safe_load(k.read_text())["kind"] == "Kustomization"
    }
    assert todas == set(APPS + MIGRATIONS)


@pytest.mark.parametrize("overlay", APPS)
def test_la_app_se_renderiza_y_cada_objeto_es_valido(kustomize, overlay, keda_schema):
    docs = kustomize(overlay)
    for doc in docs:
        validate(doc, keda_schema)
    check_app(docs, _red(overlay))
    (config,) = (d for d in docs if d["kind"] == "ConfigMap")
    for _, template in _pod_templates(docs):
        for c in template["spec"]["containers"]:
            refs = [e["configMapRef"]["name"] for e in c.get("envFrom", [])]
            assert refs in ([], [config["metadata"]["name"]]), "the generated (hashed) name is referenced"


@pytest.mark.parametrize("overlay", MIGRATIONS)
def test_las_migraciones_se_renderizan_aparte(kustomize, overlay, keda_schema):
    docs = kustomize(overlay)
    for doc in docs:
        validate(doc, keda_schema)
    check_migrations(docs, _red(overlay))


def test_la_migracion_y_la_app_usan_la_misma_imagen(kustomize):
    """One release: the image the Job migrates with is the one the app runs (overlays/production/release)."""
    imagenes = {
        c["image"]
        for overlay in ("overlays/production", "overlays/production/migrations")
        for _, template in _pod_templates(kustomize(overlay))
        for c in template["spec"]["containers"]
    }
    assert len(imagenes) == 1, imagenes


def test_produccion_en_su_namespace_con_la_imagen_publicada(kustomize):
    docs = kustomize("overlays/production")
    (namespace,) = (d for d in docs if d["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for d in docs + kustomize("overlays/production/migrations"):
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == namespace["metadata"]["name"], d["metadata"]["name"]
    for _, template in _pod_templates(docs):
        for c in template["spec"]["containers"]:
            nombre, _, tag = c["image"].rpartition(":")
            assert "/" in nombre, "a registry image"
            assert tag not in {"", "latest"}, "a released tag"


def test_los_ajustes_de_red_llegan_a_cada_politica_y_con_trazas_el_colector(kustomize, tmp_path, keda_schema):
    """Production as an operator sets it up: real addresses in network.yaml and tracing on. Each
    destination lands exactly where the settings say (worker and relay reach the collector too)."""
    copia = tmp_path / "kubernetes"
    shutil.copytree(_root(), copia)
    produccion = copia / "overlays" / "production"
    ajustes = produccion / "network" / "network.yaml"
    (red,) = _load(ajustes)
    red["spec"]["ingress"] = {"monitoringNamespace": "observabilidad", "ingressNamespace": "entrada"}
    salida = red["spec"]["egress"]
    salida["postgres"] = {"to": [{"ipBlock": {"cidr": "10.20.0.5/32"}}], "port": 6432}
    en_el_cluster = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "pulsar"}},
        "podSelector": {"matchLabels": {"component": "broker"}},
    }
    salida["pulsar"] = {"to": [en_el_cluster], "port": 6651}
    salida["stripe"] = {"to": [{"ipBlock": {"cidr": "10.50.0.9/32"}}], "port": 3128}  # an egress proxy
    salida["otlp"] = {"to": [{"ipBlock": {"cidr": "10.40.0.7/32"}}], "port": 4317}
    ajustes.write_text(yaml.safe_dump(red))
    k = produccion / "kustomization.yaml"
    k.write_text(k.read_text().replace("  # - tracing\n", "  - tracing\n"))
    red = _red("overlays/production", copia)
    assert red is not None
    validate_network_settings(red)
    app = kustomize(str(produccion))
    for doc in app:
        validate(doc, keda_schema)
    check_app(app, red)
    assert _con_trazas(app, "worker") == _con_trazas(app, "relay") == {"otlp"}
    assert _con_trazas(app, "api") == set()
    migraciones = kustomize(str(produccion / "migrations"))
    check_migrations(migraciones, red)
    for politica in (d for d in app + migraciones if d["kind"] == "NetworkPolicy"):
        assert "REPLACE_ME" not in json.dumps(politica), politica["metadata"]["name"]
