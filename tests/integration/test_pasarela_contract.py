"""The `PasarelaDePagos` contract, run against the test fake, the in-process simulation and the
Stripe adapter talking HTTP to the simulator."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import SecretStr

from pagos_dev.pasarela_simulada import SimuladaPasarelaDePagos
from pagos_dev.simulacion import Latencia, rechazo
from pagos_worker.adapters.stripe.adapter import Destinos, StripeConfig, StripePasarelaDePagos
from pagos_worker.application.ports.pasarela import PasarelaDePagos, ResultadoPago
from pagos_worker.domain import Dinero, Moneda, Pago
from tests.fakes import FakePasarelaDePagos
from tests.simulador_helpers import simulador_en_marcha


def nuevo_pago(afiliado: str = "afiliado_1", id_pago: uuid.UUID | None = None) -> Pago:
    return Pago.crear(
        id_pago=id_pago or uuid.uuid4(),
        id_afiliado=afiliado,
        importe=Dinero(Decimal("10.00"), Moneda.EUR),
        ahora=datetime.now(UTC),
    )


@dataclass
class Subject:
    pasarela: PasarelaDePagos
    pagado: Callable[[], Pago]
    rechazado: Callable[[], Pago]


@pytest.fixture(params=["fake", "simulada", pytest.param("stripe", marks=pytest.mark.integration)])
async def subject(request) -> AsyncIterator[Subject]:
    if request.param == "fake":
        fake = FakePasarelaDePagos()

        def rechazado_fake() -> Pago:
            p = nuevo_pago()
            fake.respuestas[p.id_pago] = ResultadoPago.fallo("Fondos insuficientes")
            return p

        yield Subject(fake, nuevo_pago, rechazado_fake)
    elif request.param == "simulada":
        simulada = SimuladaPasarelaDePagos(latencia=Latencia.parse("fixed:1"), tasa_fallos=0.5, concurrencia=10)

        def con_destino(rechazar: bool) -> Pago:
            while True:
                p = nuevo_pago()
                if (rechazo(0, p.id_pago, 0.5) is not None) == rechazar:
                    return p

        yield Subject(simulada, lambda: con_destino(False), lambda: con_destino(True))
    else:
        async with simulador_en_marcha() as sim:
            config = StripeConfig(api_base=sim.url, secret_key=SecretStr("sk_test_contrato"))
            async with StripePasarelaDePagos(config, Destinos(template="acct_{id_afiliado}")) as stripe:
                yield Subject(stripe, nuevo_pago, lambda: nuevo_pago("test_balance_insufficient"))


async def test_un_pago_pagado_trae_su_referencia(subject):
    resultado = await subject.pasarela.procesar_pago(subject.pagado())
    assert resultado.exitoso
    assert resultado.referencia_pago
    assert resultado.mensaje_error is None


async def test_un_rechazo_dice_por_que_en_espanol(subject):
    resultado = await subject.pasarela.procesar_pago(subject.rechazado())
    assert not resultado.exitoso
    assert resultado.mensaje_error
    assert resultado.mensaje_error[0].isupper()


async def test_repetir_un_pago_devuelve_el_primer_resultado(subject):
    pagado, rechazado = subject.pagado(), subject.rechazado()
    primero = [await subject.pasarela.procesar_pago(p) for p in (pagado, rechazado)]
    # The same payment again, as a redelivered command or another replica would send it.
    otra_vez = [await subject.pasarela.procesar_pago(nuevo_pago(p.id_afiliado, p.id_pago)) for p in (pagado, rechazado)]
    assert otra_vez == primero


async def test_muchos_pagos_a_la_vez(subject):
    pagos = [subject.pagado() for _ in range(30)]
    resultados = await asyncio.gather(*(subject.pasarela.procesar_pago(p) for p in pagos))
    assert all(r.exitoso for r in resultados)
    assert len({r.referencia_pago for r in resultados}) == 30


# "Available" is an answer that no open circuit holds back (the Stripe adapter's holds for 10 s):
# 5 s tells the two apart and leaves a loaded machine room.
AL_INSTANTE_S = 5.0


async def test_disponible_al_instante_mientras_la_pasarela_responde(subject):
    """Every slot of the worker asks before taking a payment: a healthy gateway answers them all at once."""
    await asyncio.wait_for(asyncio.gather(*(subject.pasarela.esperar_disponible() for _ in range(50))), AL_INSTANTE_S)


async def test_los_rechazos_no_la_hacen_no_disponible(subject):
    """A refusal is a definitive answer from a gateway that works: more of them in a row than the
    Stripe adapter's breaker tolerates failures (5) must not pause intake."""
    for _ in range(7):
        assert not (await subject.pasarela.procesar_pago(subject.rechazado())).exitoso
    await asyncio.wait_for(subject.pasarela.esperar_disponible(), AL_INSTANTE_S)
    assert (await subject.pasarela.procesar_pago(subject.pagado())).exitoso
    await asyncio.wait_for(subject.pasarela.esperar_disponible(), AL_INSTANTE_S)
