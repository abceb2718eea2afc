"""compose.yaml and the Containerfile, checked offline (no Docker engine on these machines)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml


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
