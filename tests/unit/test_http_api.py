import dataclasses
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from unittest.mock import ANY

import pytest
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from pagos_worker.application.queries import (
    EstadisticasOutbox,
    ListarPagosQueRequierenAtencionHandler,
    ObtenerEstadisticasOutboxHandler,
    ObtenerEstadoPagoHandler,
    VistaComandoVenenoso,
    VistaDiferencia,
    VistaPago,
)
from pagos_worker.contract import http
from pagos_worker.contract.asyncapi import documento_publicado
from pagos_worker.entrypoints.http_api import create_app
from pagos_worker.entrypoints.openapi import openapi

CONOCIDO = uuid.UUID("550e8400-e29b-41d4-a716-446655440000")
ENVENENADO = uuid.UUID("00000000-0000-4000-8000-00000000dead")  # its command was dead-lettered, no payment
VENENOSO = VistaComandoVenenoso(
    message_id="(7,3,-1,-1)",
    id_pago=ENVENENADO,
    fallos=5,
    ultimo_error="DataError: value too long",
    primer_fallo=datetime(2026, 1, 1, 9, tzinfo=UTC),
    venenoso_desde=datetime(2026, 1, 1, 9, 5, tzinfo=UTC),
)


DIFERENCIA = VistaDiferencia(
    id=7,
    conciliacion=3,
    clase="transferencia_sin_exito",
    id_pago=CONOCIDO,
    id_reverso=None,
    referencia="tr_9",
    servicio={"id_pago": str(CONOCIDO), "estado": "PROCESANDO", "unidades_menores": 10050, "moneda": "USD"},
    pasarela={"referencia": "tr_9", "unidades_menores": 10050, "moneda": "usd", "destino": "acct_1"},
    creada=datetime(2026, 1, 2, 3, tzinfo=UTC),
)
DIFERENCIA_JSON = {
    "id": 7,
    "conciliacion": 3,
    "clase": "transferencia_sin_exito",
    "critica": True,
    "id_pago": str(CONOCIDO),
    "id_reverso": None,
    "referencia": "tr_9",
    "creada": "2026-01-02T03:00:00.000Z",
    "servicio": {"id_pago": str(CONOCIDO), "estado": "PROCESANDO", "unidades_menores": 10050, "moneda": "USD"},
    "pasarela": {"referencia": "tr_9", "unidades_menores": 10050, "moneda": "usd", "destino": "acct_1"},
}


class FakeViews:
    def __init__(self, falla: bool = False) -> None:
        self.falla = falla

    async def estado_pago(self, id_pago):
        if self.falla:
            raise ConnectionError("database down")
        if id_pago != CONOCIDO:
            return None
        return VistaPago(
            id=CONOCIDO,
            id_afiliado="afiliado_123",
            monto=Decimal("100.50"),
            moneda="USD",
            estado="EXITOSO",
            referencia_pago="tr_1",
            fecha_creacion=datetime(2026, 1, 1, 10, tzinfo=UTC),
            fecha_procesamiento=datetime(2026, 1, 1, 10, 0, 5, tzinfo=UTC),
            mensaje_error=None,
            intentos=1,
        )

    async def estadisticas_outbox(self):
        return EstadisticasOutbox(10, 8, 2, 1.5)

    async def requieren_atencion(self, limite):
        vista = await self.estado_pago(CONOCIDO)
        return [
            dataclasses.replace(
                vista, estado="PROCESANDO", requiere_atencion=True, ultimo_error="timeout", diferencias=(DIFERENCIA,)
            )
        ]

    async def contar_requieren_atencion(self):
        return 1

    async def comandos_venenosos(self, limite):
        return [VENENOSO]

    async def comando_venenoso(self, id_pago):
        return VENENOSO if id_pago == ENVENENADO else None

    async def anulado_por(self, id_pago):
        return None

    async def reversos_requieren_atencion(self, limite, filtro=None):
        return []

    async def diferencias_sin_resolver(self, limite, creadas_antes=None):
        return [DIFERENCIA]


def app_con(views, readiness):
    return create_app(
        ObtenerEstadoPagoHandler(views),
        ObtenerEstadisticasOutboxHandler(views),
        ListarPagosQueRequierenAtencionHandler(views),
        readiness,
    )


async def ready():
    return {"postgres": "ok", "pulsar": "ok"}


@pytest.fixture
async def client():
    views = FakeViews()
    app = app_con(views, ready)
    async with TestClient(TestServer(app)) as c:
        c.views = views
        yield c


async def test_estado_de_un_pago(client):
    resp = await client.get(f"/pagos/{CONOCIDO}")
    assert resp.status == 200
    assert await resp.json() == {
        "id": str(CONOCIDO),
        "id_afiliado": "afiliado_123",
        "monto": "100.50",
        "moneda": "USD",
        "estado": "EXITOSO",
        "referencia_pago": "tr_1",
        "fecha_creacion": "2026-01-01T10:00:00.000Z",
        "fecha_procesamiento": "2026-01-01T10:00:05.000Z",
        "mensaje_error": None,
        "intentos": 1,
        "requiere_atencion": False,
        "ultimo_error": None,
        "comando_venenoso": None,
        "resolucion": None,
        "monto_reversado": "0.00",
        "reversos": [],
        "diferencias": [],
    }


async def test_pagos_que_requieren_atencion(client):
    resp = await client.get("/pagos/atencion")
    assert resp.status == 200
    cuerpo = await resp.json()
    [pago] = cuerpo["pagos"]
    assert (pago["id"], pago["requiere_atencion"], pago["ultimo_error"]) == (str(CONOCIDO), True, "timeout")
    assert pago["diferencias"] == [DIFERENCIA_JSON]
    assert cuerpo["comandos_venenosos"] == [VENENOSO_JSON]
    assert cuerpo["diferencias"] == [DIFERENCIA_JSON]  # unresolved: listed until an operator resolves it


VENENOSO_JSON = {
    "id_pago": str(ENVENENADO),
    "message_id": "(7,3,-1,-1)",
    "motivo": "error_repetido",
    "fallos": 5,
    "ultimo_error": "DataError: value too long",
    "primer_fallo": "2026-01-01T09:00:00.000Z",
    "en_dlq_desde": "2026-01-01T09:05:00.000Z",
}


async def test_un_pago_cuyo_comando_acabo_en_la_dlq_lo_muestra_aun_sin_existir(client):
    resp = await client.get(f"/pagos/{ENVENENADO}")
    assert resp.status == 404
    cuerpo = await resp.json()
    assert cuerpo["error"] == "pago_no_encontrado"
    assert cuerpo["comando_venenoso"] == VENENOSO_JSON


async def test_pago_desconocido_es_404_json(client):
    resp = await client.get(f"/pagos/{uuid.uuid4()}")
    assert resp.status == 404
    assert await resp.json() == {"error": "pago_no_encontrado", "mensaje": ANY}


@pytest.mark.parametrize("malo", ["no-es-uuid", "1234", "%00", "x" * 500, "outbox", "atencionx"])
async def test_id_malformado_es_400_json(client, malo):
    resp = await client.get(f"/pagos/{malo}")
    assert resp.status == 400
    assert resp.content_type == "application/json"
    assert (await resp.json())["error"] == "id_pago_invalido"


async def test_estadisticas_del_outbox(client):
    resp = await client.get("/pagos/outbox/estadisticas")
    assert await resp.json() == {
        "total_eventos": 10,
        "eventos_procesados": 8,
        "eventos_pendientes": 2,
        "antiguedad_pendiente_mas_antiguo_s": 1.5,
    }


async def test_rutas_desconocidas_y_metodos_no_permitidos_son_json(client):
    resp = await client.get("/nada")
    assert (resp.status, resp.content_type) == (404, "application/json")
    resp = await client.post(f"/pagos/{CONOCIDO}", data=b"{}")
    assert (resp.status, resp.content_type) == (405, "application/json")
    assert (await resp.json())["error"] == "metodo_no_permitido"


async def test_almacenamiento_caido_es_503_sin_traza(client):
    client.views.falla = True
    resp = await client.get(f"/pagos/{CONOCIDO}")
    assert resp.status == 503
    body = await resp.text()
    assert "Traceback" not in body
    assert "database down" not in body


async def test_salud_y_preparacion(client):
    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert (await resp.json())["checks"] == {"postgres": "ok", "pulsar": "ok"}


async def test_readyz_503_si_falta_algo():
    async def no_ready():
        return {"postgres": "ok", "pulsar": "error: Timeout"}

    views = FakeViews()
    app = app_con(views, no_ready)
    async with TestClient(TestServer(app)) as c:
        resp = await c.get("/readyz")
        assert resp.status == 503


async def test_openapi(client):
    spec = await (await client.get("/openapi.json")).json()
    assert spec == openapi()
    assert spec["openapi"].startswith("3.")
    assert "/pagos/{id_pago}" in spec["paths"]
    # The answer's every field is always there (null where it has no value), and the schema says so.
    assert spec["components"]["schemas"]["Pago"]["required"] == list(http.Pago.model_fields)
    assert {"intentos", "requiere_atencion", "ultimo_error"} <= set(spec["components"]["schemas"]["Pago"]["required"])


def cumple(ruta: str, status: int, cuerpo) -> list[str]:
    """The answer against the schema that the OpenAPI document gives for that route and status."""
    respuesta = openapi()["paths"][ruta]["get"]["responses"][str(status)]
    schema = respuesta["content"]["application/json"]["schema"]
    registro = Registry().with_resource("urn:openapi", Resource.from_contents(openapi(), DRAFT202012))
    validador = Draft202012Validator({"$ref": "urn:openapi#/components/schemas/" + schema["$ref"].split("/")[-1]}
                                     if "$ref" in schema else schema, registry=registro)  # fmt: skip
    return [f"{e.json_path}: {e.message}" for e in validador.iter_errors(cuerpo)]


@pytest.mark.parametrize(
    ("ruta", "plantilla", "status"),
    [
        (f"/pagos/{CONOCIDO}", "/pagos/{id_pago}", 200),
        ("/pagos/no-es-uuid", "/pagos/{id_pago}", 400),
        (f"/pagos/{uuid.UUID(int=5)}", "/pagos/{id_pago}", 404),
        ("/pagos/atencion", "/pagos/atencion", 200),
        ("/pagos/outbox/estadisticas", "/pagos/outbox/estadisticas", 200),
        ("/healthz", "/healthz", 200),
        ("/readyz", "/readyz", 200),
    ],
)
async def test_cada_respuesta_cumple_su_esquema_openapi(client, ruta, plantilla, status):
    resp = await client.get(ruta)
    assert resp.status == status
    assert cumple(plantilla, status, await resp.json()) == []


async def test_asyncapi_es_el_documento_del_paquete(client):
    resp = await client.get("/asyncapi.json")
    assert (resp.status, resp.content_type) == (200, "application/json")
    assert await resp.read() == documento_publicado()


async def test_docs_sirve_swagger_ui_del_paquete(client):
    resp = await client.get("/docs")
    assert (resp.status, resp.content_type) == (200, "text/html")
    pagina = await resp.text()
    assert 'src="docs/swagger-ui-bundle.js"' in pagina
    assert "//" not in pagina  # nothing from elsewhere
    inicio = await (await client.get("/docs/inicio.js")).text()
    assert "supportedSubmitMethods: []" in inicio  # read-only: no "Try it out"
    assert "validatorUrl: null" in inicio
    bundle = await client.get("/docs/swagger-ui-bundle.js")
    assert (bundle.status, bundle.content_type) == (200, "text/javascript")
    assert len(await bundle.read()) > 500_000
    assert (await client.get("/docs/swagger-ui.css")).status == 200


@pytest.mark.parametrize("archivo", ["index.html", "swagger-initializer.js", "swagger-ui.js.map", "../__init__.py"])
async def test_docs_no_sirve_el_resto_de_la_carpeta(client, archivo):
    resp = await client.get(f"/docs/{archivo}")
    assert resp.status == 404
    assert resp.content_type == "application/json"


async def test_metricas_de_prometheus(client):
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    texto = await resp.text()
    for nombre in ("pagos_finales_total", "pagos_latencia_segundos", "pasarela_latencia_segundos",
                   "pagos_en_curso", "outbox_pendientes", "outbox_lag_segundos", "pagos_dlq_total",
                   "pasarela_circuito_abierto", "pagos_requieren_atencion"):  # fmt: skip
        assert f"# TYPE {nombre.removesuffix('_total')}" in texto
