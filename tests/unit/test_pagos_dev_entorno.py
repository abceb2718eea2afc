"""What `make run` tells an operator: `pagos-dev env` (eval-able exports of every setting the
operator commands need against it), the banner's hint to it, its faults line, and the named fault
profiles of `pagos-dev run --fallas`."""

from __future__ import annotations

import shlex
from collections.abc import Iterator

import pytest

from pagos_dev import cli as dev_cli
from pagos_dev import perfiles
from pagos_dev.settings import DevSettings
from pagos_worker.bootstrap import ROLES
from pagos_worker.config import Settings
from pagos_worker.entrypoints import cli


@pytest.fixture
def entorno_limpio(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No PAGOS_* setting from the machine running the tests, and none left behind by a profile
    (`Perfil.aplicar_al_entorno` writes os.environ itself, as `make run` needs): a later test that
    starts the simulator must not inherit a saved 500 on every payout."""
    import os  # noqa: PLC0415

    for nombre in list(os.environ):
        if nombre.startswith(("PAGOS_", "OTEL_")):
            monkeypatch.delenv(nombre)
    yield monkeypatch
    for nombre in list(os.environ):
        if nombre.startswith(("PAGOS_", "OTEL_")):
            del os.environ[nombre]  # the machine's own come back with monkeypatch's undo


def _exports(salida: str) -> dict[str, str]:
    variables: dict[str, str] = {}
    for linea in salida.splitlines():
        if linea.startswith("#") or not linea.strip():
            continue
        palabras = shlex.split(linea)
        assert palabras[0] == "export", linea
        nombre, _, valor = palabras[1].partition("=")
        variables[nombre] = valor
    return variables


def test_pagos_dev_env_da_todo_lo_que_piden_los_comandos_del_operador(entorno_limpio, capsys):
    assert dev_cli.main(["env"]) == 0
    variables = _exports(capsys.readouterr().out)
    assert variables["PAGOS_DATABASE_URL"] == "postgresql+asyncpg://postgres@127.0.0.1:54329/pagos"
    assert variables["PAGOS_PULSAR_URL"] == "pulsar://127.0.0.1:6650"
    assert variables["PAGOS_STRIPE_API_BASE"] == "http://127.0.0.1:12111"
    for nombre, valor in variables.items():
        entorno_limpio.setenv(nombre, valor)
    settings = Settings()
    assert settings.faltantes_operador(pulsar=True, pasarela=True) == []  # pagos resolver, reanudar, dlq
    assert settings.faltantes(ROLES) == []
    assert settings.stripe_destination_template == "acct_{id_afiliado}"


def test_pagos_dev_env_sigue_los_puertos_de_make_run(entorno_limpio, capsys):
    entorno_limpio.setenv("PAGOS_EMBEDDED_POSTGRES_PORT", "55001")
    entorno_limpio.setenv("PAGOS_EMBEDDED_PULSAR_PORT", "6651")
    entorno_limpio.setenv("PAGOS_SIMULADOR_PORT", "12112")
    assert dev_cli.main(["env"]) == 0
    variables = _exports(capsys.readouterr().out)
    assert ":55001/" in variables["PAGOS_DATABASE_URL"]
    assert variables["PAGOS_PULSAR_URL"].endswith(":6651")
    assert variables["PAGOS_STRIPE_API_BASE"].endswith(":12112")


def test_pagos_dev_env_no_repite_lo_que_ya_esta_en_el_entorno(entorno_limpio, capsys):
    entorno_limpio.setenv("PAGOS_DATABASE_URL", "postgresql+asyncpg://u:s3cr3t-pass@db:5432/pagos")
    assert dev_cli.main(["env"]) == 0
    salida = capsys.readouterr().out
    assert "s3cr3t-pass" not in salida
    assert "PAGOS_DATABASE_URL" not in _exports(salida)
    assert "# PAGOS_DATABASE_URL" in salida


def _banner(capsys: pytest.CaptureFixture[str], dev: DevSettings, perfil: perfiles.Perfil | None = None) -> str:
    settings = Settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:54329/pagos", pulsar_url="pulsar://x:1")
    cli._announce(settings, ROLES, perfiles.notas(dev, perfil))
    return capsys.readouterr().out


def test_el_banner_de_make_run_ofrece_pagos_dev_env_y_dice_las_fallas(entorno_limpio, capsys):
    banner = _banner(capsys, DevSettings())
    assert 'eval "$(.venv/bin/pagos-dev env)"' in banner
    assert "declines 10%" in banner
    entorno_limpio.setenv("PAGOS_SIMULADOR_DECLINE_RATE", "0")
    assert "faults      none" in _banner(capsys, DevSettings())


def test_un_perfil_de_fallas_cambia_el_simulador_y_el_servicio_y_el_banner_lo_dice(entorno_limpio, capsys):
    perfil = perfiles.PERFILES["atencion"]
    perfil.aplicar_al_entorno()
    dev = DevSettings()
    assert (dev.simulador_saved_error_rate, dev.simulador_decline_rate) == (1.0, 0.0)
    assert dev.simulador_list_lag_seconds > 0
    assert perfil.al_servicio(Settings()).attention_after_attempts == 1
    banner = _banner(capsys, dev, perfil)
    assert "profile atencion" in banner
    assert "saved 500s 100%" in banner


def test_lo_que_el_entorno_dice_gana_al_perfil(entorno_limpio):
    entorno_limpio.setenv("PAGOS_SIMULADOR_LIST_LAG_SECONDS", "5")
    entorno_limpio.setenv("PAGOS_ATTENTION_AFTER_ATTEMPTS", "3")
    perfil = perfiles.PERFILES["atencion"]
    perfil.aplicar_al_entorno()
    assert DevSettings().simulador_list_lag_seconds == 5
    assert perfil.al_servicio(Settings()).attention_after_attempts == 3


def test_un_perfil_desconocido_es_un_error_de_argumentos(entorno_limpio, capsys):
    with pytest.raises(SystemExit) as salida:
        dev_cli.main(["run", "--fallas", "nada"])
    assert salida.value.code == 2
    assert "atencion" in capsys.readouterr().err


def test_pagos_dev_env_repite_lo_que_el_entorno_ya_tiene_igual(entorno_limpio, capsys):
    entorno_limpio.setenv("PAGOS_PULSAR_URL", "pulsar://127.0.0.1:6650")  # eval'ed before in this shell
    assert dev_cli.main(["env"]) == 0
    assert _exports(capsys.readouterr().out)["PAGOS_PULSAR_URL"] == "pulsar://127.0.0.1:6650"
