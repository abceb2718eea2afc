"""The reconciliation's window: the last whole settled UTC day by default, one bound alone is a
day, whole seconds, and nothing later than now less the settle margin."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from pagos_worker.application.conciliacion import (
    ResultadoConciliacion,
    Ventana,
    VentanaInvalidaError,
    resolver_ventana,
    ventana_programada,
)
from pagos_worker.config import Settings
from pagos_worker.domain.conciliacion import DIFERENCIAS, ClaseDiferencia
from pagos_worker.entrypoints.conciliar_cli import fecha_utc

MARGEN = timedelta(minutes=5)
AHORA = datetime(2026, 12, 6, 10, 30, 15, 123456, tzinfo=UTC)
DIA = timedelta(days=1)


def test_por_omision_el_ultimo_dia_entero():
    v = resolver_ventana(None, None, ahora=AHORA, margen=MARGEN)
    assert v == Ventana(datetime(2026, 12, 5, tzinfo=UTC), datetime(2026, 12, 6, tzinfo=UTC))


def test_recien_pasada_la_medianoche_el_dia_anterior_aun_no_asentado_no_cuenta():
    ahora = datetime(2026, 12, 6, 0, 2, tzinfo=UTC)  # within the margin of midnight
    v = resolver_ventana(None, None, ahora=ahora, margen=MARGEN)
    assert v == Ventana(datetime(2026, 12, 4, tzinfo=UTC), datetime(2026, 12, 5, tzinfo=UTC))


def test_un_solo_limite_es_un_dia():
    desde = datetime(2026, 12, 1, tzinfo=UTC)
    assert resolver_ventana(desde, None, ahora=AHORA, margen=MARGEN) == Ventana(desde, desde + DIA)
    assert resolver_ventana(None, desde, ahora=AHORA, margen=MARGEN) == Ventana(desde - DIA, desde)


def test_segundos_enteros():
    v = resolver_ventana(
        datetime(2026, 12, 1, 0, 0, 1, 999, tzinfo=UTC),
        datetime(2026, 12, 1, 1, tzinfo=UTC),
        ahora=AHORA,
        margen=MARGEN,
    )
    assert v.desde == datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("desde", "hasta", "mensaje"),
    [
        (AHORA - DIA, AHORA, "margen de asentamiento"),  # not settled yet
        (AHORA - DIA, AHORA - MARGEN + timedelta(seconds=2), "margen de asentamiento"),
        (AHORA - DIA, AHORA - 2 * DIA, "vacía"),
        (AHORA - DIA, AHORA - DIA, "vacía"),
    ],
)
def test_ventanas_que_se_rechazan(desde, hasta, mensaje):
    with pytest.raises(VentanaInvalidaError, match=mensaje):
        resolver_ventana(desde, hasta, ahora=AHORA, margen=MARGEN)


def test_la_ventana_programada_termina_el_margen_atras():
    v = ventana_programada(AHORA, retroceso=DIA, margen=MARGEN)
    assert v.hasta == datetime(2026, 12, 6, 10, 25, 15, tzinfo=UTC)
    assert v.hasta - v.desde == DIA


@pytest.mark.parametrize(
    ("texto", "esperado"),
    [
        ("2026-12-06", datetime(2026, 12, 6, tzinfo=UTC)),
        ("2026-12-06T00:00:00Z", datetime(2026, 12, 6, tzinfo=UTC)),
        ("2026-12-06T10:00:00+02:00", datetime(2026, 12, 6, 8, tzinfo=UTC)),
        ("2026-12-06T10:00:00", datetime(2026, 12, 6, 10, tzinfo=UTC)),
    ],
)
def test_fechas_de_la_linea_de_comandos(texto, esperado):
    assert fecha_utc(texto) == esperado


@pytest.mark.parametrize("texto", ["ayer", "2h", "2026-13-01", ""])
def test_fechas_que_no_son(texto):
    with pytest.raises(argparse.ArgumentTypeError):
        fecha_utc(texto)


def test_coincide_todo_solo_sin_diferencias():
    ventana = Ventana(AHORA - DIA, AHORA)
    limpio = {ClaseDiferencia.COINCIDE: 3, **dict.fromkeys(DIFERENCIAS, 0)}
    assert ResultadoConciliacion(1, ventana, limpio, [], 1, 0.1).coincide_todo
    sucio = {**limpio, ClaseDiferencia.REVERSO_EXTERNO: 1}
    assert not ResultadoConciliacion(1, ventana, sucio, [], 1, 0.1).coincide_todo


BASE = {"database_url": "postgresql+asyncpg://u@db/p", "pulsar_url": "pulsar://b:6650"}


def test_ajustes_por_omision():
    s = Settings(_env_file=None, **BASE)
    assert (s.conciliacion_budget_share, s.conciliacion_interval_seconds, s.conciliacion_lookback_seconds) == (
        0.2,
        3600.0,
        86400.0,
    )


@pytest.mark.parametrize(
    "cambio",
    [
        {"conciliacion_budget_share": 0},
        {"conciliacion_budget_share": 1.5},
        {"conciliacion_interval_seconds": 0},
        {"conciliacion_lookback_seconds": 0},
        {"conciliacion_max_wait_seconds": 0},
    ],
)
def test_ajustes_que_no_arrancan(cambio):
    with pytest.raises(ValueError, match="conciliacion"):
        Settings(_env_file=None, **BASE, **cambio)
