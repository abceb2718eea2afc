"""The `conciliacion` bench's pure part: the plan of planted differences, the books it seeds (in
memory, no store), how a run's answer is judged, and the budget's arithmetic."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson

from pagos_dev.tools import bench_conciliacion_plan as plan
from pagos_dev.tools.bench_conciliacion import ventana
from pagos_dev.tools.bench_conciliacion_siembra import Siembra, lotes

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def test_unos_cientos_de_cada_clase_en_un_millon_y_al_menos_uno_en_pocos():
    assert plan.por_clase(1_000_000) == 300
    assert plan.por_clase(20_000) == 6
    assert plan.por_clase(50) == 1
    plantadas = plan.plan(1_000_000)
    assert Counter(plantadas.values()) == dict.fromkeys(plan.PLANTADAS, 300)
    assert min(plantadas) >= 0
    assert max(plantadas) < 1_000_000


def test_la_siembra_da_la_respuesta_de_cada_clase_y_los_libros_que_la_producen():
    siembra = Siembra()
    todos = list(lotes(2_000, T0, T0 + timedelta(days=1), siembra))
    n = plan.por_clase(2_000)
    clases = Counter(c for c, _, _ in siembra.esperadas)
    assert clases["importe_distinto"] == 2 * n  # a transfer's and a reversal's
    assert all(clases[c] == n for c in plan.CLASE_DE.values() if c != "importe_distinto")
    assert siembra.coinciden == 2_000 - len(siembra.esperadas)
    # a transfer for every payment but the lost ones, two for the doubled ones
    assert siembra.transfers == 2_000
    assert sum(len(lote.transfers) for lote in todos) == siembra.transfers
    assert siembra.pagos == 2_000 - (n + 1) // 2  # half the transfers without success have no payment at all
    creados = [t[2] for lote in todos for t in lote.transfers]
    assert creados == sorted(creados)
    assert T0.timestamp() <= creados[0] <= creados[-1] < (T0 + timedelta(days=1)).timestamp()
    con_reverso = {r for _, _, r in siembra.esperadas if r}
    assert len(con_reverso) == 3 * n
    metadata = {orjson.loads(c)["metadata"].get("id_reverso") for lote in todos for _, _, c in lote.reversals}
    faltantes = {r for c, _, r in siembra.esperadas if c == "reverso_faltante"}
    assert not faltantes & metadata  # ours, never at Stripe
    assert con_reverso - faltantes <= metadata
    assert None in metadata  # the dashboard's reversal: no id of ours


def test_la_misma_semilla_da_los_mismos_libros():
    a, b = Siembra(), Siembra()
    list(lotes(500, T0, T0 + timedelta(days=1), a))
    list(lotes(500, T0, T0 + timedelta(days=1), b))
    assert a.esperadas == b.esperadas


def _resultado(diferencias, conteos):
    return {"diferencias": [{"clase": c, "id_pago": p, "id_reverso": r} for c, p, r in diferencias],
            "conteos": conteos}  # fmt: skip


def test_comparar_exige_las_mismas_diferencias_con_su_clase_y_nada_mas():
    esperadas = [("importe_distinto", "a", None), ("reverso_faltante", "b", "r1")]
    bien = _resultado(esperadas, {"coincide": 10, "importe_distinto": 1, "reverso_faltante": 1, "destino_distinto": 0})
    assert plan.comparar(esperadas, 10, bien).cumple
    otra_clase = _resultado([esperadas[0], ("reverso_externo", "b", "r1")],
                            {"coincide": 10, "importe_distinto": 1, "reverso_externo": 1})  # fmt: skip
    c = plan.comparar(esperadas, 10, otra_clase)
    assert c.faltantes == [("reverso_faltante", "b", "r1")]
    assert c.falsas == [("reverso_externo", "b", "r1")]
    assert not c.cumple
    de_mas = _resultado([*esperadas, esperadas[0]], {"coincide": 10, "importe_distinto": 2, "reverso_faltante": 1})
    assert plan.comparar(esperadas, 10, de_mas).falsas == [esperadas[0]]
    conteo_corto = _resultado(esperadas, {"coincide": 9, "importe_distinto": 1, "reverso_faltante": 1})
    assert not plan.comparar(esperadas, 10, conteo_corto).cumple


def test_uso_del_presupuesto_entre_la_primera_y_la_ultima_peticion():
    muestras = [(0.0, 5), (1.0, 5), (2.0, 185), (3.0, 365), (4.0, 545), (5.0, 545), (6.0, 545)]
    uso = plan.uso_del_presupuesto(muestras, 200.0)
    assert uso["peticiones_s"] == 180.0
    assert uso["uso"] == 0.9
    assert plan.uso_del_presupuesto([(0.0, 1), (1.0, 1)], 200.0)["uso"] is None
    assert plan.uso_del_presupuesto([], 200.0)["uso"] is None


def test_un_dia_de_un_millon_a_100_por_segundo():
    dia = plan.costo_de_un_dia(10_650, 1_000_000, share=0.2)
    assert dia["peticiones"] == 10_650
    assert dia["segundos"] == 532.5  # 10,650 requests at 20/s
    assert plan.costo_de_un_dia(213, 20_000, share=0.5)["peticiones"] == 10_650


def test_segundos_de_postgres_separa_copy_del_resto():
    lineas = [
        "2026-12-06 LOG:  duration: 1500.000 ms  statement: COPY conc_transfers(referencia) FROM STDIN",
        "2026-12-06 LOG:  duration: 250.5 ms  execute <unnamed>: INSERT INTO conc_diferencias ...",
        "2026-12-06 LOG:  checkpoint complete",
        "2026-12-06 LOG:  duration: 0.5 ms  parse <unnamed>: SELECT 1",
    ]
    assert plan.segundos_postgres(lineas) == {"copy_s": 1.5, "resto_s": 0.25, "total_s": 1.75}


def test_la_ventana_es_un_dia_entero_que_termina_pasado_el_margen():
    desde, hasta = ventana(datetime(2026, 12, 6, 11, 40, 12, tzinfo=UTC))
    assert hasta == datetime(2026, 12, 6, 10, tzinfo=UTC)
    assert hasta - desde == timedelta(days=1)
