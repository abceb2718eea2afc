"""The benchmark's arithmetic (the figures it reports are only as good as this)."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

import orjson
import pytest

from pagos_dev.tools.bench import _cuantil_de_histograma, _percentiles, _presupuesto, comandos
from pagos_dev.tools.bench_reversos import cantidad_de_reversos, mezclar, recuento
from pagos_dev.tools.observador import EventoVisto
from pagos_worker.application.commands import ReversarPago
from pagos_worker.contract.wire import decode

INF = float("inf")


def test_cuantil_interpola_dentro_del_cubo():
    cubos = {0.005: 0, 0.01: 50, 0.02: 100, INF: 100}
    assert _cuantil_de_histograma(cubos, 0.5) == pytest.approx(10.0)
    assert _cuantil_de_histograma(cubos, 0.99) == pytest.approx(19.8)
    assert _cuantil_de_histograma({0.005: 90, 0.01: 100, INF: 100}, 0.5) == pytest.approx(2.8, abs=0.05)


def test_cuantil_sin_observaciones_o_por_encima_del_ultimo_cubo():
    assert _cuantil_de_histograma({}, 0.99) is None
    assert _cuantil_de_histograma({0.1: 0, INF: 0}, 0.99) is None
    assert _cuantil_de_histograma({0.1: 10, INF: 100}, 0.99) == pytest.approx(100.0)


def test_percentiles_en_ms():
    p = _percentiles([i / 1000 for i in range(1, 1001)])
    assert p["p50"] == pytest.approx(500.5, abs=0.1)
    assert p["p99"] == pytest.approx(990.0, abs=0.1)
    assert p["max"] == 1000.0
    assert _percentiles([0.1]) == {}


def _mezcla(pagos: int = 2_000, distancia: tuple[int, int] = (400, 1200), semilla: int = 7):
    rng = random.Random(semilla)
    return comandos(pagos, rng), mezclar(comandos(pagos, random.Random(semilla)), 0.2, rng, distancia)


def test_mezcla_de_reversos_un_quinto_cada_uno_tras_su_pago_y_nunca_mas_de_lo_pagado():
    pagos, mezcla = _mezcla()
    assert len(mezcla.mensajes) == 2_500
    assert len(mezcla.reversos) == len(set(mezcla.reversos)) == 500
    assert [m for m in mezcla.mensajes if len(m) == 2] == pagos  # the payments, in their order
    pagado = {id_pago: Decimal(orjson.loads(data)["monto"]) for data, id_pago in pagos}
    restante, ultimo, tipos = dict(pagado), {}, Counter()
    for i, (data, key, *propiedades) in enumerate(mezcla.mensajes):
        comando = decode(data, propiedades[0] if propiedades else None)
        id_pago = str(comando.id_pago)
        assert key == id_pago
        if isinstance(comando, ReversarPago):
            assert 400 <= i - ultimo[id_pago] <= 1200  # after the last command about its payment
            if restante[id_pago] == 0:
                tipos["sin_resto"] += 1  # asks again: ReversoFallido (excede_lo_pagado) if it was paid
            elif comando.monto is None:
                tipos["el_resto" if restante[id_pago] < pagado[id_pago] else "todo"] += 1
            else:
                assert 0 < comando.monto < pagado[id_pago] == restante[id_pago]  # partial: a first one
                tipos["parcial"] += 1
            restante[id_pago] = 0 if comando.monto is None else restante[id_pago] - comando.monto
        ultimo[id_pago] = i
    assert tipos["parcial"] == mezcla.parciales
    assert all(tipos[t] > 0 for t in ("parcial", "todo", "el_resto", "sin_resto"))
    assert tipos["sin_resto"] < 0.1 * len(mezcla.reversos)  # a few
    assert _mezcla()[1] == mezcla  # the same commands every run


def test_mezcla_que_no_cabe():
    with pytest.raises(ValueError, match="do not fit"):
        mezclar(comandos(100, random.Random(1)), 0.2, random.Random(1), (200, 300))
    assert cantidad_de_reversos(4_800, 0.2) == 1_200


def _evento(event_id: str, tipo: str, id_reverso: str | None = None) -> EventoVisto:
    return EventoVisto(event_id, tipo, "p", 0.0, id_reverso)


def test_recuento_de_reversos_por_su_id_y_no_por_el_del_pago():
    eventos = [
        _evento("e0", "PagoExitoso"),  # a payment's event: not a reversal's
        _evento("e1", "PagoReversado", "r1"),
        _evento("e1", "PagoReversado", "r1"),  # the same event again: a repeat, still one event
        _evento("e2", "ReversoFallido", "r2"),
        _evento("e3", "PagoAnulado", "r3"),
        _evento("e4", "PagoReversado", "r3"),  # a second outcome for r3
        _evento("e5", "PagoAnulado", "r9"),  # nobody published r9
    ]
    crudos = [
        orjson.dumps({"event_type": "ReversoFallido", "data": {"id_reverso": "r2", "codigo": "excede_lo_pagado"}}),
        orjson.dumps({"event_type": "PagoExitoso", "data": {"id_pago": "p"}}),
    ]
    r = recuento(["r1", "r2", "r3", "r4"], eventos, crudos)
    assert r["por_desenlace"] == {"PagoReversado": 2, "ReversoFallido": 1, "PagoAnulado": 1}
    assert r["fallidos_por_codigo"] == {"excede_lo_pagado": 1}
    assert (r["publicados"], r["con_evento"], r["perdidos"]) == (4, 3, 1)
    assert (r["con_varios_eventos"], r["ajenos"], r["repetidos"]) == (1, 1, 1)
    assert r["cumple"] is False
    limpio = recuento(["r1", "r2"], eventos[:4], crudos)
    assert (limpio["perdidos"], limpio["con_varios_eventos"], limpio["ajenos"], limpio["cumple"]) == (0, 0, 0, True)


def _muestras(por_s: float, segundos: float, rechazo_cada: int = 0) -> list[tuple[float, int, int]]:
    """The simulator's counters sampled every 0.25 s: `por_s` requests a second, one in
    `rechazo_cada` of them a 429; then nothing more for 3 s."""
    muestras = []
    for k in range(int((segundos + 3) / 0.25) + 1):
        t = 100 + k * 0.25
        n = int(por_s * min(k * 0.25, segundos))
        muestras.append((t, n, n // rechazo_cada if rechazo_cada else 0))
    return muestras


def test_presupuesto_con_la_tasa_de_pagos_o_con_las_peticiones_aceptadas():
    pres = _presupuesto(100, _muestras(100, 45, rechazo_cada=500), 98.0)
    assert pres["ventanas_s"] == pytest.approx([100] * 4, abs=0.2)
    assert pres["fraccion_429"] == 0.002
    assert pres["uso"] == 0.98
    assert pres["cumple"] == {"ritmo": True, "429": True, "uso": True}
    # Without a payments' rate (reversals share the budget): the accepted requests a second.
    pres = _presupuesto(100, _muestras(100, 45, rechazo_cada=100), None)
    assert pres["uso"] == pytest.approx(0.99, abs=0.002)
    assert pres["cumple"] == {"ritmo": True, "429": False, "uso": True}
    lento = _presupuesto(100, _muestras(90, 45), None)
    assert lento["cumple"] == {"ritmo": False, "429": True, "uso": False}


def test_presupuesto_demasiado_corto_para_juzgar_el_ritmo():
    pres = _presupuesto(100, _muestras(100, 15), None)
    assert len(pres["ventanas_s"]) == 1
    assert pres["cumple"] == {"ritmo": None, "429": True, "uso": None}
    assert _presupuesto(100, [], None) == {"limite_s": 100, "ventanas_s": []}
