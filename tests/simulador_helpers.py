"""The Stripe simulator served over real TCP in the test's event loop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from pagos_dev.simulador.app import Simulador
from pagos_dev.simulador.fallas import Fallas
from pagos_dev.simulador.ledger import Ledger
from tests.conftest import free_port

AUTH = {"Authorization": "Bearer sk_test_pruebas"}


@dataclass
class SimuladorEnMarcha:
    simulador: Simulador
    url: str


@contextlib.asynccontextmanager
async def simulador_en_marcha(
    fallas: Fallas | None = None, archivo: Path | None = None, port: int | None = None
) -> AsyncIterator[SimuladorEnMarcha]:
    simulador = Simulador(fallas or Fallas(latencia="fixed:0", tasa_rechazo=0), Ledger(archivo), semilla=1)
    servidor = simulador.servidor()
    port = port or free_port()
    await servidor.escuchar("127.0.0.1", port)
    try:
        yield SimuladorEnMarcha(simulador, f"http://127.0.0.1:{port}")
    finally:
        await servidor.cerrar(espera=0.5)
        simulador.cerrar()
