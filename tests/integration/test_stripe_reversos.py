"""The Stripe adapter's reversals against the simulator, over real HTTP: what it sends, every class of
answer (reversed, refused for balance, refused for more than is left, a saved 500, a lost answer),
and the lookup before a retry (its own reversal among others, every page, two of its own)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp
import pytest

from pagos_dev.simulador.fallas import Fallas
from pagos_worker.application.ports.pasarela import (
    ClaveAgotadaError,
    ResultadoIndeterminadoError,
    SinPruebaDePagoError,
)
from pagos_worker.domain import Dinero, Lease, Pago
from pagos_worker.domain.reverso import EstadoReverso, MotivoReverso, Reverso
from tests.integration.test_stripe_adapter import SECRETO, adaptador, pago
from tests.simulador_helpers import simulador_en_marcha

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {SECRETO}"}


def reverso_de(p: Pago, referencia: str, monto: str, *, generacion: int = 1, intentos: int = 1) -> Reverso:
    """A reversal claimed for `referencia` (its payment's transfer), as the store hands it over."""
    ahora = datetime.now(UTC)
    return Reverso(
        id_reverso=uuid.uuid4(), id_pago=p.id_pago, monto_pedido=Decimal(monto), motivo=MotivoReverso.FRAUDE,
        descripcion="venta anulada", fecha_creacion=ahora, estado=EstadoReverso.PROCESANDO,
        importe=Dinero(Decimal(monto), p.importe.moneda), referencia_transfer=referencia,
        lease=Lease("w", ahora + timedelta(seconds=60)), generacion_clave=generacion, intentos=intentos,
    )  # fmt: skip


async def pagado(pasarela, afiliado: str = "afiliado_1", monto: str = "100.00") -> tuple[Pago, str]:
    p = pago(afiliado, monto)
    resultado = await pasarela.procesar_pago(p)
    assert resultado.exitoso
    return p, resultado.referencia_pago


async def transfer(sim, referencia: str) -> dict:
    async with aiohttp.ClientSession(headers=AUTH) as http, http.get(f"{sim.url}/v1/transfers/{referencia}") as r:
        return await r.json()


async def revertir_a_mano(sim, referencia: str, unidades: int, **extra: str) -> dict:
    """A reversal made elsewhere (the Stripe dashboard): no metadata of ours."""
    async with aiohttp.ClientSession(headers=AUTH) as http:
        datos = {"amount": str(unidades), **extra}
        async with http.post(f"{sim.url}/v1/transfers/{referencia}/reversals", data=datos) as r:
            assert r.status == 200, await r.text()
            return await r.json()


async def test_un_reverso_parcial_lleva_su_id_y_su_propia_clave():
    async with simulador_en_marcha() as sim, adaptador(sim.url) as pasarela:
        p, tr = await pagado(pasarela)
        r = reverso_de(p, tr, "40.00")
        resultado = await pasarela.revertir(r)
        assert resultado.exitoso
        assert resultado.referencia_pago.startswith("trr_")
        actual = await transfer(sim, tr)
        assert (actual["amount_reversed"], actual["reversed"]) == (4000, False)
        [hecho] = actual["reversals"]["data"]
        assert hecho["id"] == resultado.referencia_pago
        assert hecho["metadata"] == {"id_reverso": str(r.id_reverso), "id_pago": str(p.id_pago), "motivo": "fraude"}
        assert pasarela.idempotency_key_reverso(r) == f"pagos-worker-reversal-{r.id_reverso}"
        assert pasarela.idempotency_key_reverso(reverso_de(p, tr, "1.00", generacion=3)).endswith(":3")
        # The lookup finds it, whatever key made it.
        assert await pasarela.buscar_reverso(r) == resultado.referencia_pago
        # The rest, then: fully reversed.
        assert (await pasarela.revertir(reverso_de(p, tr, "60.00"))).exitoso
        assert (await transfer(sim, tr))["reversed"] is True


async def test_sin_saldo_en_la_cuenta_es_saldo_insuficiente():
    async with simulador_en_marcha() as sim, adaptador(sim.url) as pasarela:
        p, tr = await pagado(pasarela, "afiliado_sin_saldo")
        resultado = await pasarela.revertir(reverso_de(p, tr, "10.00"))
        assert not resultado.exitoso
        assert resultado.codigo == "saldo_insuficiente"
        assert resultado.mensaje_error == "El saldo de la cuenta del afiliado no cubre el reverso"
        assert resultado.referencia_pago.startswith("req_")
        assert (await transfer(sim, tr))["amount_reversed"] == 0


async def test_mas_de_lo_que_queda_porque_se_revirtio_fuera_es_un_rechazo_no_un_desconocido():
    async with simulador_en_marcha() as sim, adaptador(sim.url) as pasarela:
        p, tr = await pagado(pasarela)
        await revertir_a_mano(sim, tr, 9000)  # the dashboard took 90.00 back
        resultado = await pasarela.revertir(reverso_de(p, tr, "40.00"))
        assert not resultado.exitoso
        assert resultado.codigo == "rechazado_por_la_pasarela"
        assert "left to reverse" in resultado.mensaje_error
        await revertir_a_mano(sim, tr, 1000)  # and then the rest
        ya = await pasarela.revertir(reverso_de(p, tr, "1.00"))
        assert (ya.exitoso, ya.codigo) == (False, "rechazado_por_la_pasarela")
        assert "already fully reversed" in ya.mensaje_error


async def test_la_consulta_halla_el_suyo_entre_otros_en_cualquier_pagina():
    async with simulador_en_marcha() as sim, adaptador(sim.url) as pasarela:
        p, tr = await pagado(pasarela, monto="500.00")
        propio = reverso_de(p, tr, "3.00")
        assert await pasarela.buscar_reverso(propio) is None  # nothing yet
        hecho = await pasarela.revertir(propio)
        for _ in range(120):  # newer ones on top of it: it is on the second page of 100
            await revertir_a_mano(sim, tr, 1)
        assert await pasarela.buscar_reverso(propio) == hecho.referencia_pago
        otro = reverso_de(p, tr, "3.00")
        assert await pasarela.buscar_reverso(otro) is None  # an id of ours with no reversal


async def test_dos_reversos_con_su_id_o_uno_de_otro_monto_no_prueban_nada():
    async with simulador_en_marcha() as sim, adaptador(sim.url) as pasarela:
        p, tr = await pagado(pasarela)
        r = reverso_de(p, tr, "5.00")
        metadatos = {"metadata[id_reverso]": str(r.id_reverso)}
        await revertir_a_mano(sim, tr, 700, **metadatos)  # of another amount, under its id
        with pytest.raises(SinPruebaDePagoError, match="devuelve 700"):
            await pasarela.buscar_reverso(r)
        await revertir_a_mano(sim, tr, 500, **metadatos)
        with pytest.raises(SinPruebaDePagoError, match="2 reversos"):
            await pasarela.buscar_reverso(r)


async def test_un_500_guardado_se_resuelve_consultando_y_sin_reverso_la_clave_esta_agotada():
    fallas = Fallas(latencia="fixed:0", tasa_rechazo=0)
    async with simulador_en_marcha(fallas) as sim, adaptador(sim.url) as pasarela:
        p, tr = await pagado(pasarela)
        sim.simulador.fallas = sim.simulador.fallas.con({"tasa_500_guardado": 1.0})
        r = reverso_de(p, tr, "5.00")
        with pytest.raises(ClaveAgotadaError):
            await pasarela.revertir(r)
        assert (await transfer(sim, tr))["amount_reversed"] == 0
        sim.simulador.fallas = sim.simulador.fallas.con({"tasa_500_guardado": 0.0})
        # Its next key generation goes through; the spent one keeps replaying its 500.
        otra = reverso_de(p, tr, "5.00", generacion=2)
        otra.id_reverso = r.id_reverso
        assert (await pasarela.revertir(otra)).exitoso
        assert (await transfer(sim, tr))["amount_reversed"] == 500


async def test_una_respuesta_perdida_se_repite_con_la_misma_clave_y_revierte_una_vez():
    async with simulador_en_marcha() as sim, adaptador(sim.url, timeout_s=0.5) as pasarela:
        p, tr = await pagado(pasarela, "test_timeout_after_success_once")
        sim.simulador.fallas = sim.simulador.fallas.con({"cuelgue_s": 2.0})
        r = reverso_de(p, tr, "5.00")
        resultado = await pasarela.revertir(r)  # the first answer never comes; the retry replays it
        assert resultado.exitoso
        actual = await transfer(sim, tr)
        assert actual["amount_reversed"] == 500
        assert actual["reversals"]["total_count"] == 1


async def test_sin_respuesta_alguna_es_desconocido():
    async with adaptador("http://127.0.0.1:9", max_intentos=2) as pasarela:
        p = pago()
        with pytest.raises(ResultadoIndeterminadoError):
            await pasarela.revertir(reverso_de(p, "tr_x", "1.00"))


async def test_un_400_sin_codigo_que_no_es_del_monto_no_es_un_rechazo():
    """Only Stripe's code-less refusals of a reversal (more than is left: `param` amount; a transfer
    reversed already) are final; another code-less 400 may be a request of ours gone wrong: unknown."""
    from pagos_worker.adapters.stripe.errors import StripeError  # noqa: PLC0415

    def error(message: str, param: str | None = None) -> StripeError:
        cuerpo = {"error": {"type": "invalid_request_error", "message": message, **({"param": param} if param else {})}}
        return StripeError.parse(400, cuerpo, "req_1")

    assert error("Transfer reversal amount (1 usd) is greater than the amount left", "amount").is_refusal_sin_codigo
    assert error("The transfer tr_1 is already fully reversed.").is_refusal_sin_codigo
    assert not error("Received unknown parameter: amout", "amout").is_refusal_sin_codigo
    assert not error("Something went wrong").is_refusal_sin_codigo
