"""Beyond loopback the HTTP API wants a bearer token on every route but the probes; a missing or
unknown token gets the API's JSON error shape, never the data."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from pagos_worker.application.queries import (
    ListarPagosQueRequierenAtencionHandler,
    ObtenerEstadisticasOutboxHandler,
    ObtenerEstadoPagoHandler,
)
from pagos_worker.entrypoints.http_api import create_app, create_operations_app
from tests.unit.test_http_api import CONOCIDO, FakeViews, ready

TOKENS = ["tok_operador_1", "tok_prometheus_2"]


@pytest.fixture
async def api():
    views = FakeViews()
    app = create_app(
        ObtenerEstadoPagoHandler(views),
        ObtenerEstadisticasOutboxHandler(views),
        ListarPagosQueRequierenAtencionHandler(views),
        ready,
        TOKENS,
    )
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.mark.parametrize("ruta", ["/healthz", "/readyz"])
async def test_las_sondas_no_piden_token(api, ruta):
    assert (await api.get(ruta)).status == 200


@pytest.mark.parametrize(
    "ruta",
    ["/metrics", "/pagos/atencion", f"/pagos/{CONOCIDO}", "/openapi.json", "/asyncapi.json", "/docs",
     "/docs/swagger-ui-bundle.js", "/docs/inicio.js", "/nada"],
)  # fmt: skip
async def test_sin_token_es_401_en_json(api, ruta):
    resp = await api.get(ruta)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await resp.json())["error"] == "no_autenticado"


@pytest.mark.parametrize("cabecera", ["Bearer tok_operador_X", "Bearer tok_operador_1x", "Bearer  "])
async def test_un_token_desconocido_es_403_o_401(api, cabecera):
    resp = await api.get(f"/pagos/{CONOCIDO}", headers={"Authorization": cabecera})
    assert resp.status in {401, 403}
    cuerpo = await resp.json()
    assert cuerpo["error"] in {"no_autenticado", "no_autorizado"}
    assert "id_afiliado" not in cuerpo


@pytest.mark.parametrize("token", TOKENS)
async def test_cualquier_token_de_la_lista_vale(api, token):
    resp = await api.get(f"/pagos/{CONOCIDO}", headers={"Authorization": f"bearer {token}"})
    assert resp.status == 200
    assert (await resp.json())["id"] == str(CONOCIDO)


@pytest.mark.parametrize("ruta", ["/docs", "/docs/swagger-ui.css", "/asyncapi.json"])
async def test_las_descripciones_con_token_se_sirven(api, ruta):
    assert (await api.get(ruta, headers={"Authorization": f"Bearer {TOKENS[0]}"})).status == 200


async def test_un_esquema_que_no_es_bearer_es_401(api):
    resp = await api.get("/metrics", headers={"Authorization": "Basic dG9rX29wZXJhZG9yXzE6"})
    assert resp.status == 401


async def test_sin_tokens_configurados_no_se_pide_nada():
    async with TestClient(TestServer(create_operations_app(ready))) as c:
        assert (await c.get("/metrics")).status == 200
