"""The scheduled reconciliation: a pass on the look-back window, skipped while another holds the
lock, and a failed pass never ends the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from pagos_worker.application.conciliacion import (
    ConciliacionAlDiaError,
    ConciliacionEnCursoError,
    ResultadoConciliacion,
    Ventana,
)
from pagos_worker.application.conciliacion_programada import ConciliacionProgramada
from pagos_worker.domain.conciliacion import ClaseDiferencia

DIA = timedelta(days=1)
T = datetime(2026, 12, 6, tzinfo=UTC)


@pytest.fixture(autouse=True)
def registro() -> Iterator[list[dict[str, Any]]]:
    """The log lines, captured (the process's logging may point at a stream another test closed)."""
    with capture_logs() as lineas:
        yield lineas


class FakeConciliar:
    def __init__(self, *respuestas: object) -> None:
        self.respuestas = list(respuestas)
        self.llamadas: list[tuple[str, timedelta | None, timedelta | None]] = []

    async def __call__(
        self, *, origen: str, retroceso: timedelta | None, cada: timedelta | None
    ) -> ResultadoConciliacion:
        self.llamadas.append((origen, retroceso, cada))
        respuesta = self.respuestas.pop(0)
        if isinstance(respuesta, Exception):
            raise respuesta
        assert isinstance(respuesta, ResultadoConciliacion)
        return respuesta


def resultado(**conteos: int) -> ResultadoConciliacion:
    return ResultadoConciliacion(
        7, Ventana(T - DIA, T), {ClaseDiferencia(c): n for c, n in conteos.items()}, [], 3, 1.0
    )


async def test_una_pasada_concilia_la_ventana_hacia_atras_y_lo_cuenta():
    completas: list[ResultadoConciliacion] = []
    fake = FakeConciliar(resultado(coincide=4, reverso_externo=1))
    programada = ConciliacionProgramada(fake, intervalo=60, retroceso=DIA, al_completar=completas.append)
    r = await programada.pasada()
    assert fake.llamadas == [("programada", DIA, timedelta(seconds=60))]  # one pass an interval, all replicas
    assert completas == [r]


async def test_con_el_bloqueo_tomado_la_pasada_se_salta(registro):
    completas: list[ResultadoConciliacion] = []
    fake = FakeConciliar(ConciliacionEnCursoError("otra"))
    programada = ConciliacionProgramada(fake, intervalo=60, retroceso=DIA, al_completar=completas.append)
    assert await programada.pasada() is None
    assert completas == []
    assert [linea["event"] for linea in registro] == ["conciliacion.en_curso_en_otra_replica"]


async def test_con_otra_pasada_reciente_la_pasada_se_salta(registro):
    fake = FakeConciliar(ConciliacionAlDiaError("la última pasada programada empezó a las 10:00:00 UTC"))
    programada = ConciliacionProgramada(fake, intervalo=60, retroceso=DIA)
    assert await programada.pasada() is None
    assert [linea["event"] for linea in registro] == ["conciliacion.al_dia"]


async def test_una_pasada_fallida_no_detiene_el_bucle():
    completas: list[ResultadoConciliacion] = []
    fake = FakeConciliar(RuntimeError("Stripe sin responder"), resultado(coincide=1))
    programada = ConciliacionProgramada(fake, intervalo=0.01, retroceso=DIA, al_completar=completas.append)
    stop = asyncio.Event()
    tarea = asyncio.create_task(programada.run(stop))
    for _ in range(200):
        if completas:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await tarea
    assert len(completas) == 1


def test_una_corrida_completa_pone_las_metricas():
    from pagos_worker import observability  # noqa: PLC0415
    from pagos_worker.bootstrap import _medir_conciliacion  # noqa: PLC0415

    _medir_conciliacion(resultado(coincide=4, reverso_externo=2))
    valor = observability.REGISTRY.get_sample_value
    assert valor("conciliacion_diferencias", {"clase": "reverso_externo"}) == 2
    assert valor("conciliacion_diferencias", {"clase": "exitoso_sin_transferencia"}) == 0
    assert valor("conciliacion_diferencias", {"clase": "coincide"}) is None  # counted, not a difference
    assert (valor("conciliacion_ultima_exitosa_timestamp_segundos") or 0) > 0


@pytest.mark.parametrize(
    ("grupo", "es_pago"),
    [
        ("0e945823-7aa0-4239-9a76-1354c251dc16", True),
        ("0E945823-7AA0-4239-9A76-1354C251DC16", False),  # not as this service writes it
        ("0e9458237aa042399a761354c251dc16", False),
        ("no-es-un-uuid", False),
        (None, False),
    ],
)
def test_solo_un_transfer_group_como_los_del_servicio_es_un_pago(grupo, es_pago):
    from pagos_worker.adapters.postgres.conciliacion import _uuid  # noqa: PLC0415

    assert (_uuid(grupo) is not None) is es_pago
