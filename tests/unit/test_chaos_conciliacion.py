"""The chaos audit's second judge: anything but `coincide`, a non-zero exit, no result, or fewer
payments judged than were paid is a violation of the run."""

from __future__ import annotations

from typing import Any

from pagos_dev.tools import chaos, chaos_conciliacion


def _informe(**cambios: Any) -> dict[str, Any]:
    informe: dict[str, Any] = dict.fromkeys(chaos.CERO, 0)
    informe |= {"malformados_en_dlq": 2, "malformados_publicados": 2, "pagos_finales": 5, "comandos_publicados": 5}
    informe |= {"pagos_pagados": 4, "conciliacion_coincide": 4, "conciliacion_conteos": {"coincide": 4}}
    return informe | cambios


def test_todo_coincide_no_es_una_violacion():
    assert chaos.violaciones(_informe()) == []


def test_una_diferencia_o_una_salida_distinta_de_0_lo_son():
    malas = chaos.violaciones(_informe(conciliacion_diferencias=1, conciliacion_codigo=1))
    assert malas == ["conciliacion_codigo = 1 (debe ser 0)", "conciliacion_diferencias = 1 (debe ser 0)"]


def test_sin_resultado_no_cuenta_como_cero_diferencias():
    malas = chaos.violaciones(_informe(conciliacion_diferencias=None, conciliacion_codigo=2, conciliacion_coincide=0))
    assert "conciliacion_diferencias = None (debe ser 0)" in malas
    assert "conciliacion_codigo = 2 (debe ser 0)" in malas


def test_una_ventana_que_no_juzga_cada_pago_pagado_es_una_violacion():
    assert chaos_conciliacion.violaciones(_informe(conciliacion_coincide=3)) == [
        "conciliacion_coincide = 3 (debe ser 4)"
    ]


def test_la_tabla_muestra_las_clases_halladas_y_las_pasadas_programadas():
    informe = _informe(
        conciliacion_diferencias=2, conciliacion_codigo=1, conciliacion_peticiones=3, conciliacion_duracion_s=0.1,
        conciliacion_conteos={"coincide": 4, "reverso_externo": 1, "importe_distinto": 1, "destino_distinto": 0},
        conciliaciones_programadas={"pasadas": 2, "por_estado": {"COMPLETA": 1, "FALLIDA": 1}, "diferencias": {}},
    )  # fmt: skip
    filas = {nombre: valor for nombre, valor, _ in chaos_conciliacion.filas_de_tabla(informe)}
    assert filas["  por clase"] == "importe_distinto=1 reverso_externo=1"
    assert filas["pasadas programadas durante el caos"] == "COMPLETA=1 FALLIDA=1; diferencias: ninguna"
