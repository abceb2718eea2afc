import asyncio
import random
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pagos_dev.pasarela_simulada import SimuladaPasarelaDePagos
from pagos_dev.simulacion import MENSAJES_RECHAZO, Latencia, rechazo
from pagos_worker.domain import Dinero, Moneda, Pago


@pytest.mark.parametrize(
    ("spec", "tipo"), [("fixed:5", "fixed"), ("uniform:2000:8000", "uniform"), ("lognormal:60:300", "lognormal")]
)
def test_latencias_validas(spec, tipo):
    assert Latencia.parse(spec).tipo == tipo


@pytest.mark.parametrize("spec", ["", "fixed", "uniform:5", "uniform:9:1", "lognormal:0:5", "gauss:1:2", "fixed:x"])
def test_latencias_invalidas(spec):
    with pytest.raises(ValueError, match="latencia"):
        Latencia.parse(spec)


def test_lognormal_tiene_la_mediana_y_el_p99_pedidos():
    lat = Latencia.parse("lognormal:60:300")
    rng = random.Random(1)
    muestras = sorted(lat.muestra(rng) * 1000 for _ in range(20000))
    assert 55 < muestras[10000] < 65
    assert 270 < muestras[19800] < 330


def test_uniforme_del_perfil_de_la_semilla():
    lat = Latencia.parse("uniform:2000:8000")
    rng = random.Random(1)
    muestras = [lat.muestra(rng) for _ in range(1000)]
    assert min(muestras) >= 2.0
    assert max(muestras) <= 8.0
    assert lat.media_ms == 5000


def test_tasa_de_fallos_y_mensajes_de_la_semilla():
    ids = [uuid.uuid4() for _ in range(5000)]
    fallos = [m for i in ids if (m := rechazo(0, i, 0.10)) is not None]
    assert 400 < len(fallos) < 600
    assert set(fallos) == set(MENSAJES_RECHAZO)
    assert all(rechazo(0, i, 0.0) is None for i in ids[:100])


async def test_pasarela_simulada_es_determinista_y_limita_la_concurrencia():
    pasarela = SimuladaPasarelaDePagos(latencia=Latencia.parse("fixed:50"), tasa_fallos=0.5, concurrencia=2)
    pagos = [
        Pago.crear(
            id_pago=uuid.uuid4(), id_afiliado="a", importe=Dinero(Decimal(1), Moneda.USD), ahora=datetime.now(UTC)
        )
        for _ in range(4)
    ]
    inicio = time.monotonic()
    primeros = await asyncio.gather(*(pasarela.procesar_pago(p) for p in pagos))
    assert time.monotonic() - inicio >= 0.1  # 4 calls, 2 at a time, 50 ms each
    segundos = await asyncio.gather(*(pasarela.procesar_pago(p) for p in pagos))
    assert primeros == segundos
