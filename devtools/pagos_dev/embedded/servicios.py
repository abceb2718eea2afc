"""The embedded default: a PostgreSQL, a Pulsar-protocol broker and the Stripe simulator, each
started here only for what the settings leave unset (`make run`, the tests, bench and chaos).
The broker is pulsar-lite (no JVM), or Apache Pulsar standalone with `broker="pulsar"`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

from pagos_dev.embedded.postgres import EmbeddedPostgres
from pagos_dev.embedded.pulsar import EmbeddedPulsar
from pagos_dev.embedded.pulsar_apache import EmbeddedApachePulsar
from pagos_dev.embedded.simulador import EmbeddedSimulador
from pagos_dev.settings import SIMULADOR_DESTINATION_TEMPLATE, SIMULADOR_SECRET_KEY, DevSettings
from pagos_worker.config import Settings

EMBEDDED_DATABASE = "pagos"


@dataclass
class Embedded:
    """What `embedded_services` started, and the service's settings pointing at it."""

    settings: Settings
    postgres: EmbeddedPostgres | None = None
    pulsar: EmbeddedPulsar | EmbeddedApachePulsar | None = None
    simulador: EmbeddedSimulador | None = None

    def notas(self) -> dict[str, str]:
        """Where each embedded server keeps its data, for the service's start-up lines."""
        s = self.settings
        notas: dict[str, str] = {}
        if self.postgres is not None:
            notas["postgres"] = f" (embedded, data in {self.postgres.data_dir})"
        if isinstance(self.pulsar, EmbeddedApachePulsar):
            notas["pulsar"] = (
                f" (embedded Apache Pulsar standalone, admin API at {self.pulsar.admin_url}, data in "
                f"{self.pulsar.data_dir})"
            )
        elif self.pulsar is not None:
            notas["pulsar"] = f" (embedded pulsar-lite, data in {self.pulsar.data_dir})"
        if self.simulador is not None:
            notas["gateway"] = (
                f"Stripe SIMULATOR at {s.stripe_api_base} (embedded, no real money; "
                f"payouts: GET {s.stripe_api_base}/v1/transfers)"
            )
        return notas


@asynccontextmanager
async def embedded_services(
    dev: DevSettings,
    settings: Settings,
    *,
    simulador: bool = True,
    graceful_proxy: bool = False,
    broker: Literal["pulsar-lite", "pulsar"] = "pulsar-lite",
) -> AsyncIterator[Embedded]:
    """Start what `settings` leaves unset (the simulator only if `simulador`); stop it on exit.
    `graceful_proxy` is pulsar-lite's (Apache Pulsar needs none: ADR 0005)."""
    async with AsyncExitStack() as stack:
        urls: dict[str, object] = {}
        embedded = Embedded(settings)
        if settings.database_url is None:
            embedded.postgres = EmbeddedPostgres(dev.data_dir / "postgres", port=dev.embedded_postgres_port)
            await embedded.postgres.start()
            stack.push_async_callback(embedded.postgres.stop)
            await embedded.postgres.create_database(EMBEDDED_DATABASE)
            urls["database_url"] = embedded.postgres.url(EMBEDDED_DATABASE)
        if settings.pulsar_url is None and broker == "pulsar":
            embedded.pulsar = EmbeddedApachePulsar(
                dev.data_dir / "pulsar-apache", port=dev.embedded_pulsar_port, web_port=dev.embedded_pulsar_admin_port
            )
        elif settings.pulsar_url is None:
            embedded.pulsar = EmbeddedPulsar(
                dev.data_dir / "pulsar", port=dev.embedded_pulsar_port, graceful_proxy=graceful_proxy
            )
        if embedded.pulsar is not None:
            await embedded.pulsar.start()
            stack.push_async_callback(embedded.pulsar.close)
            urls["pulsar_url"] = embedded.pulsar.url
        if simulador and settings.stripe_api_base is None:
            embedded.simulador = EmbeddedSimulador(
                dev.data_dir / "simulador", host=dev.simulador_host, port=dev.simulador_port
            )
            await embedded.simulador.start()
            stack.push_async_callback(embedded.simulador.stop)
            urls["stripe_api_base"] = embedded.simulador.url
            # The simulator's own test key and account per affiliate; never the service's defaults.
            if settings.stripe_secret_key is None:
                urls["stripe_secret_key"] = SecretStr(SIMULADOR_SECRET_KEY)
            if settings.stripe_destination_template is None and settings.stripe_destinations_file is None:
                urls["stripe_destination_template"] = SIMULADOR_DESTINATION_TEMPLATE
        embedded.settings = settings.model_copy(update=urls)
        yield embedded
