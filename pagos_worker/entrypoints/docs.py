"""GET /docs: the OpenAPI description as a page, with Swagger UI from the installed package
`swagger-ui-bundle-v2` (nothing is fetched from elsewhere). Read-only: no "Try it out", no
validator badge (which would call an outside service). Only the two files the page needs are
served from the bundle, not its whole folder (its sample page points at a public pet store)."""

from __future__ import annotations

from pathlib import Path

import orjson
from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from pagos_worker.entrypoints.openapi import openapi

_CARPETA = Path(str(swagger_ui_path))
_ARCHIVOS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}

# Relative addresses: right at /docs, and behind a proxy that serves the API under a prefix.
_PAGINA = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>pagos_worker status API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/inicio.js"></script>
</body>
</html>
"""
# The description is in the script itself, and the page is drawn as the script runs: no fetch
# after the load, so what a screenshot or a crawler sees at the load event is the finished page,
# not Swagger UI's spinner (the same document as /openapi.json, generated from the same models).
_INICIO = """window.ui = SwaggerUIBundle({
  spec: %s,
  dom_id: "#swagger-ui",
  supportedSubmitMethods: [],
  validatorUrl: null,
  deepLinking: true
});
"""
_CABECERAS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


def add_docs_routes(app: web.Application) -> None:
    async def pagina(_: web.Request) -> web.Response:
        return web.Response(text=_PAGINA, content_type="text/html", headers=_CABECERAS)

    guion = _INICIO % orjson.dumps(openapi()).decode()

    async def inicio(_: web.Request) -> web.Response:
        return web.Response(text=guion, content_type="text/javascript", headers=_CABECERAS)

    async def archivo(request: web.Request) -> web.StreamResponse:
        nombre = request.match_info["archivo"]
        if nombre not in _ARCHIVOS:
            raise web.HTTPNotFound
        return web.FileResponse(_CARPETA / nombre, headers={"Content-Type": _ARCHIVOS[nombre], **_CABECERAS})

    app.router.add_get("/docs", pagina)
    app.router.add_get("/docs/inicio.js", inicio)
    app.router.add_get("/docs/{archivo}", archivo)
