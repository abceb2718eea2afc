"""The Stripe simulator served over real TCP in the test's event loop."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pagos_dev.simulador.app import Simulador
from pagos_dev.simulador.fallas import Fallas
from pagos_dev.simulador.ledger import Ledger
from tests.conftest import free_port
from tests.stripe_spec import validar_respuesta

AUTH = {"Authorization": "Bearer sk_test_pruebas"}


def form(destination: str = "acct_123", amount: str = "1050", **extra: str) -> dict[str, str]:
    """A transfer's form fields, as a client would post them."""
    return {"amount": amount, "currency": "usd", "destination": destination, "metadata[id_pago]": "p1", **extra}


@dataclass
class SimuladorEnMarcha:
    simulador: Simulador
    url: str


@contextlib.asynccontextmanager
async def simulador_en_marcha(
    fallas: Fallas | None = None,
    archivo: Path | None = None,
    port: int | None = None,
    *,
    ttl_claves_s: float = 24 * 3600,
    reloj: Callable[[], float] = time.time,
) -> AsyncIterator[SimuladorEnMarcha]:
    fallas = fallas or Fallas(latencia="fixed:0", tasa_rechazo=0)
    simulador = Simulador(fallas, Ledger(archivo, ttl_claves_s=ttl_claves_s), semilla=1, reloj=reloj)
    servidor = simulador.servidor()
    port = port or free_port()
    await servidor.escuchar("127.0.0.1", port)
    try:
        yield SimuladorEnMarcha(simulador, f"http://127.0.0.1:{port}")
    finally:
        await servidor.cerrar(espera=0.5)
        simulador.cerrar()


async def pedir(sim: Any, metodo: str, ruta: str, *, data: Any = None, params: Any = None,
                headers: dict[str, str] | None = None, http: Any = None) -> tuple[int, Any, Any]:  # fmt: skip
    """One request (through `sim.http` unless `http`); its body checked against the spec, and it
    must carry a Request-Id."""
    async with (http or sim.http).request(metodo, sim.url + ruta, data=data, params=params, headers=headers) as resp:
        cuerpo = await resp.read()
        assert resp.headers["Request-Id"].startswith("req_")
        validar_respuesta(metodo, ruta.split("?", maxsplit=1)[0], resp.status, cuerpo)
        return resp.status, orjson.loads(cuerpo), resp.headers
