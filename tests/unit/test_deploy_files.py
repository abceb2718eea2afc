"""compose.yaml, its env file example and the Containerfiles, checked offline (no Docker engine on these
machines)."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pagos_worker.adapters.stripe.config import StripeConfigError, valid_api_base, valid_key
from pagos_worker.adapters.stripe.destinos import Destinos
from pagos_worker.config import Settings

SERVICIO = ("migrate", "worker", "worker-simulador", "api")  # the services of the service's image


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
    for name in SERVICIO:
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
    for name in ("worker", "worker-simulador", "api"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in services[name]


def test_replicas_del_worker_configurables(compose):
    assert compose["services"]["worker"]["deploy"]["replicas"].startswith("${PAGOS_WORKER_REPLICAS")


def test_la_migracion_es_un_paso_aparte(compose):
    services = compose["services"]
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("worker", "worker-simulador", "api"):
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


ENV_FILE = [{"path": "deploy/compose.env", "required": False}]
DESTINOS = "/etc/pagos-worker/destinations.json"  # where the worker's container has the mounted file


def test_stripe_desde_un_archivo_de_entorno_fuera_del_repositorio(compose, repo_root):
    """The real Stripe settings and the HTTP tokens come from the operator's file, never from
    compose.yaml; the simulator's worker alone names its (loopback) base and a test key."""
    services = compose["services"]
    for name, service in services.items():
        stripe = {k: v for k, v in service.get("environment", {}).items() if k.startswith("PAGOS_STRIPE")}
        if name == "worker-simulador":
            assert stripe["PAGOS_STRIPE_SECRET_KEY"].startswith("sk_test_"), "the simulator's, never a real key"
        elif name == "api":
            assert stripe == {"PAGOS_STRIPE_SECRET_KEY": ""}, "the API never calls Stripe: the file's key blanked"
        elif name == "worker":
            assert stripe == {"PAGOS_STRIPE_DESTINATIONS_FILE": DESTINOS}, "only where the mounted file is"
        else:
            assert not stripe, name
        assert "PAGOS_HTTP_TOKENS" not in service.get("environment", {}), f"{name}: tokens from the file only"
    assert services["worker"]["env_file"] == ENV_FILE
    assert "env_file" not in services["worker-simulador"], "no real key may reach the simulator's worker"
    assert "deploy/compose.env" in (repo_root / ".gitignore").read_text().splitlines()
    activos, comentados = _env_example(repo_root)
    assert activos["PAGOS_STRIPE_API_BASE"] == "https://api.stripe.com"
    assert activos["PAGOS_STRIPE_SECRET_KEY"] == "REPLACE_ME"  # noqa: S105 - the placeholder
    # Empty, so that a copy left unfilled refuses to start: any other placeholder would be a token.
    assert activos["PAGOS_HTTP_TOKENS"] == ""
    vacio = Settings.model_validate({"http_host": "0.0.0.0", "http_tokens": activos["PAGOS_HTTP_TOKENS"]})  # noqa: S104
    assert "PAGOS_HTTP_TOKENS" in vacio.faltantes(frozenset({"api"}))
    for clave in {**activos, **comentados}:
        assert clave.removeprefix("PAGOS_").lower() in Settings.model_fields, f"{clave} is no setting"
    # Stripe's test mode: 25 requests/s per account, the budget every worker replica shares.
    assert float(activos["PAGOS_STRIPE_RATE_LIMIT"]) <= 25


def test_el_simulador_solo_bajo_el_perfil_local_y_dice_que_lo_es(compose, repo_root):
    services = compose["services"]
    simulador = services["stripe-simulador"]
    assert simulador["profiles"] == ["local"]
    assert services["worker-simulador"]["profiles"] == ["local"]
    assert services["worker"]["profiles"] == ["stripe"]
    assert "SIMULATOR" in simulador["labels"]["org.pagos-worker.role"]
    assert "SIMULATOR" in (repo_root / "devtools" / "Containerfile").read_text()
    for name, service in services.items():
        if name not in {"stripe-simulador", "worker-simulador", "worker"}:
            assert "profiles" not in service, f"{name} must start whatever the profile"
            assert "simulador" not in str(service.get("environment", {})), name


# --- what runs under each profile ------------------------------------------------------------------


def _perfiles_por_defecto(repo_root: Path) -> list[str]:
    """COMPOSE_PROFILES of ./.env: what Compose activates when no --profile is given."""
    lineas = (ln.strip() for ln in (repo_root / ".env").read_text().splitlines())
    valores = dict(ln.split("=", 1) for ln in lineas if ln and not ln.startswith("#"))
    assert set(valores) == {"COMPOSE_PROFILES"}, "compose's own settings only: nothing reaches a container"
    return [p.strip() for p in valores["COMPOSE_PROFILES"].split(",")]


def _activos(compose: dict[str, Any], perfiles: list[str]) -> dict[str, dict[str, Any]]:
    """The services Compose starts: those without profiles, and those with one of `perfiles`."""
    servicios = compose["services"].items()
    return {n: s for n, s in servicios if "profiles" not in s or set(s["profiles"]) & set(perfiles)}


def _roles(service: dict[str, Any]) -> set[str]:
    command = service.get("command", [])
    return set(command[command.index("--roles") + 1].split(",")) if "--roles" in command else set()


def _entorno(service: dict[str, Any], repo_root: Path) -> dict[str, str]:
    """The PAGOS_ settings the container gets: the env file (its example), then `environment`, with
    the variables compose.yaml interpolates left unset."""
    entorno: dict[str, str] = {}
    if service.get("env_file"):
        assert service["env_file"] == ENV_FILE
        entorno |= _env_example(repo_root)[0]
    return entorno | {k: _por_defecto(str(v)) for k, v in service.get("environment", {}).items()}


def _por_defecto(valor: str) -> str:
    """Compose's `${VAR:-default}` as it reads with VAR unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", valor)


def _imagen_http_host(repo_root: Path) -> str:
    (host,) = re.findall(r"PAGOS_HTTP_HOST=(\S+)", (repo_root / "Containerfile").read_text())
    return host


@pytest.mark.parametrize(("perfiles", "pagador", "base"), [
    (None, "worker", "https://api.stripe.com"),
    (["local"], "worker-simulador", "http://127.0.0.1:12111"),
])  # fmt: skip
def test_cada_perfil_paga_por_un_solo_camino(compose, repo_root, perfiles, pagador, base):
    """`docker compose up` pays through Stripe from the env file; `--profile local` through the
    simulator alone, its worker in the simulator's network namespace; never both."""
    activos = _activos(compose, perfiles if perfiles is not None else _perfiles_por_defecto(repo_root))
    pagadores = [n for n, s in activos.items() if "worker" in _roles(s)]
    assert pagadores == [pagador]
    assert _entorno(activos[pagador], repo_root)["PAGOS_STRIPE_API_BASE"] == base
    assert {"api", "migrate", "postgres", "pulsar"} <= set(activos)
    for name, service in activos.items():
        if (modo := service.get("network_mode", "")).startswith("service:"):
            assert modo.removeprefix("service:") in activos, f"{name} joins a namespace that is not started"
            assert service["depends_on"][modo.removeprefix("service:")]["condition"] == "service_healthy"


def test_sin_choque_de_puertos_en_un_espacio_de_red_compartido(compose, repo_root):
    """Services that share a network namespace bind distinct ports, and one replica each (replicas
    in one namespace would all bind the same). A service in its own container binds its own."""
    services = compose["services"]
    simulador = services["stripe-simulador"]["command"]
    puertos = {"stripe-simulador": [simulador[simulador.index("--port") + 1]]}
    for name in SERVICIO:
        if _roles(services[name]):
            puertos[name] = [_entorno(services[name], repo_root).get("PAGOS_HTTP_PORT", "8000")]
    espacios: dict[str, list[str]] = {}
    for name, service in services.items():
        modo = service.get("network_mode", "")
        espacio = modo.removeprefix("service:") if modo.startswith("service:") else name
        espacios.setdefault(espacio, []).extend(puertos.get(name, []))
        if modo.startswith("service:"):
            assert service.get("deploy", {}).get("replicas", 1) == 1, name
    for espacio, ligados in espacios.items():
        assert len(ligados) == len(set(ligados)), f"ports bound twice in {espacio}'s namespace: {ligados}"


def test_sin_base_de_stripe_en_http_fuera_de_loopback(compose, repo_root):
    """The service refuses a Stripe base that is not https://, but plain http to a loopback address:
    none such anywhere in compose.yaml, its env file example or the Kubernetes settings."""
    bases = [
        str(v)
        for s in compose["services"].values()
        for k, v in s.get("environment", {}).items()
        if k == "PAGOS_STRIPE_API_BASE"
    ]
    activos, comentados = _env_example(repo_root)
    bases += [d["PAGOS_STRIPE_API_BASE"] for d in (activos, comentados) if "PAGOS_STRIPE_API_BASE" in d]
    for config in (repo_root / "deploy" / "kubernetes").rglob("config.env"):
        bases += re.findall(r"^PAGOS_STRIPE_API_BASE=(.*)$", config.read_text(), flags=re.MULTILINE)
    assert len(bases) >= 4, bases  # the simulator's worker, the example, Kubernetes' base and production
    for base in bases:
        valid_api_base(base)
    with pytest.raises(StripeConfigError):
        valid_api_base("http://stripe-simulador:12111")  # what the local profile used to name


def test_tokens_para_cada_servicio_que_escucha_fuera_de_loopback(compose, repo_root):
    """A process bound beyond loopback refuses to start without PAGOS_HTTP_TOKENS: each such service
    reads the env file that has them. Its health check asks /readyz, which needs no token."""
    for name, service in compose["services"].items():
        if not _roles(service):
            continue
        assert "api" not in _roles(service) or name == "api", f"{name}: no api role for its probes"
        entorno = _entorno(service, repo_root)
        host = entorno.get("PAGOS_HTTP_HOST", _imagen_http_host(repo_root))
        if Settings.model_validate({"http_host": host}).http_publico():
            assert service.get("env_file") == ENV_FILE, f"{name} binds {host}: PAGOS_HTTP_TOKENS from the file"
            assert "PAGOS_HTTP_TOKENS" in _env_example(repo_root)[0]
        prueba = " ".join(service["healthcheck"]["test"])
        assert "/readyz" in prueba, name
        assert "Authorization" not in prueba, f"{name}: /readyz needs no token"
    assert _roles(compose["services"]["worker"]) == {"worker", "relay"}, "every process serves its probes"


def test_el_trabajador_del_simulador_arranca_tal_como_esta(compose, repo_root):
    """`--profile local` needs nothing of the env file for its worker: the service's start-up checks
    pass on compose.yaml's settings alone (the Stripe base and key included)."""
    service = compose["services"]["worker-simulador"]
    entorno = {k.removeprefix("PAGOS_").lower(): v for k, v in _entorno(service, repo_root).items()}
    settings = Settings.model_validate({"http_host": _imagen_http_host(repo_root)} | entorno)
    assert settings.faltantes(frozenset(_roles(service))) == []
    assert settings.stripe_api_base is not None
    assert settings.stripe_secret_key is not None
    valid_api_base(settings.stripe_api_base)
    valid_key(settings.stripe_secret_key)


def _ignorados(repo_root: Path, dockerfile: str) -> list[str]:
    """BuildKit's ignore file for a build from the repository root: `<dockerfile>.dockerignore`
    beside it if there is one, else the root .dockerignore."""
    propio = repo_root / f"{dockerfile}.dockerignore"
    archivo = propio if propio.exists() else repo_root / ".dockerignore"
    lineas = (ln.strip() for ln in archivo.read_text().splitlines())
    return [ln for ln in lineas if ln and not ln.startswith("#")]


def test_cada_copia_esta_en_su_contexto(compose, repo_root):
    """What a Containerfile COPYs from the context is not left out of it by the ignore file."""
    for name, service in compose["services"].items():
        if "build" not in service:
            continue
        assert service["build"]["context"] == "."
        dockerfile = service["build"]["dockerfile"]
        ignorados = _ignorados(repo_root, dockerfile)
        for linea in (repo_root / dockerfile).read_text().splitlines():
            if not linea.startswith("COPY") or "--from=" in linea:
                continue
            for fuente in [f for f in linea.split()[1:-1] if not f.startswith("--")]:
                fuera = [p for p in ignorados if fnmatch.fnmatch(fuente, p) or fuente.startswith(p + "/")]
                assert not fuera, f"{name}: {dockerfile} copies {fuente}, which {fuera} leaves out"


def test_la_imagen_del_servicio_no_lleva_las_herramientas_de_desarrollo(repo_root):
    copias = [ln for ln in (repo_root / "Containerfile").read_text().splitlines() if ln.startswith("COPY")]
    assert not any("devtools" in ln for ln in copias)


def test_con_una_clave_live_el_trabajador_paga_tal_como_esta_escrito(compose, repo_root, tmp_path):
    """compose.yaml mounts the operator's destinations file (never created by Compose in its
    absence, read-only) where the worker's settings look for it: with a live key in the env file,
    and the test mode's template deleted as the example says, nothing is missing and every
    affiliate of the file has its account."""
    worker = compose["services"]["worker"]
    (montaje,) = worker["volumes"]
    assert (montaje["type"], montaje["source"], montaje["target"]) == ("bind", "./deploy/destinations.json", DESTINOS)
    assert montaje["read_only"] is True
    assert montaje["bind"]["create_host_path"] is False, "missing, `up` must stop, not mount an empty folder"
    assert "deploy/destinations.json" in (repo_root / ".gitignore").read_text().splitlines()
    assert "PAGOS_STRIPE_DESTINATION_TEMPLATE" in (repo_root / "deploy" / "compose.env.example").read_text()
    entorno = {k.removeprefix("PAGOS_").lower(): v for k, v in _entorno(worker, repo_root).items()}
    entorno |= {"stripe_secret_key": "rk_live_" + "x" * 24, "http_tokens": "t" * 32}  # the operator's
    del entorno["stripe_destination_template"]
    settings = Settings.model_validate({"http_host": _imagen_http_host(repo_root)} | entorno)
    assert settings.faltantes(frozenset(_roles(worker))) == []
    assert settings.stripe_destinations_file == Path(DESTINOS)
    ejemplo = repo_root / "deploy" / "kubernetes" / "examples" / "destinations.example.json"
    copia = tmp_path / "destinations.json"  # the file the operator copies and fills in
    copia.write_text(ejemplo.read_text())
    destinos = Destinos.desde_archivo(copia, None)
    assert destinos.para("afiliado_123") == "acct_REPLACE_ME"
    assert destinos.para("otro") is None, "no template with a live key: an unknown affiliate is not paid"


# --- the image: its base, its build tools, what it leaves out ----------------------------------------

CONTAINERFILES = ("Containerfile", "devtools/Containerfile")
DIGEST = re.compile(r"^FROM (\S+@sha256:[0-9a-f]{64})(?: AS (\S+))?$")


@pytest.mark.parametrize("containerfile", CONTAINERFILES)
def test_las_imagenes_base_fijadas_por_digest(repo_root, containerfile):
    """Every stage starts from an image named by its digest, or from an earlier stage of the file."""
    etapas: set[str] = set()
    for linea in (repo_root / containerfile).read_text().splitlines():
        if not linea.startswith("FROM "):
            continue
        partes = linea.split()
        if partes[1] in etapas:
            etapas.add(partes[-1])
            continue
        assert DIGEST.match(linea), f"{containerfile}: {linea} is not pinned by digest"
        if " AS " in linea:
            etapas.add(partes[-1])


def _etapa(texto: str, nombre: str) -> list[str]:
    """The logical lines (continuations joined) of one stage of a Containerfile."""
    lineas = re.sub(r"\\\n\s*", " ", texto).splitlines()
    inicio = next(i for i, ln in enumerate(lineas) if re.match(rf"^FROM \S+ AS {nombre}$", ln))
    fin = next((i for i, ln in enumerate(lineas) if i > inicio and ln.startswith("FROM ")), len(lineas))
    return [ln.strip() for ln in lineas[inicio:fin] if ln.strip() and not ln.startswith("#")]


def test_las_herramientas_de_la_construccion_fijadas_con_hash(repo_root):
    """Every pip install of the build checks hashes (or installs only the wheel just built, from no
    index), and the service's wheel is built with the locked backend, never an isolated one
    fetched unpinned; the build lock pins the backend pyproject.toml names."""
    build = _etapa((repo_root / "Containerfile").read_text(), "build")
    ordenes = [o.strip() for ln in build if ln.startswith("RUN ") for o in ln.removeprefix("RUN ").split("&&")]
    instalaciones = [o for o in ordenes if re.search(r"\bpip\b.* install ", o)]
    assert len(instalaciones) == 3, instalaciones
    for orden in instalaciones:
        assert "--require-hashes" in orden or "--no-index" in orden, orden
    (rueda,) = [o for o in ordenes if re.search(r"\bpip\b.* wheel ", o)]
    assert "--no-build-isolation" in rueda
    lock = (repo_root / "requirements" / "build.lock").read_text()
    fijados = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+) \\$", lock, flags=re.MULTILINE))
    backend = re.findall(
        r'"([A-Za-z0-9_.\-]+)', re.search(r"requires = \[(.*)\]", (repo_root / "pyproject.toml").read_text()).group(1)
    )
    assert set(backend) <= set(fijados), (backend, fijados)
    bloques = [b for b in re.split(r"\n(?=\S)", lock) if "==" in b]
    assert bloques
    assert all("--hash=sha256:" in b for b in bloques)


def test_pip_y_setuptools_no_quedan_en_la_imagen(repo_root):
    """The service's venv is made without pip (the build's own venv installs into it), and the
    runtime stage removes the base image's pip, setuptools and wheel."""
    texto = (repo_root / "Containerfile").read_text()
    build, runtime = _etapa(texto, "build"), _etapa(texto, "runtime")
    assert any("python -m venv --without-pip /opt/venv" in ln for ln in build)
    assert any(re.search(r"pip uninstall --yes pip setuptools wheel", ln) for ln in runtime)
    (copia,) = [ln for ln in runtime if ln.startswith("COPY --from=")]
    assert copia == "COPY --from=build /opt/venv /opt/venv", "the build's tools never reach the runtime"


def _excluido(ruta: str, patrones: list[str]) -> bool:
    """BuildKit's reading of an ignore file for one path: the last matching pattern decides; `**`
    spans any number of folders; a pattern matching a folder excludes what is under it."""
    excluido = False
    for patron in patrones:
        negado = patron.startswith("!")
        regex = re.escape(patron.removeprefix("!").strip("/")).replace(r"\*\*/", "(?:.*/)?")
        regex = regex.replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if re.fullmatch(rf"{regex}(?:/.*)?", ruta):
            excluido = not negado
    return excluido


ARCHIVOS_DE_ENTORNO = [".env", ".env.production", "prod.env", "deploy/compose.env", "deploy/x/.env", "a/b/c.env"]


@pytest.mark.parametrize("ignorar", [".containerignore", ".dockerignore", "devtools/Containerfile.dockerignore"])
def test_los_archivos_de_entorno_nunca_entran_en_el_contexto(repo_root, ignorar):
    patrones = [ln.strip() for ln in (repo_root / ignorar).read_text().splitlines()]
    patrones = [p for p in patrones if p and not p.startswith("#")]
    assert [a for a in ARCHIVOS_DE_ENTORNO if not _excluido(a, patrones)] == []
    assert not _excluido("deploy/compose.env.example", patrones)
    assert _excluido("deploy/destinations.json", patrones)
    assert not _excluido("pagos_worker/config.py", patrones), "the matcher excludes what it should only"


def test_podman_y_docker_leen_el_mismo_contexto(repo_root):
    """Podman and Buildah read .containerignore, Docker's BuildKit .dockerignore: the same list."""
    assert (repo_root / ".containerignore").read_text() == (repo_root / ".dockerignore").read_text()
