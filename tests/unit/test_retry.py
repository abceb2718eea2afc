"""Which errors are an outage of PostgreSQL (transient: the command waits and comes back) and which
belong to the statement (counted toward the poison limit), by SQLSTATE class and code."""

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from pagos_worker.adapters.postgres.retry import is_transient, retry_transient, transient_sqlstate

TRANSITORIOS = [
    "08006",  # connection failure
    "08P01",
    "40001",  # serialization failure
    "40P01",  # deadlock
    "53100",  # disk full
    "53200",  # out of memory
    "53300",  # too many connections
    "57014",  # statement timeout / cancel
    "57P01",  # admin shutdown
    "57P03",  # cannot connect now
    "58030",  # I/O error
    "25006",  # read-only transaction: a standby, a failover
    "55P03",  # lock not available
]
DETERMINISTAS = ["22001", "22003", "22P02", "23505", "23514", "42601", "42P01", "25P02", "55000", "XX000"]


@pytest.mark.parametrize("sqlstate", TRANSITORIOS)
def test_una_caida_es_transitoria(sqlstate):
    assert transient_sqlstate(sqlstate)
    error = asyncpg.PostgresError.new({"C": sqlstate, "M": "x", "S": "ERROR"})
    assert error.sqlstate == sqlstate
    assert is_transient(error)


@pytest.mark.parametrize("sqlstate", DETERMINISTAS)
def test_un_error_de_la_sentencia_no_lo_es(sqlstate):
    assert not transient_sqlstate(sqlstate)
    assert not is_transient(asyncpg.PostgresError.new({"C": sqlstate, "M": "x", "S": "ERROR"}))


class _DriverError(Exception):
    def __init__(self, sqlstate):
        super().__init__("x")
        self.sqlstate = sqlstate


def test_envuelto_por_sqlalchemy_se_mira_el_sqlstate():
    assert is_transient(sa_exc.DBAPIError("SELECT 1", {}, _DriverError("25006")))
    assert not is_transient(sa_exc.DBAPIError("SELECT 1", {}, _DriverError("23514")))


def test_los_plazos_y_las_conexiones_perdidas_son_transitorios():
    assert is_transient(TimeoutError())
    assert is_transient(sa_exc.TimeoutError("QueuePool limit reached"))  # the pool had none free
    assert is_transient(ConnectionResetError())
    assert is_transient(asyncpg.ConnectionDoesNotExistError("closed"))
    assert not is_transient(KeyError("bug"))
    assert not is_transient(ValueError("bug"))


async def test_reintenta_lo_transitorio_y_no_lo_demas():
    intentos = []

    async def solo_lectura_dos_veces():
        intentos.append(1)
        if len(intentos) <= 2:
            raise asyncpg.PostgresError.new({"C": "25006", "M": "read-only", "S": "ERROR"})
        return "ok"

    assert await retry_transient(solo_lectura_dos_veces, max_delay=0.01) == "ok"
    assert len(intentos) == 3

    async def bug():
        intentos.append(1)
        raise asyncpg.PostgresError.new({"C": "22012", "M": "division by zero", "S": "ERROR"})

    intentos.clear()
    with pytest.raises(asyncpg.PostgresError):
        await retry_transient(bug, max_delay=0.01)
    assert len(intentos) == 1
