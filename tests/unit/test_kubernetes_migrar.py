"""deploy/kubernetes/migrate.sh, the documented way to run a release's migrations, against a fake
kubectl that plays the cluster: the previous Job deleted, the migrations' kustomization applied (never
the app's), and a wait that ends as soon as the Job completes, and as soon as it fails."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "migrate.sh"
OVERLAY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "overlays" / "production" / "migrations"

# Answers `get` with the next line of $FAKE_DIR/condiciones (the last one once they run out), and
# records every call in $FAKE_DIR/llamadas.
FAKE_KUBECTL = r"""#!/usr/bin/env bash
echo "$*" >> "$FAKE_DIR/llamadas"
case " $* " in
  *" apply "*) [[ -z $FAKE_APPLY_FALLA ]] || { echo 'cidr: Invalid value: "REPLACE_ME"' >&2; exit 1; } ;;
  *" get "*)
    n=$(grep -c ' get ' "$FAKE_DIR/llamadas")
    total=$(wc -l < "$FAKE_DIR/condiciones")
    sed -n "$(( n < total ? n : total ))p" "$FAKE_DIR/condiciones" ;;
  *" logs "*) echo "ERROR: canceling statement due to lock timeout" ;;
esac
"""


def migrar(
    tmp_path: Path, condiciones: list[str], *args: str, **entorno: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL)
    kubectl.chmod(0o755)
    (tmp_path / "condiciones").write_text("".join(f"{c}\n" for c in condiciones))
    (tmp_path / "llamadas").touch()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_DIR": str(tmp_path),
        "PAGOS_MIGRATE_POLL_SECONDS": "0.05",
        "FAKE_APPLY_FALLA": "",
        **entorno,
    }
    bash = shutil.which("bash")
    assert bash is not None
    resultado = subprocess.run(  # noqa: S603 - the project's own script
        [bash, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    return resultado, (tmp_path / "llamadas").read_text().splitlines()


def test_espera_a_que_termine_y_aplica_solo_las_migraciones(tmp_path):
    resultado, llamadas = migrar(tmp_path, ["", "", "Complete "], str(OVERLAY))
    assert resultado.returncode == 0, resultado.stderr
    assert llamadas[:2] == [
        "-n pagos delete job/pagos-worker-migrate --ignore-not-found --wait=true",
        f"apply -k {OVERLAY}",
    ]
    assert len([c for c in llamadas if " get " in f" {c} "]) == 3


@pytest.mark.parametrize("condiciones", ["Failed ", "FailureTarget Failed "])  # 1.30; 1.31 and later
def test_un_job_fallido_termina_la_espera_con_sus_ultimas_lineas(tmp_path, condiciones):
    resultado, llamadas = migrar(tmp_path, ["", condiciones], str(OVERLAY), "600")
    assert resultado.returncode == 1
    assert "lock timeout" in resultado.stderr
    assert "-n pagos logs job/pagos-worker-migrate --tail=20" in llamadas


def test_sin_terminar_en_el_plazo_sale_con_2(tmp_path):
    resultado, _ = migrar(tmp_path, [""], str(OVERLAY), "1")
    assert resultado.returncode == 2
    assert "neither complete nor failed after 1 s" in resultado.stderr


@pytest.mark.parametrize("args", [[], ["/no/such/dir"], [str(OVERLAY), "15m"]])
def test_mal_llamado_no_toca_el_cluster(tmp_path, args):
    resultado, llamadas = migrar(tmp_path, [""], *args)
    assert resultado.returncode == 3
    assert llamadas == []


def test_si_el_apply_falla_no_espera(tmp_path):
    resultado, llamadas = migrar(tmp_path, ["Complete "], str(OVERLAY), FAKE_APPLY_FALLA="1")
    assert resultado.returncode == 4
    assert "REPLACE_ME" in resultado.stderr
    assert not [c for c in llamadas if " get " in f" {c} "]
