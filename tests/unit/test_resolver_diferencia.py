"""`pagos-worker conciliacion resolver`: closing a recorded difference once handled (a fake store),
what it prints, and how it reads its arguments (exit status 2 for what does not parse); and what
`pagos resolver` prints of the differences it closed with the payment."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import structlog

from pagos_worker.application.diferencias import ResolverDiferenciaHandler
from pagos_worker.application.operador import OperacionRechazadaError, PagoResuelto
from pagos_worker.application.ports.operador import Resolucion
from pagos_worker.application.queries import VistaDiferencia
from pagos_worker.domain import Dinero, EstadoPago, Lease, Moneda, Pago
from pagos_worker.entrypoints import cli
from pagos_worker.entrypoints import operador_salida as salida
from tests.unit.test_http_api import DIFERENCIA, DIFERENCIA_JSON
from tests.unit.test_operador_salida import sin_ajustes  # noqa: F401 - a fixture

AHORA = datetime(2026, 1, 3, 9, tzinfo=UTC)


class FakeDiferencias:
    """The store's fence: only an unresolved one is closed."""

    def __init__(self, *diferencias: VistaDiferencia) -> None:
        self.filas = {d.id: d for d in diferencias}

    async def resolver(self, id_diferencia: int, *, operador: str, nota: str) -> VistaDiferencia | None:
        fila = self.filas.get(id_diferencia)
        if fila is None or fila.resuelta_en is not None:
            return None
        self.filas[id_diferencia] = dataclasses.replace(fila, resuelta_en=AHORA, resuelta_por=operador, nota=nota)
        return self.filas[id_diferencia]

    async def obtener(self, id_diferencia: int) -> VistaDiferencia | None:
        return self.filas.get(id_diferencia)


async def test_la_cierra_y_no_dos_veces():
    store = FakeDiferencias(DIFERENCIA)
    resolver = ResolverDiferenciaHandler(store)
    resuelta = await resolver(DIFERENCIA.id, operador="ana", nota="pagado por otro sistema")
    assert (resuelta.resuelta_en, resuelta.resuelta_por, resuelta.nota) == (AHORA, "ana", "pagado por otro sistema")
    with pytest.raises(OperacionRechazadaError, match=r"ya estaba resuelta \(ana, 2026-01-03T09:00:00\+00:00"):
        await resolver(DIFERENCIA.id, operador="luis", nota="otra")
    assert store.filas[DIFERENCIA.id].resuelta_por == "ana"
    with pytest.raises(OperacionRechazadaError, match="no existe la diferencia 99"):
        await resolver(99, operador="ana", nota="x")


def test_lo_que_imprime(capsys):
    resuelta = dataclasses.replace(DIFERENCIA, resuelta_en=AHORA, resuelta_por="ana", nota="visto")
    salida.diferencia_resuelta(resuelta, como_json=True)
    cuerpo = json.loads(capsys.readouterr().out)
    assert cuerpo == {**DIFERENCIA_JSON, "resuelta_en": "2026-01-03T09:00:00.000Z", "resuelta_por": "ana",
                      "nota": "visto"}  # fmt: skip
    salida.diferencia_resuelta(resuelta, como_json=False)
    out = capsys.readouterr().out
    for esperado in ("diferencia 7", "transferencia_sin_exito (crítica)", str(DIFERENCIA.id_pago), "tr_9",
                     "resuelta por ana el 2026-01-03T09:00:00.000Z", "nota: visto", "ningún pago cambió"):  # fmt: skip
        assert esperado in out, esperado


@pytest.fixture
def logs_restaurados() -> Iterator[None]:
    """`cli.main` sets logging up on this test's captured stderr, closed after it: put back as it was,
    or a later test's first log line would go to a closed file."""
    antes, raiz = structlog.get_config(), logging.getLogger()
    handlers, nivel = raiz.handlers[:], raiz.level
    yield
    structlog.configure(**antes)
    raiz.handlers[:], raiz.level = handlers, nivel


def test_sus_argumentos(sin_ajustes, logs_restaurados, capsys):  # noqa: F811 - the fixture
    assert cli.main(["conciliacion", "resolver", "7", "--nota", "visto"]) == 2
    assert "faltan ajustes: PAGOS_DATABASE_URL" in capsys.readouterr().err
    for argumentos, esperado in (
        (["conciliacion", "resolver", "siete", "--nota", "x"], "no es el id de una diferencia"),
        (["conciliacion", "resolver", "0", "--nota", "x"], "no es el id de una diferencia"),
        (["conciliacion", "resolver", "7", "--nota", "  "], "no puede estar vacío"),
        (["conciliacion", "resolver", "7"], "--nota"),
    ):
        with pytest.raises(SystemExit) as fin:
            cli.main(argumentos)
        assert fin.value.code == 2
        assert esperado in capsys.readouterr().err


def test_pagos_resolver_dice_que_diferencias_cerro(capsys):
    pago = Pago.crear(id_pago=DIFERENCIA.id_pago, id_afiliado="af", importe=Dinero(Decimal("100.50"), Moneda.USD),
                      ahora=AHORA)  # fmt: skip
    pago.iniciar_procesamiento(Lease("operador:ana", AHORA), AHORA)
    pago.marcar_exitoso("tr_9", AHORA)
    resolucion = Resolucion("ana", AHORA, "transfer tr_9 hallado en la pasarela", EstadoPago.EXITOSO, ())
    salida.resuelto(PagoResuelto(pago, resolucion, 1, (7,)), como_json=True)
    assert json.loads(capsys.readouterr().out)["diferencias_resueltas"] == [7]
    salida.resuelto(PagoResuelto(pago, resolucion, 1, (7,)), como_json=False)
    assert "diferencias de la conciliación resueltas con él: 7" in capsys.readouterr().out
    salida.resuelto(PagoResuelto(pago, resolucion, 1), como_json=False)
    assert "diferencias" not in capsys.readouterr().out  # none closed: not mentioned
    salida.resuelto(PagoResuelto(pago, resolucion, 1), como_json=True)
    assert json.loads(capsys.readouterr().out)["diferencias_resueltas"] == []
