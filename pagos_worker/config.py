"""Settings from the environment (prefix PAGOS_). Only `bootstrap` and the CLI read them."""

from __future__ import annotations

import contextlib
import ipaddress
import os
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

CONTRACT_COMMANDS_TOPIC = "persistent://public/default/pagos-comandos"
CONTRACT_EVENTS_TOPIC = "persistent://public/default/pagos-events"
CONTRACT_DLQ_TOPIC = "persistent://public/default/pagos-comandos-DLQ"
CONTRACT_SUBSCRIPTION = "pagos-worker"
MIN_HTTP_TOKEN = 16
_STRIPE_RECUERDA_S = 24 * 3600.0  # Stripe keeps an idempotency key at least this long


# libpq's sslmode values: `verify-full` checks the server's certificate and its name; `require`
# encrypts without checking who answers.
_MODOS_TLS = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Query-string parameters that carry a secret (libpq's and asyncpg's `password`, `sslpassword`...).
_PARAMETROS_SECRETOS = ("password", "passwd", "secret", "token")


def secretos_de_url(url: str) -> list[str]:
    """The secrets a URL carries: its user's password, and any secret-looking query parameter."""
    try:
        partes = urlsplit(url)
        valores = [partes.password or ""]
    except ValueError:
        return []
    pares = parse_qsl(partes.query, keep_blank_values=True)
    valores += [v for k, v in pares if any(s in k.lower() for s in _PARAMETROS_SECRETOS)]
    crudos = (p.partition("=") for p in partes.query.split("&"))  # as written too (percent-encoded)
    valores += [v for k, _, v in crudos if any(s in unquote(k).lower() for s in _PARAMETROS_SECRETOS)]
    return [v for v in valores if v]


class ConfiguracionInvalidaError(ValueError):
    """A setting that cannot work: the service does not start. The message names the setting."""


class Settings(BaseSettings):
    """Every field is an environment variable: `database_url` is PAGOS_DATABASE_URL, and so on."""

    model_config = SettingsConfigDict(env_prefix="PAGOS_", frozen=True, extra="ignore", populate_by_name=True)

    # Where things are. Nothing is started in their place: a role that needs one that is not set
    # refuses to start (`faltantes`). The embedded default is the development tooling's (`make run`).
    database_url: str | None = Field(None, description="postgresql+asyncpg://user:pass@host:port/db")
    pulsar_url: str | None = Field(None, description="pulsar://host:6650")
    http_host: str = Field("127.0.0.1", description="bind address; beyond loopback, PAGOS_HTTP_TOKENS is required")
    http_port: int = 8000
    http_tokens: SecretStr | None = Field(
        None, description="comma-separated bearer tokens for every route but /healthz and /readyz"
    )
    migrations_dir: Path | None = Field(None, description="defaults to the checkout's migrations/")
    # `pagos-worker migrate` (adapters/postgres/database.py, `MigrationLimits`).
    migration_lock_timeout_seconds: float = Field(
        3.0, gt=0, description="a migration waiting this long for a lock gives up, changing nothing (run it again)"
    )
    migration_statement_timeout_seconds: float = Field(
        60.0, gt=0, description="a statement of a migration's transaction running this long is cancelled"
    )
    migration_wait_seconds: float = Field(
        600.0, gt=0, description="a migration waiting this long for another run to end gives up (run it again)"
    )

    # The contract: change only to run isolated copies (tests, benchmarks).
    commands_topic: str = CONTRACT_COMMANDS_TOPIC
    events_topic: str = CONTRACT_EVENTS_TOPIC
    dlq_topic: str = CONTRACT_DLQ_TOPIC
    subscription: str = CONTRACT_SUBSCRIPTION
    pulsar_token: SecretStr | None = Field(None, description="JWT for Pulsar's token authentication")
    pulsar_token_file: Path | None = Field(None, description="the token in a file, read again at each connection")
    pulsar_tls_trust_certs_file: Path | None = Field(None, description="CA bundle for pulsar+ssl:// brokers")
    pulsar_tls_validate_hostname: bool = Field(
        default=True, description="the broker's certificate must name the host connected to"
    )
    pulsar_consumer_id_offset: int = Field(
        0, ge=0, description="pulsar-lite only: a distinct number per replica on the same subscription"
    )

    # Worker pool.
    worker_concurrency: int = Field(100, ge=1, le=10_000, description="payments in flight per replica")
    lease_seconds: float = Field(60.0, gt=0, description="how long a claim on a payment holds")
    nack_delay_seconds: float = Field(1.0, ge=0, description="redelivery delay of a command put back")
    shutdown_timeout_seconds: float = Field(30.0, ge=0, description="how long in-flight payments may finish")
    poison_max_attempts: int = Field(
        5, ge=1, description="failures of a command's own before the DLQ (outages and busy payments never count)"
    )
    attention_after_attempts: int = Field(5, ge=1, description="unknown outcomes before a payment needs attention")
    attention_after_seconds: float = Field(3600.0, gt=0, description="age after which it needs attention")
    settle_margin_seconds: float = Field(
        300.0,
        ge=0,
        validation_alias=AliasChoices(
            "PAGOS_SETTLE_MARGIN_SECONDS", "PAGOS_RESOLVE_FAILED_AFTER_SECONDS", "settle_margin_seconds"
        ),
        description="a lookup proves nothing was paid only this long after the payment's last gateway call could "
        "have ended (a call our side gave up on may still be finishing at Stripe, its transfer unlisted yet): "
        "before a new key generation, and before `pagos resolver --fallido`. Formerly "
        "PAGOS_RESOLVE_FAILED_AFTER_SECONDS, still read",
    )
    idempotency_key_max_age_seconds: float = Field(
        20 * 3600.0,
        gt=0,
        lt=24 * 3600.0,
        description="a gateway key older than this is renewed (after a lookup) before a retry: Stripe keeps keys 24 h",
    )
    reconcile_grace_seconds: float = Field(300.0, ge=0, description="expired this long: its command is not coming")
    reconcile_interval_seconds: float = Field(30.0, gt=0)
    db_pool_size: int = Field(10, ge=1)
    db_batch_max: int = Field(200, ge=1, description="payments per group-commit transaction at most")
    db_flushes_in_flight: int = Field(1, ge=1, description="group-commit transactions of each kind at once")
    db_flush_linger_ms: float = Field(
        5.0, ge=0, le=1000, description="a group-commit batch waits this long for more payments (0: none)"
    )
    # Every wait on PostgreSQL has an end (adapters/postgres/database.py, `ConnectionLimits`).
    db_statement_timeout_seconds: float = Field(5.0, gt=0, description="server side: a longer statement is cancelled")
    db_command_timeout_seconds: float = Field(
        10.0, gt=0, description="client side: no answer this long drops the connection (it stopped answering)"
    )
    db_flush_timeout_seconds: float = Field(
        6.0, gt=0, description="a group-commit flush unanswered this long drops its connection and is tried again"
    )
    db_connect_timeout_seconds: float = Field(5.0, gt=0)
    db_pool_timeout_seconds: float = Field(10.0, gt=0, description="wait for a free connection of the pool")
    db_keepalive_seconds: int = Field(
        10, ge=1, description="TCP keepalive idle time, both sides: a vanished peer is found in about twice this"
    )
    readiness_stall_seconds: float = Field(
        30.0, gt=0, description="/readyz is 503 while claims or results wait this long with no commit at all"
    )
    retry_backoff_max_seconds: float = Field(
        30.0, ge=0, description="a command that met an outage is held up to this long (growing) before it is put back"
    )

    # Gateway: Stripe's HTTP API.
    pasarela_concurrency: int = Field(100, ge=1, description="gateway calls in flight per replica")
    stripe_api_base: str | None = Field(None, description="https://api.stripe.com")
    stripe_secret_key: SecretStr | None = Field(None, description="sk_live_… / rk_live_… (sk_test_… in test mode)")
    stripe_timeout_seconds: float = Field(10.0, gt=0, description="per HTTP attempt, all phases included")
    stripe_connect_timeout_seconds: float = Field(3.0, gt=0, description="to open a connection (TCP, TLS, proxy)")
    stripe_read_timeout_seconds: float | None = Field(
        None, gt=0, description="between bytes of an answer; unset: up to the per-attempt total"
    )
    stripe_ca_bundle: Path | None = Field(
        None, description="PEM file of extra CAs to trust (a TLS-inspecting egress proxy); unset: the system's"
    )
    stripe_max_attempts: int = Field(4, ge=1, description="attempts per payment before 'outcome unknown'")
    stripe_rate_limit: float = Field(
        100.0, gt=0, description="requests/s for the whole Stripe account, every replica together (100 live, 25 test)"
    )
    stripe_rate_burst: int = Field(20, ge=1, description="requests the account's budget lets through at once")
    stripe_breaker_failures: int = Field(5, ge=1, description="consecutive transient failures that open it")
    stripe_breaker_open_seconds: float = Field(10.0, gt=0)
    stripe_destinations_file: Path | None = Field(None, description="JSON {id_afiliado: acct_...}")
    stripe_destination_template: str | None = Field(
        None, description="test mode only (a sk_test_/rk_test_ key): acct_{id_afiliado} for affiliates not in the file"
    )

    # Reconciliation against Stripe (`pagos-worker conciliar`, and the scheduled pass of the worker and
    # relay roles: one pass an interval across every replica).
    conciliacion_budget_share: float = Field(
        0.2, gt=0, le=1, description="share of the account's Stripe budget a reconciliation may take, in (0, 1]"
    )
    conciliacion_interval_seconds: float = Field(3600.0, gt=0, description="between scheduled passes")
    conciliacion_lookback_seconds: float = Field(
        86400.0, gt=0, description="a scheduled pass's window: this long, ending the settle margin ago"
    )
    conciliacion_max_wait_seconds: float = Field(
        600.0, gt=0, description="Stripe unreadable (429s, an outage) this long fails the run (FALLIDA, exit 2)"
    )

    # Outbox relay.
    relay_batch: int = Field(500, ge=1)
    events_batching: bool = Field(default=True, description="pack published events into batches (not key-based)")
    relay_poll_seconds: float = Field(1.0, gt=0, description="fallback poll when no NOTIFY arrives")
    relay_coalesce_ms: float = Field(20.0, ge=0, description="after a wake-up, wait this long for more events")
    relay_grace_seconds: float = Field(
        5.0, gt=0, description="a worker+relay process publishes its own events; relays take them after this"
    )
    outbox_retention_seconds: float = Field(7 * 24 * 3600.0, ge=0, description="published rows kept this long")
    outbox_cleanup_interval_seconds: float = Field(60.0, gt=0)

    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"

    # Tracing: OpenTelemetry's standard variables, without the PAGOS_ prefix. With an endpoint, spans
    # are exported over OTLP/HTTP (the SDK reads the rest of its OTEL_* variables itself); without
    # one the SDK is not even imported, and a command's traceparent is only carried to its events.
    otel_endpoint: str | None = Field(
        None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="OTLP/HTTP collector, e.g. http://collector:4318; unset: no spans exported",
    )
    otel_sdk_disabled: bool = Field(default=False, validation_alias="OTEL_SDK_DISABLED")
    otel_traces_exporter: str = Field("otlp", validation_alias="OTEL_TRACES_EXPORTER")
    otel_protocol: str = Field(
        "http/protobuf",
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
    )

    def with_urls(self, **urls: str) -> Settings:
        return self.model_copy(update=urls)

    @model_validator(mode="after")
    def _un_intento_cabe_en_el_lease(self) -> Settings:
        # No gateway call outlives a lease (each attempt is sent only if it can end within it), so a
        # retry must fit one lookup and one payout attempt: else it could never pay.
        if self.lease_seconds <= 2 * self.stripe_timeout_seconds + 1:
            raise ValueError(
                "PAGOS_LEASE_SECONDS must exceed 2 × PAGOS_STRIPE_TIMEOUT_SECONDS + 1: a retry looks the payment up "
                "and pays within one lease, and no gateway call outlives it"
            )
        return self

    @model_validator(mode="after")
    def _claves_que_no_pagan_dos_veces(self) -> Settings:
        """The key's life, the attention age and the settle margin must keep the safety model: a
        payment is flagged, and a call under its key listed, before the key may be renewed; and no
        call under a key can still be in flight when Stripe may forget it (24 h)."""
        vida, atencion, margen = (
            self.idempotency_key_max_age_seconds,
            self.attention_after_seconds,
            self.settle_margin_seconds,
        )
        if margen < self.stripe_timeout_seconds:
            raise ValueError(
                f"PAGOS_SETTLE_MARGIN_SECONDS ({margen:g}) must be at least PAGOS_STRIPE_TIMEOUT_SECONDS "
                f"({self.stripe_timeout_seconds:g}): a call our side gave up on may still be running at Stripe"
            )
        if vida < atencion + margen:
            raise ValueError(
                f"PAGOS_IDEMPOTENCY_KEY_MAX_AGE_SECONDS ({vida:g}) must be at least PAGOS_ATTENTION_AFTER_SECONDS "
                f"({atencion:g}) + PAGOS_SETTLE_MARGIN_SECONDS ({margen:g}): a key renewed sooner makes a new "
                "payout the ordinary path for a payment whose outcome is unknown"
            )
        if vida + self.lease_seconds + margen > _STRIPE_RECUERDA_S:
            raise ValueError(
                f"PAGOS_IDEMPOTENCY_KEY_MAX_AGE_SECONDS ({vida:g}) + PAGOS_LEASE_SECONDS ({self.lease_seconds:g}) + "
                f"PAGOS_SETTLE_MARGIN_SECONDS ({margen:g}) must not pass 24 h: Stripe may forget a key after "
                "24 h, and a call sent under it must have ended, and be listed, before that"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _un_solo_valor_del_margen(cls, datos: object) -> object:
        nuevo, viejo = (os.environ.get(f"PAGOS_{n}_SECONDS") for n in ("SETTLE_MARGIN", "RESOLVE_FAILED_AFTER"))
        if nuevo is not None and viejo is not None and nuevo.strip() != viejo.strip():
            raise ValueError(
                f"PAGOS_SETTLE_MARGIN_SECONDS ({nuevo}) and PAGOS_RESOLVE_FAILED_AFTER_SECONDS ({viejo}), its former "
                "name, say different things: set one"
            )
        return datos

    @model_validator(mode="after")
    def _tokens_que_no_se_adivinan(self) -> Settings:
        if any(len(t) < MIN_HTTP_TOKEN for t in self.tokens_http()):
            raise ValueError(
                f"PAGOS_HTTP_TOKENS: every token must be at least {MIN_HTTP_TOKEN} characters (e.g. `openssl rand "
                "-hex 32`): a short one can be guessed, and the logs could not tell it from an ordinary word"
            )
        return self

    @model_validator(mode="after")
    def _tls_de_la_base(self) -> Settings:
        """libpq's TLS parameters in PAGOS_DATABASE_URL, read by asyncpg for every connection."""
        try:
            parametros = dict(parse_qsl(urlsplit(self.database_url or "").query))
        except ValueError:
            return self
        if "ssl" in parametros and "sslmode" in parametros:
            raise ValueError("PAGOS_DATABASE_URL: give sslmode or ssl (the same thing), not both")
        modo = parametros.get("sslmode", parametros.get("ssl"))
        if modo is not None and modo not in _MODOS_TLS:
            raise ValueError(f"PAGOS_DATABASE_URL: sslmode must be one of {', '.join(_MODOS_TLS)}, not {modo!r}")
        return self

    @model_validator(mode="after")
    def _un_solo_token_de_pulsar(self) -> Settings:
        if self.pulsar_token is not None and self.pulsar_token_file is not None:
            raise ValueError("set PAGOS_PULSAR_TOKEN or PAGOS_PULSAR_TOKEN_FILE, not both")
        return self

    @model_validator(mode="after")
    def _trazas_que_se_pueden_exportar(self) -> Settings:
        if self.otel_traces_exporter.strip().lower() not in {"otlp", "none"}:
            raise ValueError("OTEL_TRACES_EXPORTER must be otlp or none: spans are exported over OTLP/HTTP only")
        if self.trazas_activas() and self.otel_protocol.strip().lower() != "http/protobuf":
            raise ValueError("OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf: the only OTLP exporter installed")
        return self

    def trazas_activas(self) -> bool:
        """Whether spans are exported: an OTLP endpoint is set, and neither the SDK nor the traces'
        exporter is turned off."""
        apagadas = self.otel_sdk_disabled or self.otel_traces_exporter.strip().lower() == "none"
        return bool(self.otel_endpoint) and not apagadas

    def tokens_http(self) -> list[str]:
        valor = self.http_tokens.get_secret_value() if self.http_tokens else ""
        return [t.strip() for t in valor.split(",") if t.strip()]

    def secretos(self) -> list[str]:
        """Every secret value these settings hold (the Stripe key, the database's password as
        written and decoded, the tokens; the Pulsar token file's as read now): the logs mask them
        wherever they show up."""
        valores = [s.get_secret_value() for s in (self.stripe_secret_key, self.pulsar_token) if s is not None]
        for url in (self.database_url, self.pulsar_url):
            for password in secretos_de_url(url or ""):
                valores += [password, unquote(password)]
        if self.pulsar_token_file is not None:
            with contextlib.suppress(OSError, UnicodeDecodeError):  # unreadable: the client says so
                valores.append(self.pulsar_token_file.read_text(encoding="utf-8"))
        return [*valores, *self.tokens_http()]

    def http_publico(self) -> bool:
        """Whether the HTTP server binds beyond this machine's loopback."""
        try:
            return not ipaddress.ip_address(self.http_host).is_loopback
        except ValueError:
            return self.http_host != "localhost"

    def faltantes(self, roles: frozenset[str], *, pasarela_propia: bool = False) -> list[str]:
        """The environment variables that these roles need and that are not set (`pasarela_propia`:
        the gateway is given to `bootstrap`, not built from the Stripe settings). The API alone
        reads PostgreSQL and nothing else: it needs no broker."""
        requeridos: dict[str, object] = {"database_url": self.database_url}
        if roles & {"worker", "relay"}:
            requeridos["pulsar_url"] = self.pulsar_url
        if roles & {"worker", "relay"} and not pasarela_propia:  # the relay's reconciler pays too
            requeridos["stripe_api_base"] = self.stripe_api_base
            requeridos["stripe_secret_key"] = self.stripe_secret_key
            # Without the affiliates' accounts every payout would fail as "no destination": a
            # start-up error instead (the template, test mode only, stands in for the file there).
            requeridos["stripe_destinations_file"] = self.stripe_destinations_file or self.stripe_destination_template
        if self.http_publico():
            requeridos["http_tokens"] = self.tokens_http() or None
        return [f"PAGOS_{nombre.upper()}" for nombre, valor in requeridos.items() if valor is None]

    def faltantes_operador(self, *, postgres: bool = True, pulsar: bool = False, pasarela: bool = False) -> list[str]:
        """What an operator's command needs and is not set: PostgreSQL (all but `eventos`); the
        broker to publish or read a topic; the gateway to look a payment up."""
        requeridos: dict[str, object] = {"database_url": self.database_url} if postgres else {}
        if pulsar:
            requeridos["pulsar_url"] = self.pulsar_url
        if pasarela:
            requeridos["stripe_api_base"] = self.stripe_api_base
            requeridos["stripe_secret_key"] = self.stripe_secret_key
        return [f"PAGOS_{nombre.upper()}" for nombre, valor in requeridos.items() if valor is None]
