"""compose.yaml, its env file example and the Containerfiles, checked offline (no Docker engine on these
machines)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from pagos_worker.config import Settings


@pytest.fixture(scope="module")
def compose(repo_root):
    return yaml.safe_load((repo_root / "compose.yaml").read_text())


def test_compose_cumple_la_especificacion(repo_root):
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", "compose.yaml"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_servicios_reales_con_version_fija(compose):
    services = compose["services"]
    assert services["postgres"]["image"] == "postgres:15"
    assert re.fullmatch(r"apachepulsar/pulsar:3\.\d+\.\d+", services["pulsar"]["image"])
    for name in ("migrate", "worker", "api"):
        assert services[name]["build"]["dockerfile"] == "Containerfile"
    assert services["stripe-simulador"]["build"]["dockerfile"] == "devtools/Containerfile"


def test_dependencias_por_condicion_y_no_por_esperas(compose):
    services = compose["services"]
    for name, service in services.items():
        assert "sleep" not in str(service.get("command", "")), name
        for dependency, spec in service.get("depends_on", {}).items():
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency}'s health"
            else:
                assert condition == "service_completed_successfully"
                assert services[dependency]["restart"] == "no"
    assert services["worker"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "healthcheck" in services["worker"]
    assert "healthcheck" in services["api"]


def test_replicas_del_worker_configurables(compose):
    assert compose["services"]["worker"]["deploy"]["replicas"].startswith("${PAGOS_WORKER_REPLICAS")


def test_la_migracion_es_un_paso_aparte(compose):
    services = compose["services"]
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("worker", "api"):
        assert "--no-migrate" in services[name]["command"]
        assert services[name]["environment"]["PAGOS_DATABASE_URL"].startswith("postgresql+asyncpg://")


def test_containerfile_multietapa_y_sin_root(repo_root):
    lines = [ln.strip() for ln in (repo_root / "Containerfile").read_text().splitlines()]
    stages = [ln for ln in lines if ln.startswith("FROM ")]
    assert len(stages) >= 2
    final = lines[lines.index(stages[-1]) :]
    users = [ln.split()[1] for ln in final if ln.startswith("USER ")]
    assert users, "the final stage must drop root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert any(ln.startswith("COPY --from=") for ln in final), "the runtime copies the built venv only"
    assert 'ENTRYPOINT ["pagos-worker"]' in final
    copy_migrations = next(ln for ln in final if ln.startswith("COPY") and "migrations" in ln)
    assert copy_migrations.split()[-1] == "/app/migrations"
    assert any("PAGOS_MIGRATIONS_DIR=/app/migrations" in ln for ln in final)


def test_ni_el_broker_ni_la_base_publican_puertos_en_el_host(compose):
    services = compose["services"]
    publicados = {name: s["ports"] for name, s in services.items() if "ports" in s}
    assert publicados == {"api": ["127.0.0.1:8000:8000"]}


def _containerfile_user(path) -> str:
    users = [ln.split()[1] for ln in path.read_text().splitlines() if ln.startswith("USER ")]
    return users[-1]


def test_cada_servicio_arranca_como_su_usuario_no_root(compose, repo_root):
    for name, service in compose["services"].items():
        uid = str(service["user"]).split(":")[0]
        assert uid not in {"root", "0"}, name
        if "build" in service:
            # The user compose names is the one the image was built for, so its files are readable.
            image_user = _containerfile_user(repo_root / service["build"]["dockerfile"])
            assert str(service["user"]) == image_user, name
            assert service["read_only"] is True, name
            assert service["tmpfs"] == ["/tmp"], name  # noqa: S108 - a tmpfs mount, not a file
            assert service["cap_drop"] == ["ALL"], name


def _env_example(repo_root) -> tuple[dict[str, str], dict[str, str]]:
    """(the settings set, those commented out) in deploy/compose.env.example."""
    activos, comentados = {}, {}
    for ln in (repo_root / "deploy" / "compose.env.example").read_text().splitlines():
        destino, linea = (comentados, ln.removeprefix("# ")) if ln.startswith("# PAGOS_") else (activos, ln)
        if linea.startswith("PAGOS_"):
            clave, valor = linea.split("=", 1)
            destino[clave] = valor
    return activos, comentados


def test_stripe_desde_un_archivo_de_entorno_fuera_del_repositorio(compose, repo_root):
    for name, service in compose["services"].items():
        assert not any(k.startswith("PAGOS_STRIPE") for k in service.get("environment", {})), name
    assert compose["services"]["worker"]["env_file"] == [{"path": "deploy/compose.env", "required": False}]
    assert "deploy/compose.env" in (repo_root / ".gitignore").read_text().splitlines()
    activos, comentados = _env_example(repo_root)
    assert activos["PAGOS_STRIPE_API_BASE"] == "https://api.stripe.com"
    assert activos["PAGOS_STRIPE_SECRET_KEY"] == "REPLACE_ME"  # noqa: S105 - the placeholder
    for clave in {**activos, **comentados}:
        assert clave.removeprefix("PAGOS_").lower() in Settings.model_fields, f"{clave} is no setting"
    # Stripe's test mode: 25 requests/s per account, shared by compose's 2 worker replicas.
    por_replica = float(activos["PAGOS_STRIPE_RATE_LIMIT"]) + int(activos["PAGOS_STRIPE_RATE_BURST"])
    assert por_replica * 2 <= 25


def test_el_simulador_solo_bajo_el_perfil_local_y_dice_que_lo_es(compose, repo_root):
    services = compose["services"]
    simulador = services["stripe-simulador"]
    assert simulador["profiles"] == ["local"]
    assert "SIMULATOR" in simulador["labels"]["org.pagos-worker.role"]
    assert "SIMULATOR" in (repo_root / "devtools" / "Containerfile").read_text()
    for name, service in services.items():
        if name != "stripe-simulador":
            assert "profiles" not in service, f"{name} must start without a profile"
            assert "simulador" not in str(service.get("environment", {})), name
    _, comentados = _env_example(repo_root)
    assert comentados["PAGOS_STRIPE_API_BASE"] == "http://stripe-simulador:12111", "only when asked for"


def test_la_imagen_del_servicio_no_lleva_las_herramientas_de_desarrollo(repo_root):
    copias = [ln for ln in (repo_root / "Containerfile").read_text().splitlines() if ln.startswith("COPY")]
    assert not any("devtools" in ln for ln in copias)
