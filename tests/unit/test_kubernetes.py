"""deploy/kubernetes, checked offline. Every YAML file as written is validated (the core kinds against
the Kubernetes schemas of `kubernetes-validate`, strict: unknown fields fail; the KEDA objects against
tests/data/keda-pulsar.schema.json, the fields KEDA documents). The base and the production overlay
are also rendered, by the kustomize pinned in pagos_dev/herramientas.py (built with `go install` on
first use: skipped, saying so, only where Go is absent), and every rendered object validated."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr

from pagos_worker.config import CONTRACT_COMMANDS_TOPIC, CONTRACT_SUBSCRIPTION, Settings

KUBERNETES = "1.30"  # the oldest version the manifests are meant for
STRIPE_LIVE_BUDGET = 100  # requests/s per account, shared by every replica
PRESTOP_S = 5  # the API's preStop pause
SECRET = "pagos-worker-secrets"  # noqa: S105 - the name of the operator's Secret
DOCS = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "kubernetes.md"

Doc = dict[str, Any]


def _root() -> Path:
    return Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def _raw_files() -> list[Path]:
    """Every manifest file: the resources of the kustomizations and the examples, not the patches."""
    return sorted(p for p in _root().rglob("*.yaml") if p.name != "kustomization.yaml" and "patches" not in p.parts)


def _load(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _env_file(path: Path) -> dict[str, str]:
    lines = (ln.strip() for ln in path.read_text().splitlines())
    return dict(ln.split("=", 1) for ln in lines if ln and not ln.startswith("#"))


@pytest.fixture(scope="module")
def keda_schema() -> Doc:
    return json.loads((Path(__file__).parents[1] / "data" / "keda-pulsar.schema.json").read_text())


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
    else:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


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


def test_las_kustomizations_nombran_archivos_que_existen():
    for kustomization in _root().rglob("kustomization.yaml"):
        k = yaml.safe_load(kustomization.read_text())
        nombrados = list(k.get("resources", [])) + [p["path"] for p in k.get("patches", [])]
        nombrados += [e for g in k.get("configMapGenerator", []) for e in g.get("envs", [])]
        for nombre in nombrados:
            assert (kustomization.parent / nombre).exists(), f"{kustomization}: {nombre}"
            assert "examples" not in Path(nombre).parts, "the examples hold placeholders, never deployed"


def _base() -> list[Doc]:
    return [d for p in sorted((_root() / "base").glob("*.yaml")) if p.name != "kustomization.yaml" for d in _load(p)]


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


# --- invariants, checked on the files as written and on the rendered overlay ------------------------


def _pod_templates(docs: list[Doc]) -> Iterator[tuple[Doc, Doc]]:
    for d in docs:
        if d["kind"] in {"Deployment", "Job"}:
            yield d, d["spec"]["template"]


def _config(docs: list[Doc]) -> dict[str, str]:
    """The settings of the pods: the rendered ConfigMap, or base/config.env for the files as written."""
    config = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("pagos-worker-config")]
    return config[0]["data"] if config else _config_base()


def _shutdown(docs: list[Doc]) -> float:
    return float(_config(docs)["PAGOS_SHUTDOWN_TIMEOUT_SECONDS"])


def check_invariants(docs: list[Doc]) -> None:
    por_tipo: dict[str, dict[str, Doc]] = {}
    for d in docs:
        por_tipo.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    assert "Secret" not in por_tipo, "secrets are created by the operator, never shipped"
    worker, api = por_tipo["Deployment"]["pagos-worker"], por_tipo["Deployment"]["pagos-worker-api"]
    job = por_tipo["Job"]["pagos-worker-migrate"]
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "run", "--roles", "worker,relay", "--no-migrate",
    ]  # fmt: skip
    assert api["spec"]["template"]["spec"]["containers"][0]["args"] == ["run", "--roles", "api", "--no-migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert "replicas" not in worker["spec"], "KEDA owns the worker's replica count"

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
        if owner["kind"] != "Deployment":
            continue
        assert spec["terminationGracePeriodSeconds"] > _shutdown(docs) + PRESTOP_S, nombre
        (c,) = spec["containers"]
        assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}], nombre
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, nombre
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, nombre
        assert owner["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items(), nombre
        anotaciones = template["metadata"].get("annotations", {})
        assert not any(a.startswith("prometheus.io/") for a in anotaciones), f"{nombre}: /metrics wants a token"
        budgets = [p for p in por_tipo["PodDisruptionBudget"].values() if _selects(p["spec"]["selector"], template)]
        assert len(budgets) == 1, f"{nombre}: one PodDisruptionBudget"

    (servicio,) = por_tipo["Service"].values()
    assert _selects({"matchLabels": servicio["spec"]["selector"]}, api["spec"]["template"])
    assert [p["targetPort"] for p in servicio["spec"]["ports"]] == ["http"]
    check_network_policies(list(por_tipo["NetworkPolicy"].values()), worker, api)
    check_keda(por_tipo, worker, docs)
    check_secretos(por_tipo, docs)


def _selects(selector: Doc, template: Doc) -> bool:
    return selector["matchLabels"].items() <= template["metadata"]["labels"].items()


def _example_secret_keys() -> set[str]:
    (secret,) = _load(_root() / "examples" / "secret.example.yaml")
    return set(secret["stringData"])


def check_network_policies(policies: list[Doc], worker: Doc, api: Doc) -> None:
    """From outside the namespace only port http is admitted; the API's from anywhere."""
    api_desde_fuera = False
    for policy in policies:
        for regla in policy["spec"].get("ingress", []):
            pares = regla.get("from")
            mismo_namespace = pares is not None and all(set(p) == {"podSelector"} for p in pares)
            if mismo_namespace:
                continue
            puertos = regla.get("ports")
            assert puertos, f"{policy['metadata']['name']}: all ports open to other namespaces"
            assert all(p["port"] in {"http", 8000} for p in puertos), policy["metadata"]["name"]
            if pares is None and _selects(policy["spec"]["podSelector"], api["spec"]["template"]):
                assert not _selects(policy["spec"]["podSelector"], worker["spec"]["template"])
                api_desde_fuera = True
    assert api_desde_fuera, "the API's port must be reachable from outside the namespace"


def check_keda(por_tipo: dict[str, dict[str, Doc]], worker: Doc, docs: list[Doc]) -> None:
    (scaled,) = por_tipo["ScaledObject"].values()
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    (trigger,) = spec["triggers"]
    meta = trigger["metadata"]
    assert (meta["topic"], meta["subscription"]) == (CONTRACT_COMMANDS_TOPIC, CONTRACT_SUBSCRIPTION)
    assert 0 < int(meta["activationMsgBacklogThreshold"]) < int(meta["msgBacklogThreshold"])
    assert spec["minReplicaCount"] >= 2, "never zero: the worker pods are also the outbox relay"
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


def check_secretos(por_tipo: dict[str, dict[str, Doc]], docs: list[Doc]) -> None:
    """Each key of the Secret is the setting of its name (http-tokens: PAGOS_HTTP_TOKENS). A pod bound
    beyond loopback gets its HTTP tokens (else it refuses to start); every Deployment gets the Pulsar
    token KEDA uses, optional so that a broker without authentication works; the example Secret has
    exactly the keys something reads."""
    publico = Settings.model_validate({"http_host": _config(docs)["PAGOS_HTTP_HOST"]}).http_publico()
    (auth,) = por_tipo["TriggerAuthentication"].values()
    (ref_keda,) = auth["spec"]["secretTargetRef"]
    usadas = {ref_keda["key"]}
    for owner, template in _pod_templates(docs):
        nombre = owner["metadata"]["name"]
        (c,) = template["spec"]["containers"]
        refs = _desde_el_secret(c)
        for variable, ref in refs.items():
            campo = variable.removeprefix("PAGOS_").lower()
            assert campo in campos_secretos(), f"{nombre}: {variable} is no secret setting"
            assert ref["key"] == campo.replace("_", "-"), f"{nombre}: {variable} from key {ref['key']}"
            usadas.add(ref["key"])
        if owner["kind"] != "Deployment":
            continue
        if publico:
            tokens = refs.get("PAGOS_HTTP_TOKENS")
            assert tokens is not None, f"{nombre} binds beyond loopback: PAGOS_HTTP_TOKENS from the Secret"
            assert not tokens.get("optional", False), f"{nombre}: without tokens it does not start"
        pulsar = refs.get("PAGOS_PULSAR_TOKEN")
        assert pulsar is not None, f"{nombre} talks to Pulsar: PAGOS_PULSAR_TOKEN from the Secret"
        assert pulsar["key"] == ref_keda["key"], f"{nombre}: the token KEDA uses"
        assert pulsar.get("optional") is True, f"{nombre}: a broker without authentication must work"
    worker, api = (por_tipo["Deployment"][n]["spec"]["template"]["spec"] for n in ("pagos-worker", "pagos-worker-api"))
    assert "PAGOS_STRIPE_SECRET_KEY" in _desde_el_secret(worker["containers"][0]), "the worker pays"
    assert "PAGOS_STRIPE_SECRET_KEY" not in _desde_el_secret(api["containers"][0]), "the API never calls Stripe"
    assert usadas == _example_secret_keys(), "the example Secret has exactly the keys read"


def test_invariantes_de_los_archivos_tal_como_estan():
    check_invariants(_base())


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


# --- rendered by kustomize ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kustomize(herramienta_go) -> Any:
    binario = herramienta_go("kustomize")

    def render(overlay: str) -> list[Doc]:
        out = subprocess.run(  # noqa: S603 - the pinned kustomize, fixed arguments
            [binario, "build", str(_root() / overlay)], capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, out.stderr
        return [d for d in yaml.safe_load_all(out.stdout) if d is not None]

    return render


@pytest.mark.parametrize("overlay", ["base", "overlays/production"])
def test_kustomize_renderiza_y_cada_objeto_es_valido(kustomize, overlay, keda_schema):
    docs = kustomize(overlay)
    for doc in docs:
        validate(doc, keda_schema)
    check_invariants(docs)
    (config,) = (d for d in docs if d["kind"] == "ConfigMap")
    for _, template in _pod_templates(docs):
        for c in template["spec"]["containers"]:
            refs = [e["configMapRef"]["name"] for e in c.get("envFrom", [])]
            assert refs in ([], [config["metadata"]["name"]]), "the generated (hashed) name is referenced"


def test_produccion_en_su_namespace_con_la_imagen_publicada(kustomize):
    docs = kustomize("overlays/production")
    (namespace,) = (d for d in docs if d["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == namespace["metadata"]["name"], d["metadata"]["name"]
    for _, template in _pod_templates(docs):
        for c in template["spec"]["containers"]:
            nombre, _, tag = c["image"].rpartition(":")
            assert "/" in nombre, "a registry image"
            assert tag not in {"", "latest"}, "a released tag"
