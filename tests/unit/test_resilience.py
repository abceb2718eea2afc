import asyncio

import pytest

from pagos_worker.adapters.stripe.adapter import Destinos
from pagos_worker.adapters.stripe.errors import StripeError
from pagos_worker.adapters.stripe.resilience import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    TokenBucket,
    backoff,
)
from tests.tiempo_virtual import tiempo_virtual


class Reloj:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_deja_pasar_la_rafaga_y_luego_espacia():
    reloj = Reloj()
    bucket = TokenBucket(rate=10, burst=3, clock=reloj)
    esperas = [bucket.reserve() for _ in range(6)]
    assert esperas[:3] == [0, 0, 0]
    assert esperas[3:] == pytest.approx([0.1, 0.2, 0.3])
    reloj.t += 10  # idle: the burst is available again
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0]


def test_token_bucket_mantiene_la_tasa_media():
    reloj = Reloj()
    bucket = TokenBucket(rate=25, burst=5, clock=reloj)
    esperas = [bucket.reserve() for _ in range(105)]
    # 105 requests at 25/s with a burst of 5 need 4 s.
    assert max(esperas) == pytest.approx(4.0)


def test_token_bucket_parametros():
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=0)


def test_circuito_se_abre_tras_fallos_seguidos_y_se_cierra_con_una_sonda():
    reloj = Reloj()
    cb = CircuitBreaker(umbral=3, abierto_s=5, clock=reloj)
    for _ in range(2):
        cb.allow()
        cb.failure()
    cb.success()  # a success resets the count
    for _ in range(3):
        cb.allow()
        cb.failure()
    assert cb.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        cb.allow()
    reloj.t += 5
    cb.allow()  # the probe
    assert cb.state is CircuitState.HALF_OPEN
    with pytest.raises(CircuitOpenError):
        cb.allow()  # only one probe at a time
    cb.success()
    assert cb.state is CircuitState.CLOSED
    cb.allow()


def test_una_sonda_fallida_reabre_el_circuito():
    reloj = Reloj()
    cb = CircuitBreaker(umbral=1, abierto_s=5, clock=reloj)
    cb.failure()
    reloj.t += 5
    cb.allow()
    cb.failure()
    assert cb.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        cb.allow()


@tiempo_virtual
async def test_esperar_disponible_bloquea_mientras_esta_abierto():
    loop = asyncio.get_running_loop()
    cb = CircuitBreaker(umbral=1, abierto_s=0.3, clock=loop.time)
    inicio = loop.time()
    await cb.esperar_disponible()
    assert loop.time() == inicio  # closed: at once
    cb.failure()
    espera = asyncio.create_task(cb.esperar_disponible())
    await asyncio.sleep(0.29)
    assert not espera.done()
    await asyncio.wait_for(espera, 1)  # the probe may go once the open period is over, and not before
    assert loop.time() - inicio == pytest.approx(0.3)


def test_backoff_exponencial_con_tope_y_jitter():
    for intento in range(1, 10):
        assert 0 <= backoff(intento, base=0.1, maximo=2) <= min(2, 0.1 * 2 ** (intento - 1))


@pytest.mark.parametrize(
    ("codigo", "mensaje"),
    [
        ("balance_insufficient", "Fondos insuficientes"),
        ("card_declined", "Tarjeta rechazada"),
        ("account_invalid", "Cuenta de destino no válida"),
        ("weird_code", "Pago rechazado por la pasarela (weird_code)"),
    ],
)
def test_errores_de_stripe_en_espanol(codigo, mensaje):
    body = {"error": {"type": "invalid_request_error", "code": codigo, "message": "x"}}
    assert StripeError.parse(400, body, "req_1").mensaje_error == mensaje


@pytest.mark.parametrize("body", [None, "texto", {"error": "x"}, {}])
def test_error_sin_forma_de_stripe(body):
    error = StripeError.parse(502, body, None)
    assert error.type == "api_error"
    assert "502" in error.message


def test_destinos_mapa_plantilla_y_ninguno(tmp_path):
    archivo = tmp_path / "destinos.json"
    archivo.write_text('{"afiliado_1": "acct_1AbC"}')
    destinos = Destinos.desde_archivo(archivo, "acct_{id_afiliado}")
    assert destinos.para("afiliado_1") == "acct_1AbC"
    assert destinos.para("afiliado_2") == "acct_afiliado_2"
    assert Destinos({}, template="").para("afiliado_2") is None
    archivo.write_text("[1]")
    with pytest.raises(ValueError, match="objeto JSON"):
        Destinos.desde_archivo(archivo, None)


@tiempo_virtual
async def test_una_sonda_que_no_se_envio_deja_probar_a_la_siguiente():
    """A probe granted and then not sent (no budget turn, no lease left, cancelled) owes no verdict:
    released, the circuit lets the next call probe, and whoever waits for it is let go, instead of
    every worker waiting forever for a verdict that never comes."""
    reloj = Reloj()
    cb = CircuitBreaker(umbral=1, abierto_s=5, clock=reloj)
    cb.failure()
    reloj.t += 5
    sonda = cb.allow()
    assert sonda  # the probe
    espera = asyncio.create_task(cb.esperar_disponible())
    await asyncio.sleep(0)
    cb.release(sonda)
    assert cb.state is CircuitState.OPEN
    await asyncio.wait_for(espera, 2)  # released within a second (its poll), not after the open period
    assert cb.allow()  # the next call is the probe
    cb.success()
    assert cb.state is CircuitState.CLOSED


def test_soltar_sin_sonda_pendiente_no_cambia_nada():
    reloj = Reloj()
    cb = CircuitBreaker(umbral=1, abierto_s=5, clock=reloj)
    assert cb.allow() == 0  # closed: no probe
    cb.release(0)
    assert cb.state is CircuitState.CLOSED
    cb.failure()
    reloj.t += 5
    sonda = cb.allow()
    cb.failure()  # the verdict came: the release after it is a no-op
    cb.release(sonda)
    assert cb.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        cb.allow()  # still open for its whole period


def test_soltar_una_sonda_vieja_no_suelta_la_de_otro():
    """Probe P waits for a budget turn; an older call's failure reopens the circuit; later Q probes.
    P then gives up unsent: its release must not free Q's probe (two probes at once)."""
    reloj = Reloj()
    cb = CircuitBreaker(umbral=1, abierto_s=5, clock=reloj)
    cb.failure()
    reloj.t += 5
    p = cb.allow()
    cb.failure()  # an older in-flight call failed meanwhile: open again
    reloj.t += 5
    q = cb.allow()
    assert q != p
    cb.release(p)
    assert cb.state is CircuitState.HALF_OPEN
    with pytest.raises(CircuitOpenError):
        cb.allow()  # Q is still the one probe
