"""Named fault profiles of `pagos-dev run --fallas`, and what `make run` tells an operator: the
faults that are on (a line of its banner) and the settings of the operator commands (`pagos-dev
env`, eval-able)."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from typing import Any

from pagos_dev.embedded.postgres import EmbeddedPostgres
from pagos_dev.embedded.pulsar import EmbeddedPulsar
from pagos_dev.embedded.servicios import EMBEDDED_DATABASE
from pagos_dev.embedded.simulador import EmbeddedSimulador
from pagos_dev.settings import SIMULADOR_DESTINATION_TEMPLATE, SIMULADOR_SECRET_KEY, DevSettings
from pagos_worker.config import Settings

PISTA_ENV = 'eval "$(.venv/bin/pagos-dev env)"'


@dataclass(frozen=True)
class Perfil:
    """Defaults for the simulator's PAGOS_SIMULADOR_* variables and for some of the service's
    settings; a variable set in the environment wins over the profile."""

    nombre: str
    que: str
    simulador: dict[str, str] = field(default_factory=dict)
    servicio: dict[str, Any] = field(default_factory=dict)

    def aplicar_al_entorno(self) -> None:
        """The simulator is a child process: it reads its settings from the environment it inherits."""
        for nombre, valor in self.simulador.items():
            os.environ.setdefault(nombre, valor)

    def al_servicio(self, settings: Settings) -> Settings:
        cambios = {k: v for k, v in self.servicio.items() if f"PAGOS_{k.upper()}" not in os.environ}
        return settings.model_copy(update=cambios)


PERFILES = {
    p.nombre: p
    for p in (
        Perfil(
            "atencion",
            "every payout a saved 500, every second one with its transfer made but listed 60 s late; "
            "a payment is flagged after one unknown outcome",
            simulador={
                "PAGOS_SIMULADOR_SAVED_ERROR_RATE": "1",
                "PAGOS_SIMULADOR_DECLINE_RATE": "0",
                "PAGOS_SIMULADOR_LIST_LAG_SECONDS": "60",
            },
            servicio={"attention_after_attempts": 1},
        ),
        Perfil(
            "lenta",
            "answers in 2-12 s: some outlast the 10 s per attempt and are retried with the same key",
            simulador={"PAGOS_SIMULADOR_LATENCY": "uniform:2000:12000", "PAGOS_SIMULADOR_DECLINE_RATE": "0"},
        ),
        Perfil(
            "caida",
            "Stripe down: every call a 500 before anything is made; the circuit opens and payments wait "
            "(end it: curl -d '{\"tasa_500\": 0}' localhost:12111/_simulador/fallas)",
            simulador={"PAGOS_SIMULADOR_ERROR_RATE": "1", "PAGOS_SIMULADOR_DECLINE_RATE": "0"},
        ),
    )
}


def fallas(dev: DevSettings) -> str:
    """The simulator's faults that are on, in a few words (the banner's `faults` line)."""
    tasas = (
        ("declines", dev.simulador_decline_rate, "DECLINE_RATE"),
        ("500s", dev.simulador_error_rate, "ERROR_RATE"),
        ("saved 500s", dev.simulador_saved_error_rate, "SAVED_ERROR_RATE"),
        ("429s", dev.simulador_rate_limit_rate, "RATE_LIMIT_RATE"),
        ("timeouts after success", dev.simulador_timeout_after_success_rate, "TIMEOUT_AFTER_SUCCESS_RATE"),
    )
    partes = [f"{que} {tasa:.0%}" for que, tasa, _ in tasas if tasa]
    if dev.simulador_list_lag_seconds:
        partes.append(f"listed {dev.simulador_list_lag_seconds:g} s late")
    if dev.simulador_account_rate_limit:
        partes.append(f"{dev.simulador_account_rate_limit:g} requests/s")
    return ", ".join(partes) or "none"


def notas(dev: DevSettings, perfil: Perfil | None = None) -> dict[str, str]:
    """The banner lines `make run` adds: its faults (a profile's included), and the operators' hint."""
    linea = f"{fallas(dev)}; latency {dev.simulador_latency}"
    if perfil is not None:
        linea += f"; profile {perfil.nombre}"
        linea += "".join(f", PAGOS_{k.upper()}={v}" for k, v in perfil.servicio.items())
    return {"fallas": linea, "operadores": f"{PISTA_ENV}   then .venv/bin/pagos-worker pagos|dlq|eventos …"}


def exports(dev: DevSettings, settings: Settings) -> list[str]:
    """`export` lines for what `pagos-dev run` would give the service, with these settings: the
    embedded servers' URLs and the simulator's test key. What the environment sets to something
    else is not repeated (it may hold a real secret): a comment says so."""
    previstos: dict[str, str] = {
        "PAGOS_DATABASE_URL": EmbeddedPostgres(dev.data_dir / "postgres", port=dev.embedded_postgres_port).url(
            EMBEDDED_DATABASE
        ),
        "PAGOS_PULSAR_URL": EmbeddedPulsar(dev.data_dir / "pulsar", port=dev.embedded_pulsar_port).url,
    }
    if settings.stripe_api_base is None and dev.pasarela == "stripe":
        simulador = EmbeddedSimulador(dev.data_dir / "simulador", host=dev.simulador_host, port=dev.simulador_port)
        previstos["PAGOS_STRIPE_API_BASE"] = simulador.url
        previstos["PAGOS_STRIPE_SECRET_KEY"] = SIMULADOR_SECRET_KEY  # the simulator's own test key
        previstos["PAGOS_STRIPE_DESTINATION_TEMPLATE"] = SIMULADOR_DESTINATION_TEMPLATE
    lineas = []
    for nombre, valor in previstos.items():
        if os.environ.get(nombre, valor) != valor:
            lineas.append(f"# {nombre}: set to something else in this environment, not repeated")
        else:
            lineas.append(f"export {nombre}={shlex.quote(valor)}")
    return lineas
