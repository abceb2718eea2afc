"""The Pulsar command source's slots at capacity: the receiving thread is woken by the first slot
that comes back and then waits (briefly) for a lot of them, so that with thousands of payments in
flight it does not take the GIL from the event loop once a payment."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from pagos_worker.adapters.pulsar import consumer as modulo
from pagos_worker.adapters.pulsar.consumer import PulsarCommandSource


def _llena(capacity: int) -> PulsarCommandSource:
    source = PulsarCommandSource(SimpleNamespace(_consumer=None), capacity=capacity)  # type: ignore[arg-type]
    for _ in range(capacity):
        assert source._take_slot()
    return source


def _tomar_en_otro_hilo(source: PulsarCommandSource) -> tuple[threading.Thread, list[bool]]:
    """A thread taking a slot, returned once it waits for one (slots given back before that would
    be taken without waiting, which is not what these tests look at)."""
    tomado: list[bool] = []
    hilo = threading.Thread(target=lambda: tomado.append(source._take_slot()), daemon=True)
    hilo.start()
    limite = time.monotonic() + 5
    while not source._slot_free._waiters:  # type: ignore[attr-defined]
        assert time.monotonic() < limite, "the thread never waited for a slot"
        time.sleep(0.001)
    return hilo, tomado


def test_lleno_espera_un_lote_de_plazas_y_no_una_sola(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(modulo, "_REFILL_WAIT_S", 30.0)  # only the lot can end the wait here
    source = _llena(100)  # a lot of 5
    hilo, tomado = _tomar_en_otro_hilo(source)
    for _ in range(4):
        source.release()
    hilo.join(0.1)
    assert tomado == []  # four back: still waiting for the fifth (it took none of them)
    assert source._in_use == 96
    source.release()
    hilo.join(5)
    assert tomado == [True]
    for _ in range(4):  # the rest of the lot is taken without waiting
        assert source._take_slot()
    assert source._in_use == 100


def test_lleno_toma_lo_que_volvio_si_el_lote_tarda(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(modulo, "_REFILL_WAIT_S", 0.05)
    source = _llena(100)
    hilo, tomado = _tomar_en_otro_hilo(source)
    inicio = time.monotonic()
    source.release()
    hilo.join(5)
    assert tomado == [True]
    assert time.monotonic() - inicio >= 0.05  # it waited for more before taking the one


def test_sin_plazas_no_toma_ninguna_y_nunca_pasa_de_capacity():
    source = _llena(3)  # small pools: a lot of one, as before
    hilo, tomado = _tomar_en_otro_hilo(source)
    hilo.join(5)  # gives up after its 0.2 s, empty-handed
    assert not hilo.is_alive()
    assert tomado == [False]
    assert source._in_use == 3
    hilo, tomado = _tomar_en_otro_hilo(source)
    source.release()
    hilo.join(5)
    assert tomado == [True]
    assert source._in_use == 3
