"""The pipeline benchmark's short form: `make bench` runs the same code with more payments. This
checks that it measures what it says (every payment counted once, through the real pipeline), not
any figure."""

from __future__ import annotations

import dataclasses

import pytest

from pagos_dev.tools import bench, bench_conciliacion

pytestmark = pytest.mark.e2e


async def test_bench_corto_cuenta_cada_pago_por_su_evento(tmp_path):
    escenario = dataclasses.replace(bench.ESCENARIOS["latencia"], pagos=400, rate=200, workers=1, latencia_ms=10)
    r = await bench.correr(escenario, tmp_path)
    print("\n" + bench.tabla([r]))
    assert r["completados"] == 400
    assert set(r["cpu_s"]) == {"workers", "simulador", "broker", "postgres"}
    assert all(v > 0 for v in r["cpu_s"].values())
    assert r["latencia_ms"]["p50"] <= r["latencia_ms"]["p99"] <= r["latencia_ms"]["max"]
    assert r["relay_lag_ms"]["p99"] >= 0
    assert r["pasarela_p99_ms"] is not None
    assert r["pasarela_p99_ms"] >= 10  # the simulator's fixed latency is a floor
    assert r["bucle_retraso_p99_ms"] is not None  # the worker's loop samples its timers' lateness
    assert r["memoria_pico_mb"] > 0
    assert r["broker"]["nombre"] == "pulsar-lite"  # and `--broker pulsar`'s Apache Pulsar counted alike
    assert r["broker_rss_pico_mb"] > 0
    for grupo in ("broker", "workers"):  # by thread, adding up to the process's own count
        assert sum(r["cpu_por_hilo_s"][grupo].values()) == pytest.approx(r["cpu_s"][grupo], rel=0.05, abs=0.1)
    assert r["maquina"]["nucleos"] >= 1
    assert r["maquina"]["referencia_s"] > 0


async def test_bench_reversos_corto_cada_reverso_acaba_en_un_evento(tmp_path):
    # 400 payments and 100 reversals of them, 2 replicas under the account's budget; reversals 100
    # to 300 commands after their payment, so that some wait for it and some may come before it.
    escenario = dataclasses.replace(bench.ESCENARIOS["reversos"], pagos=400, distancia_reversos=(100, 300))
    r = await bench.correr(escenario, tmp_path)
    print("\n" + bench.tabla([r]))
    rev = r["reversos"]
    assert r["completados"] == 400  # counted by their own events, not by their reversals'
    assert rev["publicados"] == rev["con_evento"] == 100
    assert (rev["perdidos"], rev["con_varios_eventos"], rev["ajenos"]) == (0, 0, 0)
    assert rev["cumple"] is True
    assert sum(rev["por_desenlace"].values()) == 100  # one outcome each
    assert rev["por_desenlace"]["PagoReversado"] == rev["en_el_simulador"]  # each made once at the gateway
    assert rev["por_desenlace"]["PagoReversado"] > 0
    assert r["presupuesto"]["peticiones"] > rev["en_el_simulador"]  # payouts and reversals: the one budget


async def test_bench_conciliacion_corto_encuentra_cada_diferencia_plantada_y_nada_mas(tmp_path):
    # 20,000 payments and 6 planted differences of each class (`make bench BENCH_ARGS=conciliacion`
    # runs the million): judged against the planted answer, the RSS sampled, the requests counted.
    r = await bench_conciliacion.correr(tmp_path, 20_000)
    print("\n" + bench.tabla([r]))
    assert r["plantadas"] == 9 * 6
    assert (r["faltantes"], r["falsas"], r["conteos_ok"], r["codigo"]) == ([], [], True, 1)
    assert r["cumple"]["diferencias"] is True
    assert r["rss_muestras"] > 0
    assert 0 < r["rss_pico_mb"] <= bench_conciliacion.OBJETIVOS["rss_mb"]
    assert r["peticiones"] >= 20_000 / 100  # every page of the window, at least
    assert r["postgres"]["total_s"] > 0
