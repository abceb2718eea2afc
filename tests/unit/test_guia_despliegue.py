"""The deployment guide's commands, checked where they can be without a cluster: the operators' Job
as the runbooks' shell function fills it in (run against a stand-in kubectl), its grants and its
network; the Pulsar grants each role gets, against the contract's topics and what each operator
command opens; the psql call of roles.sql; the registry's pull secret, rendered into every
ServiceAccount; the smoke test's commands, parsed as the CLI parses them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from pagos_worker.adapters.postgres.database import asyncpg_dsn
from pagos_worker.config import (
    CONTRACT_COMMANDS_TOPIC,
    CONTRACT_DLQ_TOPIC,
    CONTRACT_EVENTS_TOPIC,
    CONTRACT_SUBSCRIPTION,
    Settings,
)
from pagos_worker.entrypoints import cli
from tests.unit.test_kubernetes import DNS_RULE, _destino, _env_file, _files, _selects

ROOT = Path(__file__).resolve().parents[2]
GUIA = ROOT / "docs" / "deploy" / "kubernetes.md"
RUNBOOKS = ROOT / "docs" / "operations" / "runbooks.md"
JOB = ROOT / "deploy" / "kubernetes" / "examples" / "operador-job.yaml"
IMAGEN = "registry.example.com/pagos/pagos-worker:0.2.0@sha256:" + "a" * 64
CONFIG = "pagos-worker-config-7g8h9k"
Doc = dict[str, Any]


def _bloques(texto: str, lenguaje: str) -> list[str]:
    return re.findall(rf"^ *```{lenguaje}\n(.*?)^ *```", texto, flags=re.MULTILINE | re.DOTALL)


def _funcion_de_los_runbooks() -> str:
    (bloque,) = [b for b in _bloques(RUNBOOKS.read_text(), "sh") if "pagos_worker() {" in b]
    return bloque


KUBECTL = """#!/usr/bin/env bash
# A stand-in for kubectl: answers what the runbooks' function asks, and keeps what it was sent.
echo "$*" >> "$DIR/llamadas"
case "$*" in
  *"get deploy/pagos-worker"*"image}"*) echo "$IMAGEN" ;;
  *"get deploy/pagos-worker"*"configMapRef.name}"*) echo "$CONFIG" ;;
  *"create -f - -o name"*) cat > "$DIR/job.yaml"; echo "job.batch/pagos-operador-x1y2z" ;;
  *"logs -f"*) echo "lo que el comando imprimió" ;;
  *"get pods -l job-name=pagos-operador-x1y2z"*) printf '%s' "${SALIDA-0}" ;;
  *) echo "unexpected: $*" >&2; exit 9 ;;
esac
"""


def test_la_funcion_de_los_runbooks_crea_el_job_del_operador(tmp_path, monkeypatch):
    """The function as written, run by bash: the Job it creates is valid, runs the release's image
    and settings, the command's arguments exactly as given (quotes, &, | and all), and records who
    acts; the command's output and exit status come back."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text(KUBECTL)
    (bin_dir / "kubectl").chmod(0o755)
    id_pago = str(uuid.uuid4())
    args = ["pagos", "reversar", id_pago, "--motivo", "fraude", "--id-reverso", str(uuid.uuid4()),
            "--descripcion", 'a & b | "c" \\ ñ: d']  # fmt: skip
    guion = _funcion_de_los_runbooks() + "\npagos_worker " + " ".join(f"'{a}'" for a in args) + "\n"
    entorno = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DIR": str(tmp_path)}
    resultado = subprocess.run(  # noqa: S603 - bash from PATH, the docs' own script
        [shutil.which("bash") or "bash", "-c", guion],
        cwd=ROOT,
        env=entorno | {"IMAGEN": IMAGEN, "CONFIG": CONFIG},
        capture_output=True,
        text=True,
        check=False,
    )
    assert resultado.returncode == 0, resultado.stderr
    assert resultado.stdout.splitlines() == ["lo que el comando imprimió", "exit 0"]
    (job,) = list(yaml.safe_load_all((tmp_path / "job.yaml").read_text()))
    kubernetes_validate.validate(job, "1.30", strict=True)
    assert "REPLACE_" not in json.dumps(job)
    (contenedor,) = job["spec"]["template"]["spec"]["containers"]
    assert contenedor["image"] == IMAGEN
    assert contenedor["envFrom"] == [{"configMapRef": {"name": CONFIG}}]
    assert contenedor["args"] == args
    operador = {e["name"]: e.get("value") for e in contenedor["env"]}["USER"]
    assert operador == "maria.gomez"
    llamadas = (tmp_path / "llamadas").read_text()
    assert "logs -f --pod-running-timeout=2m job.batch/pagos-operador-x1y2z" in llamadas
    # In the pod: the CLI reads those arguments, and --operador defaults to the Job's USER.
    monkeypatch.setenv("USER", operador)
    leidos = cli._parser().parse_args(contenedor["args"])
    assert (leidos.operador, leidos.descripcion, str(leidos.id_pago)) == (operador, args[-1], id_pago)


def _job() -> Doc:
    (job,) = yaml.safe_load_all(JOB.read_text())
    return dict(job)


def _desde_secretos(contenedor: Doc) -> dict[str, Doc]:
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in contenedor["env"] if "valueFrom" in e}


def test_el_job_del_operador_no_se_repite_y_lleva_el_token_de_los_operadores():
    job = _job()
    assert job["spec"]["backoffLimit"] == 0, "a second `pagos reversar` would ask for a second reversal"
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (contenedor,) = pod["containers"]
    secretos = _desde_secretos(contenedor)
    assert secretos["PAGOS_DATABASE_URL"] == {"name": "pagos-worker-secrets", "key": "database-url"}, "the runtime"
    assert secretos["PAGOS_PULSAR_TOKEN"] == {"name": "pagos-worker-operador", "key": "pulsar-token", "optional": True}
    assert set(secretos) == {"PAGOS_DATABASE_URL", "PAGOS_PULSAR_TOKEN", "PAGOS_STRIPE_SECRET_KEY"}
    destinos = Path(_env_file(ROOT / "deploy" / "kubernetes" / "base" / "config.env")["PAGOS_STRIPE_DESTINATIONS_FILE"])
    montajes = {m["name"]: m["mountPath"] for m in contenedor["volumeMounts"]}
    assert montajes["destinations"] == str(destinos.parent)
    # As restricted as the migration Job's pod (the namespace enforces the restricted standard).
    (migracion,) = [d for d in _files("migrations") if d["kind"] == "Job"]
    plantilla = migracion["spec"]["template"]["spec"]
    assert pod["securityContext"] == plantilla["securityContext"]
    assert contenedor["securityContext"] == plantilla["containers"][0]["securityContext"]
    assert pod["automountServiceAccountToken"] is False


def test_la_red_del_job_del_operador_es_la_de_un_worker_sin_entrada():
    """The base's policies select the operators' pods too: denied both ways but DNS, PostgreSQL,
    Pulsar and Stripe (what its commands reach), and nothing may connect to them."""
    plantilla = _job()["spec"]["template"]
    politicas = [d for d in _files("base") if d["kind"] == "NetworkPolicy"]
    suyas = [p for p in politicas if _selects(p["spec"]["podSelector"], plantilla)]
    assert {t for p in suyas for t in p["spec"]["policyTypes"]} == {"Ingress", "Egress"}
    salidas = {_destino(p): p for p in suyas if "egress" in p["spec"]}
    assert set(salidas) == {"dns", "postgres", "pulsar", "stripe"}
    assert salidas["dns"]["spec"]["egress"] == [DNS_RULE]
    assert not [p for p in suyas if "ingress" in p["spec"]]


def _permisos() -> dict[str, set[tuple[str, str]]]:
    permisos: dict[str, set[tuple[str, str]]] = {}
    patron = r"pulsar-admin topics grant-permission --role (\S+) --actions (\S+) (\S+)"
    for rol, acciones, topic in re.findall(patron, GUIA.read_text()):
        permisos.setdefault(rol, set()).update((a, topic) for a in acciones.split(","))
    return permisos


def test_cada_rol_de_pulsar_tiene_exactamente_sus_permisos():
    assert _permisos() == {
        "pagos-worker": {
            ("consume", CONTRACT_COMMANDS_TOPIC),
            ("produce", CONTRACT_EVENTS_TOPIC),
            ("produce", CONTRACT_DLQ_TOPIC),
        },
        "pagos-operador": {
            ("produce", CONTRACT_COMMANDS_TOPIC),
            ("consume", CONTRACT_DLQ_TOPIC),
            ("consume", CONTRACT_EVENTS_TOPIC),
        },
    }
    texto = GUIA.read_text()
    patron = r"grant-subscription-permission public/default --subscription (\S+) --roles (\S+)"
    suscripciones = dict(re.findall(patron, texto))
    assert suscripciones == {CONTRACT_SUBSCRIPTION: "pagos-worker", "revision": "pagos-admin"}


def test_los_topics_se_crean_sin_particiones_y_los_eventos_se_retienen():
    texto = GUIA.read_text()
    patron = r"for t in ([\w\- ]+); do\n\s+pulsar-admin topics create persistent://public/default/\$t"
    (bucle,) = re.findall(patron, texto)
    creados = {f"persistent://public/default/{t}" for t in bucle.split()}
    assert creados == {CONTRACT_COMMANDS_TOPIC, CONTRACT_EVENTS_TOPIC, CONTRACT_DLQ_TOPIC}
    assert "create-partitioned-topic" not in texto
    (retenido,) = re.findall(r"pulsar-admin topicPolicies set-retention --time \S+ --size \S+ (\S+)", texto)
    assert retenido == CONTRACT_EVENTS_TOPIC
    suscripciones = set(re.findall(r"pulsar-admin topics create-subscription -s (\S+) (\S+)", texto))
    assert suscripciones == {(CONTRACT_SUBSCRIPTION, CONTRACT_COMMANDS_TOPIC), ("revision", CONTRACT_DLQ_TOPIC)}


def _necesidades_documentadas() -> dict[str, tuple[bool, bool, bool]]:
    """The runbooks' table: each command -> (PostgreSQL, the broker, Stripe)."""
    texto = RUNBOOKS.read_text()
    tabla = texto[texto.index("| Command | PostgreSQL |") :].split("\n\n")[0].splitlines()[2:]
    necesidades = {}
    for fila in tabla:
        comandos, postgres, broker, stripe, _ = (c.strip() for c in fila.strip("|").split("|"))
        for comando in re.findall(r"`([^`]+)`", comandos):
            necesidades[comando] = (postgres != "—", broker != "—", stripe != "—")
    return necesidades


def _necesidades_del_cli() -> dict[str, tuple[bool, bool, bool]]:
    """What each operator command checks it has (its `Requisitos`), read from the CLI's parser."""
    necesidades = {"publicar": (False, True, False)}  # publicar: the commands topic alone
    grupos = cli._parser()._subparsers._group_actions[0].choices
    for nombre, parser in grupos.items():
        hojas = parser._subparsers._group_actions[0].choices if parser._subparsers else {None: parser}
        for hoja, sub in hojas.items():
            requisitos = sub.get_default("requisitos")
            if requisitos is not None:
                postgres = requisitos.postgres or requisitos.pasarela
                necesidades[f"{nombre} {hoja}" if hoja else nombre] = (postgres, requisitos.pulsar, requisitos.pasarela)
    return necesidades


def test_donde_correr_cada_comando_dice_lo_que_cada_uno_necesita():
    """Every operator command is in the runbooks' table, and the table says what the code checks
    it has: the operators' Pulsar role serves exactly those that need the broker."""
    assert _necesidades_documentadas() == _necesidades_del_cli()


def test_la_llamada_a_roles_sql_da_cada_variable_del_guion():
    guion = (ROOT / "deploy" / "postgres" / "roles.sql").read_text()
    usadas = set(re.findall(r":['\"](\w+)['\"]", guion))
    for texto in (GUIA.read_text(), guion):
        (llamada,) = re.findall(r"psql [^\n]*-f deploy/postgres/roles.sql", texto.replace("\\\n", " "))
        assert set(re.findall(r"-v (\w+)=", llamada)) == usadas, llamada


def test_el_secreto_del_registro_llega_a_cada_serviceaccount(herramienta_go, tmp_path):
    """The guide's patch, in the release component, gives the pull secret to every ServiceAccount
    of both production kustomizations, and every pod runs as one of them."""
    texto = GUIA.read_text()
    (orden,) = re.findall(r"create secret docker-registry (\S+)", texto)
    (parche,) = [yaml.safe_load(b) for b in _bloques(texto, "yaml") if "kind: ServiceAccount" in b and "patches" in b]
    copia = tmp_path / "kubernetes"
    shutil.copytree(ROOT / "deploy" / "kubernetes", copia)
    release = copia / "overlays" / "production" / "release" / "kustomization.yaml"
    componente = yaml.safe_load(release.read_text())
    componente.setdefault("patches", []).extend(parche["patches"])
    release.write_text(yaml.safe_dump(componente))
    kustomize = herramienta_go("kustomize")
    for overlay in ("overlays/production", "overlays/production/migrations"):
        salida = subprocess.run(  # noqa: S603 - the pinned kustomize, fixed arguments
            [str(kustomize), "build", str(copia / overlay)], capture_output=True, text=True, check=True
        ).stdout
        docs = [d for d in yaml.safe_load_all(salida) if d]
        cuentas = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
        assert cuentas, overlay
        for cuenta in cuentas.values():
            assert cuenta["imagePullSecrets"] == [{"name": orden}], cuenta["metadata"]["name"]
        for d in docs:
            if d["kind"] in {"Deployment", "Job"}:
                assert d["spec"]["template"]["spec"]["serviceAccountName"] in cuentas, d["metadata"]["name"]


def test_la_prueba_de_humo_son_ordenes_del_cli():
    """The smoke test's commands parse as the CLI reads them, and its affiliate has no account in
    the destinations example: the command fails without a call to Stripe."""
    (bloque,) = [b for b in _bloques(GUIA.read_text(), "sh") if "pagos_worker publicar" in b]
    ordenes = [ln.split("#")[0].split() for ln in bloque.splitlines() if ln.strip().startswith("pagos_worker ")]
    assert len(ordenes) == 3
    id_pago = str(uuid.uuid4())
    for orden in ordenes:
        args = [a.strip('"').replace("$ID", id_pago) for a in orden[1:]]
        leidos = cli._parser().parse_args(args)
        assert str(leidos.id_pago) == id_pago
    afiliado = ordenes[0][ordenes[0].index("--id-afiliado") + 1]
    destinos = json.loads((ROOT / "deploy" / "kubernetes" / "examples" / "destinations.example.json").read_text())
    assert afiliado not in destinos


def test_las_urls_de_la_base_documentadas_valen_y_verifican_el_servidor():
    """Each PostgreSQL URL the guide and the example Secret show is one the service accepts, with
    TLS that checks the server, the CA file named, as asyncpg reads it."""
    urls = set()
    for archivo in (GUIA, ROOT / "deploy" / "kubernetes" / "examples" / "secret.example.yaml"):
        urls |= set(re.findall(r"postgresql\+asyncpg://[^\s'`\"]+", archivo.read_text()))
    assert len(urls) >= 3
    for url in urls:
        Settings(database_url=url)
        dsn = asyncpg_dsn(url)
        assert "sslmode=verify-full" in dsn, url
        assert "sslrootcert=" in dsn, url


def test_el_rbac_del_operador_deja_entrar_en_un_pod_con_kubectl_de_hoy():
    """`kubectl exec` is a POST (verb create) over SPDY and, from kubectl 1.30 on, a GET (verb get)
    over WebSockets: the Role grants both, or the look in an API pod is refused to a new kubectl."""
    rbac = ROOT / "deploy" / "kubernetes" / "examples" / "operador-rbac.yaml"
    (rol,) = [d for d in yaml.safe_load_all(rbac.read_text()) if d["kind"] == "Role"]
    verbos = {v for regla in rol["rules"] if "pods/exec" in regla["resources"] for v in regla["verbs"]}
    assert verbos == {"get", "create"}


def _funcion(tmp_path, args: list[str], **entorno: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "kubectl").write_text(KUBECTL)
    (bin_dir / "kubectl").chmod(0o755)
    guion = _funcion_de_los_runbooks() + "\npagos_worker " + " ".join(f"'{a}'" for a in args) + "\n"
    return subprocess.run(  # noqa: S603 - bash from PATH, the docs' own script
        [shutil.which("bash") or "bash", "-c", guion],
        cwd=ROOT,
        env={
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "DIR": str(tmp_path),
            "IMAGEN": IMAGEN,
            "CONFIG": CONFIG,
            **entorno,
        },
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "falta"),
    [
        (["pagos", "reversar", "0b9ad5a4-2f0e-4a47-9d7a-2f5b9a1f3c10", "--motivo", "fraude"], "--id-reverso"),
        (["publicar", "--id-afiliado", "afiliado-1", "--monto", "10.00"], "--id-pago"),
    ],
)
def test_la_funcion_no_crea_un_job_que_mueve_dinero_sin_su_id(tmp_path, args, falta):
    """A Job cannot be trusted to run once (and a person re-runs what seemed to hang): a command that
    moves money goes only with its id, so that running it again acts once."""
    resultado = _funcion(tmp_path, args)
    assert resultado.returncode == 3
    assert f"add {falta} " in resultado.stderr
    assert not (tmp_path / "llamadas").exists()  # nothing created


def test_sin_estado_de_salida_la_funcion_dice_que_no_se_repita(tmp_path):
    resultado = _funcion(tmp_path, ["dlq", "listar"], SALIDA="")
    assert resultado.returncode == 4
    assert "has not ended: do not run it again" in resultado.stderr
