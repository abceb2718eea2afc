"""Reversals as operators see them, against the real PostgreSQL: the status API's JSON of a payment
with its reversals (rows written as the worker writes them), the 404 of a payment annulled before
it came, the attention list, and the indexes those queries use."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from pagos_worker.adapters.postgres.views import PostgresPagoViews
from pagos_worker.application.queries import (
    ListarPagosQueRequierenAtencionHandler,
    ObtenerEstadisticasOutboxHandler,
    ObtenerEstadoPagoHandler,
)
from pagos_worker.domain import Dinero, Lease, Moneda, Pago
from pagos_worker.domain.reverso import CodigoReversoFallido, EstadoReverso, MotivoReverso, Reverso
from pagos_worker.entrypoints.http_api import create_app
from tests.integration.test_views_contract import INSERTAR_REVERSO, fila_reverso
from tests.unit.test_http_api import cumple

pytestmark = pytest.mark.integration


async def pagado(postgres, monto: str = "100.00") -> Pago:
    ahora = datetime.now(UTC)
    pago = Pago.crear(id_pago=uuid.uuid4(), id_afiliado="af_1", importe=Dinero(Decimal(monto), Moneda.USD), ahora=ahora)
    pago.iniciar_procesamiento(Lease("w1", ahora + timedelta(seconds=30)), ahora)
    pago = (await postgres.repo().reclamar(pago)).pago
    pago.marcar_exitoso("tr_1", datetime.now(UTC))
    await postgres.repo().guardar_resultado(pago)
    return pago


async def guardar(engine, *reversos: Reverso, hace: timedelta = timedelta(0)) -> None:
    async with engine.begin() as conn:
        for reverso in reversos:
            await conn.execute(INSERTAR_REVERSO, fila_reverso(reverso, hace))


def reclamado(pago: Pago, monto: str, **campos) -> Reverso:
    ahora = datetime.now(UTC)
    reverso = Reverso(id_reverso=uuid.uuid4(), id_pago=pago.id_pago, monto_pedido=Decimal(monto),
                      motivo=MotivoReverso.DUPLICADO, fecha_creacion=ahora, **campos)  # fmt: skip
    reverso.admitir(pago, otro_en_curso=False, lease=Lease("w1", ahora + timedelta(seconds=30)), ahora=ahora)
    return reverso


@pytest.fixture
async def api(postgres):
    views = PostgresPagoViews(postgres.engine, atencion_tras=timedelta(hours=1))

    async def listo() -> dict[str, str]:
        return {"postgres": "ok"}

    app = create_app(ObtenerEstadoPagoHandler(views), ObtenerEstadisticasOutboxHandler(views),
                     ListarPagosQueRequierenAtencionHandler(views), listo)  # fmt: skip
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_el_json_de_un_pago_con_sus_reversos(postgres, api):
    pago = await pagado(postgres)
    ahora = datetime.now(UTC)
    hecho = reclamado(pago, "30.00", descripcion="cobrado dos veces", operador="ana")
    hecho.marcar_exitoso("trr_1", ahora)
    sin_saldo = reclamado(pago, "50.00")
    sin_saldo.marcar_fallido(CodigoReversoFallido.SALDO_INSUFICIENTE, "sin saldo", ahora)
    await guardar(postgres.engine, hecho, hace=timedelta(minutes=2))
    await guardar(postgres.engine, sin_saldo)
    async with postgres.engine.begin() as conn:
        await conn.execute(text("UPDATE pagos SET monto_reversado = 30 WHERE id_pago = :i"), {"i": pago.id_pago})

    resp = await api.get(f"/pagos/{pago.id_pago}")
    assert resp.status == 200
    cuerpo = await resp.json()
    assert cumple("/pagos/{id_pago}", 200, cuerpo) == []
    assert (cuerpo["estado"], cuerpo["monto"], cuerpo["monto_reversado"]) == ("EXITOSO", "100.00", "30.00")
    assert [r["id_reverso"] for r in cuerpo["reversos"]] == [str(sin_saldo.id_reverso), str(hecho.id_reverso)]
    fallido, exitoso = cuerpo["reversos"]
    assert exitoso == {
        "id_reverso": str(hecho.id_reverso),
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
        "fecha_creacion": exitoso["fecha_creacion"],
        "fecha_procesamiento": ahora.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requiere_atencion": False,
        "ultimo_error": None,
    }
    assert exitoso["fecha_creacion"] < fallido["fecha_creacion"]
    assert (fallido["estado"], fallido["codigo"], fallido["requiere_atencion"]) == (
        "FALLIDO", "saldo_insuficiente", True
    )  # fmt: skip

    resp = await api.get("/pagos/atencion")
    cuerpo = await resp.json()
    assert cumple("/pagos/atencion", 200, cuerpo) == []
    assert cuerpo["pagos"] == []
    assert [(r["id_reverso"], r["id_pago"], r["causa"]) for r in cuerpo["reversos"]] == [
        (str(sin_saldo.id_reverso), str(pago.id_pago), "saldo_insuficiente")
    ]


async def test_un_pago_anulado_antes_de_llegar_es_un_404_que_lo_dice(postgres, api):
    id_pago, id_reverso = uuid.uuid4(), uuid.uuid4()
    async with postgres.engine.begin() as conn:  # as the worker leaves it when the reversal comes first
        await conn.execute(
            text("INSERT INTO pagos (id_pago, estado, fecha_creacion, anulado_por) "
                 "VALUES (:i, 'PENDIENTE', clock_timestamp(), :r)"),
            {"i": id_pago, "r": id_reverso},
        )  # fmt: skip
        anulado = Reverso(id_reverso=id_reverso, id_pago=id_pago, monto_pedido=None, motivo=MotivoReverso.FRAUDE,
                          estado=EstadoReverso.ANULADO, fecha_creacion=datetime.now(UTC))  # fmt: skip
        await conn.execute(INSERTAR_REVERSO, fila_reverso(anulado))
    resp = await api.get(f"/pagos/{id_pago}")
    assert resp.status == 404
    cuerpo = await resp.json()
    assert cumple("/pagos/{id_pago}", 404, cuerpo) == []
    assert (cuerpo["error"], cuerpo["anulado_por"]) == ("pago_no_encontrado", str(id_reverso))
    assert f"lo anuló el reverso {id_reverso}" in cuerpo["mensaje"]
    assert (await (await api.get("/pagos/atencion")).json())["reversos"] == []


def _plan(filas) -> str:
    return "\n".join(r[0] for r in filas)


async def test_las_consultas_de_reversos_pueden_usar_sus_indices(postgres):
    atencion = text(
        "EXPLAIN SELECT count(*) FROM reversos x WHERE x.requiere_atencion OR (x.lease_expira IS NOT NULL "
        "AND x.estado = 'PROCESANDO' AND x.fecha_creacion < now() - interval '1 hour')"
    )
    de_un_pago = text("EXPLAIN SELECT * FROM reversos x WHERE x.id_pago = :i ORDER BY x.fecha_creacion DESC")
    async with postgres.engine.connect() as conn:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = _plan(await conn.execute(atencion))
        # Each arm of the OR with a partial index of its own (the second: the lease's, or the one of
        # the reversals PROCESANDO), never a scan of every reversal.
        assert "BitmapOr" in plan, plan
        assert "ix_reversos_requiere_atencion" in plan, plan
        assert "Seq Scan" not in plan, plan
        plan = _plan(await conn.execute(de_un_pago, {"i": uuid.uuid4()}))
        assert "ix_reversos_id_pago" in plan, plan
