"""The Stripe adapter against the simulator, over real HTTP: every fault a gateway has."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import SecretStr

from pagos_dev.simulador.fallas import Fallas
from pagos_worker.adapters.stripe.adapter import Destinos, StripeConfig, StripePasarelaDePagos
from pagos_worker.adapters.stripe.resilience import CircuitState
from pagos_worker.application.ports.pasarela import PasarelaNoDisponibleError, ResultadoIndeterminadoError
from pagos_worker.domain import Dinero, Moneda, Pago
from tests.conftest import free_port
from tests.simulador_helpers import simulador_en_marcha

pytestmark = pytest.mark.integration
SECRETO = "sk_test_no_debe_aparecer_123"


def pago(afiliado: str = "afiliado_1", monto: str = "100.50", moneda: Moneda = Moneda.USD) -> Pago:
    return Pago.crear(
        id_pago=uuid.uuid4(), id_afiliado=afiliado, importe=Dinero(Decimal(monto), moneda), ahora=datetime.now(UTC)
    )


@asynccontextmanager
async def adaptador(url: str, **cambios):
    config = StripeConfig(
        api_base=url,
        secret_key=SecretStr(cambios.pop("secret", SECRETO)),
        timeout_s=cambios.pop("timeout_s", 2.0),
        backoff_base_s=0.01,
        backoff_max_s=0.05,
        **cambios,
    )
    async with StripePasarelaDePagos(config, Destinos(template="acct_{id_afiliado}")) as pasarela:
        yield pasarela


def transfers_de(sim, p: Pago):
    return [t for t in sim.simulador.ledger.transfers.values() if t.metadata["id_pago"] == str(p.id_pago)]


async def test_pago_exitoso_es_un_transfer_con_el_formato_de_stripe():
    async with simulador_en_marcha() as sim, adaptador(sim.url) as pasarela:
        p = pago(monto="1234.56", moneda=Moneda.COP)
        resultado = await pasarela.procesar_pago(p)
        [transfer] = transfers_de(sim, p)
        assert resultado.exitoso
        assert resultado.referencia_pago == transfer.id
        assert (transfer.amount, transfer.currency, transfer.destination) == (123456, "cop", "acct_afiliado_1")
        assert transfer.metadata == {"id_pago": str(p.id_pago), "id_afiliado": "afiliado_1"}


async def test_rechazo_definitivo_en_espanol_y_sin_transfer():
    async with simulador_en_marcha() as sim, adaptador(sim.url) as pasarela:
        p = pago("test_balance_insufficient")
        resultado = await pasarela.procesar_pago(p)
        assert not resultado.exitoso
        assert resultado.mensaje_error == "Fondos insuficientes"
        assert resultado.referencia_pago.startswith("req_")
        assert transfers_de(sim, p) == []


async def test_un_500_y_luego_exito_con_la_misma_clave_hace_un_solo_transfer():
    async with simulador_en_marcha() as sim, adaptador(sim.url) as pasarela:
        p = pago("test_error_500_once")
        resultado = await pasarela.procesar_pago(p)
        assert resultado.exitoso
        assert len(transfers_de(sim, p)) == 1
        assert sim.simulador.contadores["500"] == 1


async def test_429_respeta_retry_after():
    fallas = Fallas(latencia="fixed:0", tasa_rechazo=0, retry_after_s=0.5)
    async with simulador_en_marcha(fallas) as sim, adaptador(sim.url) as pasarela:
        inicio = time.monotonic()
        resultado = await pasarela.procesar_pago(pago("test_rate_limited_once"))
        assert resultado.exitoso
        assert time.monotonic() - inicio >= 0.5
        assert sim.simulador.contadores["429"] == 1


async def test_timeout_tras_exito_y_el_reintento_devuelve_el_mismo_transfer():
    async with simulador_en_marcha() as sim, adaptador(sim.url, timeout_s=0.5) as pasarela:
        p = pago("test_timeout_after_success_once")
        resultado = await pasarela.procesar_pago(p)
        [transfer] = transfers_de(sim, p)
        assert resultado.referencia_pago == transfer.id
        assert sim.simulador.contadores["replay"] == 1


async def test_500_persistente_es_indeterminado_y_no_paga():
    async with simulador_en_marcha() as sim, adaptador(sim.url, max_intentos=3) as pasarela:
        p = pago("test_error_500")
        with pytest.raises(ResultadoIndeterminadoError, match="3 intentos"):
            await pasarela.procesar_pago(p)
        assert transfers_de(sim, p) == []
        assert sim.simulador.contadores["500"] == 3


async def test_sin_conexion_es_indeterminado():
    async with adaptador(f"http://127.0.0.1:{free_port()}", max_intentos=2) as pasarela:
        with pytest.raises(ResultadoIndeterminadoError, match="sin respuesta"):
            await pasarela.procesar_pago(pago())


async def test_la_misma_clave_con_otros_parametros_se_consulta_y_nunca_es_fallido():
    """Stripe's idempotency_error: the key is taken. What it holds for the payment settles it, when
    it pays the payment's amount; a transfer of another amount leaves it unknown, for an operator."""
    async with simulador_en_marcha() as sim, adaptador(sim.url) as pasarela:
        p = pago()
        primero = await pasarela.procesar_pago(p)
        assert (await pasarela.procesar_pago(p)).referencia_pago == primero.referencia_pago  # replayed
        p.importe = Dinero(Decimal("1.00"), Moneda.USD)  # as if the stored payment had changed
        with pytest.raises(ResultadoIndeterminadoError, match=rf"{primero.referencia_pago} paga 10050 USD"):
            await pasarela.procesar_pago(p)
        assert len(transfers_de(sim, p)) == 1


async def test_401_es_indeterminado_y_la_clave_nunca_aparece(caplog):
    caplog.set_level(logging.DEBUG)
    async with simulador_en_marcha() as sim, adaptador(sim.url, secret="sk_live_" + SECRETO) as pasarela:
        with pytest.raises(ResultadoIndeterminadoError) as info:
            await pasarela.procesar_pago(pago())
        assert "401" in str(info.value)
        assert SECRETO not in str(info.value)
        assert SECRETO not in repr(pasarela._config)
        assert SECRETO not in caplog.text
        assert sim.simulador.ledger.transfers == {}


async def test_el_circuito_se_abre_con_la_pasarela_caida_y_se_cierra_al_volver():
    port = free_port()
    async with adaptador(
        f"http://127.0.0.1:{port}", max_intentos=1, breaker_umbral=3, breaker_abierto_s=0.5
    ) as pasarela:
        for _ in range(3):
            with pytest.raises(ResultadoIndeterminadoError) as intentado:
                await pasarela.procesar_pago(pago())
            assert not isinstance(intentado.value, PasarelaNoDisponibleError)  # these were tried
        assert pasarela.circuit is CircuitState.OPEN
        conexiones = 0

        def contar(_lector: asyncio.StreamReader, escritor: asyncio.StreamWriter) -> None:
            nonlocal conexiones
            conexiones += 1
            escritor.close()

        escucha = await asyncio.start_server(contar, "127.0.0.1", port)  # the gateway, back
        try:
            with pytest.raises(PasarelaNoDisponibleError, match="circuito abierto"):  # not tried: no attempt
                await pasarela.procesar_pago(pago())
        finally:
            escucha.close()
            await escucha.wait_closed()
        assert conexiones == 0  # refused before connecting: the gateway is not hammered
        async with simulador_en_marcha(port=port):
            await asyncio.wait_for(pasarela.esperar_disponible(), 10)  # its 0.5 s, with room
            assert (await pasarela.procesar_pago(pago())).exitoso  # the probe
            assert pasarela.circuit is CircuitState.CLOSED


async def test_si_el_circuito_se_abre_entre_reintentos_el_pago_si_se_intento():
    """Refused on its second attempt, after a first that may have reached the gateway: an unknown
    outcome, not "not attempted"."""
    async with adaptador(
        f"http://127.0.0.1:{free_port()}", max_intentos=3, breaker_umbral=1, breaker_abierto_s=30
    ) as pasarela:
        with pytest.raises(ResultadoIndeterminadoError, match="circuito abierto") as info:
            await pasarela.procesar_pago(pago())
        assert not isinstance(info.value, PasarelaNoDisponibleError)


async def test_el_limite_de_tasa_se_cumple():
    async with simulador_en_marcha() as sim, adaptador(sim.url, rate=20, burst=2) as pasarela:
        inicio = time.monotonic()
        resultados = await asyncio.gather(*(pasarela.procesar_pago(pago()) for _ in range(12)))
        assert all(r.exitoso for r in resultados)
        assert time.monotonic() - inicio >= (12 - 2) / 20 * 0.95


async def test_la_concurrencia_se_limita_en_el_adaptador():
    fallas = Fallas(latencia="fixed:100", tasa_rechazo=0)
    async with simulador_en_marcha(fallas) as sim, adaptador(sim.url, concurrencia=4, rate=1000) as pasarela:
        inicio = time.monotonic()
        await asyncio.gather(*(pasarela.procesar_pago(pago()) for _ in range(8)))
        assert time.monotonic() - inicio >= 0.2  # 8 calls of 100 ms, 4 at a time


async def test_un_500_guardado_con_transfer_creado_se_resuelve_consultando():
    async with simulador_en_marcha() as sim, adaptador(sim.url) as pasarela:
        p = pago("test_error_500_saved_created")
        resultado = await pasarela.procesar_pago(p)
        [transfer] = transfers_de(sim, p)
        assert (resultado.exitoso, resultado.referencia_pago) == (True, transfer.id)


async def test_un_500_guardado_sin_transfer_queda_desconocido_sin_pagar():
    async with simulador_en_marcha() as sim, adaptador(sim.url, max_intentos=4) as pasarela:
        p = pago("test_error_500_saved")
        with pytest.raises(ResultadoIndeterminadoError, match="no tiene transfer"):
            await pasarela.procesar_pago(p)
        assert transfers_de(sim, p) == []
