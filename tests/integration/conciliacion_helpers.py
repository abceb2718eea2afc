"""Both sides of a reconciliation planted by hand: payments and reversals as rows of the service's
books, transfers and reversals at the simulator (over HTTP) at the times the test says."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker.adapters.postgres.conciliacion import PostgresRegistroDeConciliaciones
from pagos_worker.adapters.postgres.database import DEFAULT_LIMITS
from pagos_worker.adapters.stripe.adapter import Destinos
from pagos_worker.adapters.stripe.libro import StripeLibroDeLaPasarela
from pagos_worker.application.conciliacion import ConciliarHandler
from tests.integration.test_stripe_adapter import SECRETO, adaptador
from tests.simulador_helpers import simulador_en_marcha
from tests.simulador_sdk import Reloj

AUTH = {"Authorization": f"Bearer {SECRETO}"}
T0 = datetime(2026, 11, 30, tzinfo=UTC)  # the window: that whole day
T1 = T0 + timedelta(days=1)
DESTINOS = Destinos({"afiliado_mapa": "acct_mapeado"}, "acct_{id_afiliado}")


@dataclass
class Escena:
    engine: AsyncEngine
    url: str
    reloj: Reloj
    http: aiohttp.ClientSession
    handler: ConciliarHandler
    registro: PostgresRegistroDeConciliaciones

    async def transfer(self, grupo: str, amount: int, *, currency: str = "usd", destino: str = "acct_af1",
                       en: datetime) -> str:  # fmt: skip
        """A transfer made directly on the simulator, created at `en`."""
        self.reloj.ahora = en.timestamp()
        datos = {"amount": str(amount), "currency": currency, "destination": destino, "transfer_group": grupo}
        async with self.http.post(f"{self.url}/v1/transfers", data=datos) as r:
            assert r.status == 200, await r.text()
            return str((await r.json())["id"])

    async def reversal(self, tr: str, amount: int, id_reverso: uuid.UUID | None = None) -> str:
        """A reversal at the simulator: ours (with `metadata[id_reverso]`) or the dashboard's."""
        datos = {"amount": str(amount)} | ({"metadata[id_reverso]": str(id_reverso)} if id_reverso else {})
        async with self.http.post(f"{self.url}/v1/transfers/{tr}/reversals", data=datos) as r:
            assert r.status == 200, await r.text()
            return str((await r.json())["id"])

    async def pago(self, estado: str = "EXITOSO", *, monto: str = "10.00", moneda: str = "USD",
                   afiliado: str = "af1", referencia: str | None = None, procesado: datetime | None = None,
                   id_pago: uuid.UUID | None = None) -> uuid.UUID:  # fmt: skip
        id_pago = id_pago or uuid.uuid4()
        async with self.engine.begin() as conn:
            await conn.execute(
                text("""INSERT INTO pagos (id_pago, id_afiliado, monto, moneda, estado, referencia_pago,
                        fecha_creacion, fecha_procesamiento) VALUES (:i, :a, :m, :mo, :e, :r, :c, :p)"""),
                {"i": id_pago, "a": afiliado, "m": Decimal(monto), "mo": moneda, "e": estado, "r": referencia,
                 "c": (procesado or T0) - timedelta(seconds=1), "p": procesado},
            )  # fmt: skip
        return id_pago

    async def pagado(self, *, monto: int = 1000, afiliado: str = "af1", en: datetime | None = None,
                     procesado: datetime | None = None,
                     destino: str | None = None) -> tuple[uuid.UUID, str]:  # fmt: skip
        """A payment paid as the service pays: its transfer, then its row EXITOSO."""
        id_pago = uuid.uuid4()
        creado = en or T0 + timedelta(hours=1)
        tr = await self.transfer(str(id_pago), monto, destino=destino or f"acct_{afiliado}", en=creado)
        await self.pago(monto=f"{Decimal(monto) / 100:.2f}", afiliado=afiliado, referencia=tr, id_pago=id_pago,
                        procesado=procesado or creado + timedelta(seconds=1))  # fmt: skip
        return id_pago, tr

    async def reverso(self, id_pago: uuid.UUID, monto: str, estado: str = "EXITOSO",
                      referencia: str | None = None) -> uuid.UUID:  # fmt: skip
        id_reverso = uuid.uuid4()
        async with self.engine.begin() as conn:
            await conn.execute(
                text("""INSERT INTO reversos (id_reverso, id_pago, monto_pedido, motivo, estado, monto, moneda,
                        referencia_reverso, fecha_creacion, fecha_procesamiento)
                        VALUES (:r, :i, :m, 'fraude', :e, :m, 'USD', :ref, :f, :f)"""),
                {"r": id_reverso, "i": id_pago, "m": Decimal(monto), "e": estado, "ref": referencia,
                 "f": T0 + timedelta(hours=2)},
            )  # fmt: skip
        return id_reverso


@asynccontextmanager
async def escena(engine: AsyncEngine, database_url: str) -> AsyncIterator[Escena]:
    async with engine.begin() as conn:
        await conn.exec_driver_sql("TRUNCATE diferencias, conciliaciones, reversos, pagos CASCADE")
    reloj = Reloj()
    async with (
        simulador_en_marcha(reloj=reloj) as sim,
        aiohttp.ClientSession(headers=AUTH) as http,
        adaptador(sim.url) as pasarela,
    ):
        libro = StripeLibroDeLaPasarela(pasarela, cuota_por_s=1000.0, espera_maxima_s=1.0)
        registro = PostgresRegistroDeConciliaciones(database_url, DEFAULT_LIMITS, DESTINOS)
        handler = ConciliarHandler(registro, libro, margen=timedelta(minutes=5))
        yield Escena(engine, sim.url, reloj, http, handler, registro)
