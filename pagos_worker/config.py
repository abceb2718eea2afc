"""Settings from the environment (prefix PAGOS_). Only `bootstrap` and the CLI read them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

CONTRACT_COMMANDS_TOPIC = "persistent://public/default/pagos-comandos"
CONTRACT_EVENTS_TOPIC = "persistent://public/default/pagos-events"
CONTRACT_DLQ_TOPIC = "persistent://public/default/pagos-comandos-DLQ"
CONTRACT_SUBSCRIPTION = "pagos-worker"


class Settings(BaseSettings):
    """Every field is an environment variable: `database_url` is PAGOS_DATABASE_URL, and so on."""

    model_config = SettingsConfigDict(env_prefix="PAGOS_", frozen=True, extra="ignore")

    # Where things are. Unset URLs mean "start the embedded one" (make run, tests).
    database_url: str | None = Field(None, description="postgresql+asyncpg://user:pass@host:port/db")
    pulsar_url: str | None = Field(None, description="pulsar://host:6650")
    data_dir: Path = Field(Path(".data"), description="embedded PostgreSQL and broker data")
    embedded_postgres_port: int = 54329
    embedded_pulsar_port: int = 6650
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    migrations_dir: Path | None = Field(None, description="defaults to the checkout's migrations/")

    # The contract: change only to run isolated copies (tests, benchmarks).
    commands_topic: str = CONTRACT_COMMANDS_TOPIC
    events_topic: str = CONTRACT_EVENTS_TOPIC
    dlq_topic: str = CONTRACT_DLQ_TOPIC
    subscription: str = CONTRACT_SUBSCRIPTION

    # Worker pool.
    worker_concurrency: int = Field(100, ge=1, le=10_000, description="payments in flight per replica")
    lease_seconds: float = Field(60.0, gt=0, description="how long a claim on a payment holds")
    nack_delay_seconds: float = Field(1.0, ge=0, description="redelivery delay of a command put back")
    shutdown_timeout_seconds: float = Field(30.0, ge=0, description="how long in-flight payments may finish")
    db_pool_size: int = Field(10, ge=1)
    db_batch_max: int = Field(200, ge=1, description="payments per group-commit transaction at most")

    # Gateway. "simulada" is the in-process simulation of the gateway.
    pasarela: Literal["simulada"] = "simulada"
    pasarela_concurrency: int = Field(100, ge=1, description="gateway calls in flight per replica")
    simulada_latency: str = Field("lognormal:60:300", description="fixed:MS | uniform:MIN:MAX | lognormal:P50:P99")
    simulada_failure_rate: float = Field(0.10, ge=0, le=1)
    simulada_seed: int = Field(0, description="same seed, same outcome per payment on every replica")

    # Outbox relay.
    relay_batch: int = Field(500, ge=1)
    relay_poll_seconds: float = Field(1.0, gt=0, description="fallback poll when no NOTIFY arrives")

    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"

    def with_urls(self, *, database_url: str, pulsar_url: str) -> Settings:
        return self.model_copy(update={"database_url": database_url, "pulsar_url": pulsar_url})
