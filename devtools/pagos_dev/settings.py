"""Settings of the development tooling (prefix PAGOS_, like the service's): where the embedded
servers keep their data, and how the simulators behave. The service never reads these."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# What the embedded default pays through: the simulator's test key and a connected account per
# affiliate made from its id. Set only by `pagos-dev run`; the service has no such defaults.
SIMULADOR_SECRET_KEY = "sk_test_pagos_worker_local"  # noqa: S105 - the simulator accepts any sk_test_ key
SIMULADOR_DESTINATION_TEMPLATE = "acct_{id_afiliado}"


class DevSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAGOS_", frozen=True, extra="ignore")

    data_dir: Path = Field(Path(".data"), description="embedded PostgreSQL, broker and simulator data")
    embedded_postgres_port: int = 54329
    embedded_pulsar_port: int = 6650
    go_tools_dir: Path = Field(Path(".cache/go-tools"), description="the pinned Go tools, built once (herramientas.py)")
    embedded_pulsar_admin_port: int = Field(8080, description="Apache Pulsar's admin REST API (--broker pulsar)")

    # Gateway of `pagos-dev run`: "stripe" (the service's Stripe adapter, against the embedded
    # simulator unless PAGOS_STRIPE_API_BASE is set) or "simulada" (simulated in process, no HTTP).
    pasarela: Literal["stripe", "simulada"] = "stripe"
    simulada_latency: str = Field("lognormal:60:300", description="fixed:MS | uniform:MIN:MAX | lognormal:P50:P99")
    simulada_failure_rate: float = Field(0.10, ge=0, le=1)
    simulada_seed: int = Field(0, description="same seed, same outcome per payment on every replica")

    # The Stripe-compatible simulator (`pagos-dev simulador`, and the embedded one).
    simulador_host: str = "127.0.0.1"
    simulador_port: int = 12111
    simulador_latency: str = "lognormal:60:300"
    simulador_decline_rate: float = Field(0.10, ge=0, le=1)
    simulador_error_rate: float = Field(0.0, ge=0, le=1, description="500s before the endpoint runs (nothing saved)")
    simulador_saved_error_rate: float = Field(
        0.0, ge=0, le=1, description="500s saved under the key and replayed; every second one made its transfer"
    )
    simulador_rate_limit_rate: float = Field(0.0, ge=0, le=1, description="429s with Retry-After")
    simulador_timeout_after_success_rate: float = Field(0.0, ge=0, le=1)
    simulador_list_lag_seconds: float = Field(
        0.0, ge=0, description="a new transfer shows in GET /v1/transfers this long after it was made"
    )
    simulador_unlisted_seconds: float = Field(60.0, ge=0, description="the same, for acct_test_…_unlisted")
    simulador_account_rate_limit: float = Field(0.0, ge=0, description="requests/s before a 429 (0: no limit)")
    simulador_idempotency_ttl_s: float = Field(24 * 3600, gt=0, description="how long a key's result is kept")
    simulador_http: Literal["propio", "aiohttp"] = Field(
        "propio", description="its HTTP server: its own, or aiohttp's (docs/adr/0001)"
    )
    simulador_state_file: Path | None = Field(None, description="SQLite ledger kept across restarts")
    simulador_seed: int | None = None
