"""Fixtures of the integration tests that talk to the Stripe simulator over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.simulador_helpers import AUTH, SimuladorEnMarcha, simulador_en_marcha
from tests.simulador_sdk import Reloj, Sdk


@pytest.fixture
async def sim() -> AsyncIterator[SimuladorEnMarcha]:
    """The simulator with no faults, and an HTTP session (`sim.http`) that authenticates to it."""
    async with simulador_en_marcha() as s, aiohttp.ClientSession(headers=AUTH) as http:
        s.http = http  # type: ignore[attr-defined]
        yield s


@pytest.fixture
async def sdk() -> AsyncIterator[Sdk]:
    """Stripe's SDK against a simulator with no faults (`sdk.sim`) whose clock the test moves (`sdk.reloj`)."""
    reloj = Reloj()
    async with simulador_en_marcha(reloj=reloj) as sim:
        cliente = Sdk(sim.url)
        cliente.sim, cliente.reloj = sim, reloj  # type: ignore[attr-defined]
        yield cliente
