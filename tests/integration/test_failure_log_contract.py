"""The `FailureLog` contract, run against the fake and PostgreSQL alike: failures are counted per
message id, across callers, and the one that reaches the limit records the command as poison."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from pagos_worker.adapters.postgres.fallos import PostgresFailureLog
from pagos_worker.application.ports.fallos import FalloDeComando
from tests.fakes import FakeFailureLog


class Subject:
    def __init__(self, log, venenoso) -> None:
        self.log = log
        self.venenoso = venenoso  # message id -> (id_pago, error) recorded as poison, or None


@pytest.fixture(params=["fake", pytest.param("postgres", marks=pytest.mark.integration)])
def subject(request) -> Subject:
    if request.param == "fake":
        fake = FakeFailureLog()

        async def venenoso_fake(message_id):
            fallo = fake.venenosos.get(message_id)
            return None if fallo is None else (fallo.id_pago, fallo.error)

        return Subject(fake, venenoso_fake)
    engine = request.getfixturevalue("engine")

    async def venenoso_pg(message_id):
        async with engine.connect() as conn:
            fila = (
                await conn.execute(
                    text(
                        "SELECT id_pago, ultimo_error FROM comandos_fallidos "
                        "WHERE message_id = :m AND venenoso_desde IS NOT NULL"
                    ),
                    {"m": message_id},
                )
            ).first()
        return None if fila is None else (fila.id_pago, fila.ultimo_error)

    return Subject(PostgresFailureLog(engine), venenoso_pg)


def fallo(message_id: str, error: str = "KeyError: x", id_pago: uuid.UUID | None = None) -> FalloDeComando:
    return FalloDeComando(message_id=message_id, id_pago=id_pago, error=error)


async def test_cuenta_por_mensaje(subject):
    assert [await subject.log.contar_fallo(fallo("1:0"), limite=5) for _ in range(3)] == [1, 2, 3]
    assert await subject.log.contar_fallo(fallo("2:0"), limite=5) == 1


async def test_antes_del_limite_no_hay_veneno_y_al_llegar_queda_registrado(subject):
    id_pago = uuid.uuid4()
    assert await subject.log.contar_fallo(fallo("7:0", id_pago=id_pago), limite=2) == 1
    assert await subject.venenoso("7:0") is None
    assert await subject.log.contar_fallo(fallo("7:0", "ValueError: y", id_pago), limite=2) == 2
    registrado = await subject.venenoso("7:0")
    assert registrado is not None
    assert registrado[0] == id_pago


async def test_sin_id_de_pago_tambien_se_registra(subject):
    assert await subject.log.contar_fallo(fallo("9:0"), limite=1) == 1
    registrado = await subject.venenoso("9:0")
    assert registrado is not None
    assert registrado[0] is None


async def test_cuentas_concurrentes_no_se_pierden(subject):
    """Replicas count the same message at once: every failure is counted, once."""
    cuentas = await asyncio.gather(*(subject.log.contar_fallo(fallo("5:0"), limite=100) for _ in range(10)))
    assert sorted(cuentas) == list(range(1, 11))
