"""GET /pagos/{id} and /pagos/atencion with reversals: what came back of a payment and each of its
reversals; a payment known only as annulled by a reversal that came first is a 404 that says so;
the reversals an operator must look at are listed beside the payments, with their cause. Every
answer holds to the OpenAPI document."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import get_args

import pytest
from aiohttp.test_utils import TestClient, TestServer

from pagos_worker.application.queries import CausaAtencion, VistaReverso
from pagos_worker.contract import http
from pagos_worker.domain.pago import EstadoPago
from pagos_worker.domain.reverso import EstadoReverso
from tests.unit.test_http_api import CONOCIDO, FakeViews, app_con, cumple, ready

ANULADO = uuid.UUID("00000000-0000-4000-8000-0000000a0a0a")  # a reversal came before its payment
ANULADOR = uuid.UUID("00000000-0000-4000-8000-00000000a1a1")
NUEVO = VistaReverso(
    id_reverso=uuid.UUID("00000000-0000-4000-8000-000000000002"),
    id_pago=CONOCIDO,
    monto_pedido=None,
    motivo="fraude",
    estado="PENDIENTE",
    fecha_creacion=datetime(2026, 1, 2, 9, tzinfo=UTC),
)
HECHO = VistaReverso(
    id_reverso=uuid.UUID("00000000-0000-4000-8000-000000000001"),
    id_pago=CONOCIDO,
    monto_pedido=Decimal("30.00"),
    motivo="duplicado",
    estado="EXITOSO",
    fecha_creacion=datetime(2026, 1, 2, 8, tzinfo=UTC),
    monto=Decimal("30.00"),
    moneda="USD",
    descripcion="cobrado dos veces",
    operador="ana",
    referencia_reverso="trr_1",
    fecha_procesamiento=datetime(2026, 1, 2, 8, 0, 1, tzinfo=UTC),
)
SIN_SALDO = VistaReverso(
    id_reverso=uuid.UUID("00000000-0000-4000-8000-000000000003"),
    id_pago=CONOCIDO,
    monto_pedido=Decimal("50.00"),
    motivo="compensacion",
    estado="FALLIDO",
    fecha_creacion=datetime(2026, 1, 2, 10, tzinfo=UTC),
    monto=Decimal("50.00"),
    moneda="USD",
    codigo="saldo_insuficiente",
    mensaje_error="la cuenta del afiliado no tiene saldo para el reverso",
    fecha_procesamiento=datetime(2026, 1, 2, 10, 0, 1, tzinfo=UTC),
    requiere_atencion=True,
    marcado=True,
)


class ViewsConReversos(FakeViews):
    async def estado_pago(self, id_pago):
        vista = await super().estado_pago(id_pago)
        return vista and dataclasses.replace(vista, monto_reversado=Decimal("30.00"), reversos=(NUEVO, HECHO))

    async def anulado_por(self, id_pago):
        return ANULADOR if id_pago == ANULADO else None

    async def reversos_requieren_atencion(self, limite, filtro=None):
        return [SIN_SALDO]


@pytest.fixture
async def client():
    async with TestClient(TestServer(app_con(ViewsConReversos(), ready))) as c:
        yield c


HECHO_JSON = {
    "id_reverso": str(HECHO.id_reverso),
    "monto": "30.00",
    "moneda": "USD",
    "monto_pedido": "30.00",
    "estado": "EXITOSO",
    "referencia_reverso": "trr_1",
    "motivo": "duplicado",
    "descripcion": "cobrado dos veces",
    "codigo": None,
    "mensaje_error": None,
    "operador": "ana",
    "fecha_creacion": "2026-01-02T08:00:00.000Z",
    "fecha_procesamiento": "2026-01-02T08:00:01.000Z",
    "requiere_atencion": False,
    "ultimo_error": None,
}


async def test_un_pago_con_lo_reversado_y_sus_reversos(client):
    resp = await client.get(f"/pagos/{CONOCIDO}")
    assert resp.status == 200
    cuerpo = await resp.json()
    assert cuerpo["monto_reversado"] == "30.00"
    assert [r["id_reverso"] for r in cuerpo["reversos"]] == [str(NUEVO.id_reverso), str(HECHO.id_reverso)]
    nuevo, hecho = cuerpo["reversos"]
    assert hecho == HECHO_JSON
    # Not claimed yet: no amount fixed, and "everything not yet reversed" was asked for.
    assert (nuevo["monto"], nuevo["moneda"], nuevo["monto_pedido"], nuevo["estado"]) == (None, None, None, "PENDIENTE")
    assert cumple("/pagos/{id_pago}", 200, cuerpo) == []


async def test_un_pago_anulado_antes_de_llegar_es_404_y_dice_por_que_reverso(client):
    resp = await client.get(f"/pagos/{ANULADO}")
    assert resp.status == 404
    cuerpo = await resp.json()
    assert (cuerpo["error"], cuerpo["anulado_por"]) == ("pago_no_encontrado", str(ANULADOR))
    assert str(ANULADOR) in cuerpo["mensaje"]
    assert "anul" in cuerpo["mensaje"]
    assert "comando_venenoso" not in cuerpo
    assert cumple("/pagos/{id_pago}", 404, cuerpo) == []
    desconocido = await (await client.get(f"/pagos/{uuid.uuid4()}")).json()
    assert "anulado_por" not in desconocido  # only where there is one, like comando_venenoso


async def test_la_lista_de_atencion_trae_los_reversos_aparte_con_su_causa(client):
    resp = await client.get("/pagos/atencion")
    assert resp.status == 200
    cuerpo = await resp.json()
    assert set(cuerpo) == {"pagos", "comandos_venenosos", "reversos", "diferencias", "limite"}
    assert [p["id"] for p in cuerpo["pagos"]] == [str(CONOCIDO)]  # the payments' list as it was
    [reverso] = cuerpo["reversos"]
    assert (reverso["id_reverso"], reverso["id_pago"], reverso["causa"]) == (
        str(SIN_SALDO.id_reverso),
        str(CONOCIDO),
        "saldo_insuficiente",
    )
    assert (reverso["codigo"], reverso["requiere_atencion"], reverso["monto"]) == ("saldo_insuficiente", True, "50.00")
    assert cumple("/pagos/atencion", 200, cuerpo) == []


def test_los_valores_cerrados_de_los_reversos_son_los_del_dominio():
    assert set(get_args(http.EstadoPago)) == {e.value for e in EstadoPago}
    assert set(get_args(http.EstadoReverso)) == {e.value for e in EstadoReverso}
    assert set(get_args(http.CausaAtencionReverso)) == {c.value for c in CausaAtencion} - {"venenoso"}


def test_la_causa_de_un_reverso():
    assert SIN_SALDO.causa is CausaAtencion.SALDO_INSUFICIENTE
    assert HECHO.causa is None
    marcado = dataclasses.replace(HECHO, estado="PROCESANDO", requiere_atencion=True, marcado=True)
    assert marcado.causa is CausaAtencion.MARCADO
    assert dataclasses.replace(marcado, marcado=False).causa is CausaAtencion.ANTIGUO
