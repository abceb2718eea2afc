"""The reconciliation's unresolved differences on the attention list (`pagos atencion`, GET
/pagos/atencion), in its count (the gauge), and with their payment (`pagos ver`): fake views."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pagos_worker import observability as metrics
from pagos_worker.application.queries import (
    Atencion,
    CausaAtencion,
    FiltroAtencion,
    ListarPagosQueRequierenAtencionHandler,
    ObtenerEstadoPago,
    ObtenerEstadoPagoHandler,
)
from pagos_worker.domain import Dinero, Moneda, Pago
from pagos_worker.entrypoints import operador_salida as salida
from tests.fake_views import FakePagoViews
from tests.fakes import FakePagoRepository
from tests.unit.test_http_api import DIFERENCIA, DIFERENCIA_JSON

AYER = datetime(2026, 1, 2, 3, tzinfo=UTC)


def vistas_con_diferencias() -> tuple[FakePagoViews, Pago]:
    repo = FakePagoRepository()
    pago = Pago.crear(
        id_pago=DIFERENCIA.id_pago, id_afiliado="af", importe=Dinero(Decimal("100.50"), Moneda.USD), ahora=AYER
    )
    repo.pagos[pago.id_pago] = pago
    views = FakePagoViews(repo)
    otra = dataclasses.replace(
        DIFERENCIA, id=8, clase="reverso_externo", id_pago=uuid.uuid4(), referencia="trr_1", creada=AYER + timedelta(1)
    )
    resuelta = dataclasses.replace(DIFERENCIA, id=6, resuelta_en=AYER, resuelta_por="ana", nota="visto")
    views.diferencias = [otra, DIFERENCIA, resuelta]
    return views, pago


async def test_la_lista_de_atencion_trae_las_diferencias_sin_resolver_la_mas_antigua_primero():
    views, _ = vistas_con_diferencias()
    atencion = ListarPagosQueRequierenAtencionHandler(views)
    assert [d.id for d in (await atencion()).diferencias] == [7, 8]
    assert [d.id for d in (await atencion(1)).diferencias] == [7]  # at most `limite` of each list
    assert await views.contar_requieren_atencion() == 2  # the resolved one no longer counts


async def test_el_filtro_de_antiguedad_se_aplica_y_una_causa_las_deja_fuera():
    views, _ = vistas_con_diferencias()
    atencion = ListarPagosQueRequierenAtencionHandler(views)
    assert [d.id for d in (await atencion(100, FiltroAtencion(AYER + timedelta(hours=1)))).diferencias] == [7]
    for causa in CausaAtencion:  # a difference has none of the causes of payments, reversals or commands
        assert (await atencion(100, FiltroAtencion(causa=causa))).diferencias == []


async def test_ver_un_pago_trae_sus_diferencias_sin_resolver():
    views, pago = vistas_con_diferencias()
    vista = await ObtenerEstadoPagoHandler(views)(ObtenerEstadoPago(pago.id_pago))
    assert [d.id for d in vista.diferencias] == [7]


async def test_pagos_ver_las_muestra_en_texto_y_en_json(capsys):
    views, pago = vistas_con_diferencias()
    vista = await views.estado_pago(pago.id_pago)
    salida.pago(vista, como_json=True)
    assert json.loads(capsys.readouterr().out)["diferencias"] == [DIFERENCIA_JSON]
    salida.pago(vista, como_json=False)
    out = capsys.readouterr().out
    assert "diferencias sin resolver: 1" in out
    for esperado in ("transferencia_sin_exito (crítica)", "tr_9", "2026-01-02T03:00:00.000Z", '"destino":"acct_1"'):
        assert esperado in out, esperado


def test_pagos_atencion_las_lista_en_texto_y_en_json(capsys):
    salida.atencion(Atencion([], [], [], [DIFERENCIA]), como_json=True)
    cuerpo = json.loads(capsys.readouterr().out)
    assert cuerpo["diferencias"] == [DIFERENCIA_JSON]
    assert (cuerpo["pagos"], cuerpo["reversos"], cuerpo["comandos_venenosos"]) == ([], [], [])
    salida.atencion(Atencion([], [], [], [DIFERENCIA]), como_json=False)
    out = capsys.readouterr().out
    assert "diferencias de la conciliación sin resolver: 1" in out
    for esperado in (str(DIFERENCIA.id_pago), "transferencia_sin_exito", "tr_9", '"estado":"PROCESANDO"'):
        assert esperado in out, esperado
    salida.atencion(Atencion([], [], []), como_json=False)
    assert "diferencias" not in capsys.readouterr().out  # none: no table


async def test_el_gauge_de_atencion_suma_las_diferencias():
    stop = asyncio.Event()

    async def contar() -> tuple[int, int, int]:
        stop.set()
        return 1, 2, 3

    await metrics.muestrear_atencion(contar, stop, intervalo=0)
    assert metrics.REQUIEREN_ATENCION._value.get() == 6
    assert metrics.REVERSOS_ATENCION._value.get() == 2
