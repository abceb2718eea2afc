"""The operators' HTTP API: read-only JSON, every error a JSON body, never a stack trace."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiohttp import web

from pagos_worker import observability as metrics
from pagos_worker.application.queries import (
    ListarPagosQueRequierenAtencionHandler,
    ObtenerEstadisticasOutboxHandler,
    ObtenerEstadoPago,
    ObtenerEstadoPagoHandler,
    PagoNoEncontradoError,
    VistaComandoVenenoso,
    VistaPago,
)
from pagos_worker.contract.wire import iso_utc
from pagos_worker.entrypoints.openapi import OPENAPI

log = structlog.get_logger(__name__)

Readiness = Callable[[], Awaitable[dict[str, str]]]


def json_response(body: Any, status: int = 200) -> web.Response:  # noqa: ANN401 - any JSON value
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def error(status: int, codigo: str, mensaje: str) -> web.Response:
    return json_response({"error": codigo, "mensaje": mensaje}, status)


def vista_json(vista: VistaPago) -> dict[str, Any]:
    return {
        "id": str(vista.id),
        "id_afiliado": vista.id_afiliado,
        "monto": str(vista.monto),
        "moneda": vista.moneda,
        "estado": vista.estado,
        "referencia_pago": vista.referencia_pago,
        "fecha_creacion": iso_utc(vista.fecha_creacion),
        "fecha_procesamiento": iso_utc(vista.fecha_procesamiento) if vista.fecha_procesamiento else None,
        "mensaje_error": vista.mensaje_error,
        "intentos": vista.intentos,
        "requiere_atencion": vista.requiere_atencion,
        "ultimo_error": vista.ultimo_error,
        "comando_venenoso": venenoso_json(vista.comando_venenoso) if vista.comando_venenoso else None,
    }


def venenoso_json(vista: VistaComandoVenenoso) -> dict[str, Any]:
    return {
        "id_pago": str(vista.id_pago) if vista.id_pago else None,
        "message_id": vista.message_id,
        "motivo": "error_repetido",  # as on the dead-letter topic
        "fallos": vista.fallos,
        "ultimo_error": vista.ultimo_error,
        "primer_fallo": iso_utc(vista.primer_fallo),
        "en_dlq_desde": iso_utc(vista.venenoso_desde),
    }


def no_encontrado(exc: PagoNoEncontradoError) -> web.Response:
    """404; with the command, when it was dead-lettered as poison before its payment was stored."""
    cuerpo: dict[str, Any] = {"error": "pago_no_encontrado", "mensaje": str(exc)}
    if exc.comando_venenoso is not None:
        cuerpo["comando_venenoso"] = venenoso_json(exc.comando_venenoso)
    return json_response(cuerpo, 404)


@web.middleware
async def errores_json(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:  # noqa: PLR2004 - redirects and the like pass through
            raise
        codigo = {404: "no_encontrado", 405: "metodo_no_permitido"}.get(exc.status, "peticion_invalida")
        response = error(exc.status, codigo, exc.reason)
        if exc.status == 405:  # noqa: PLR2004
            response.headers["Allow"] = exc.headers.get("Allow", "GET")
        return response
    except Exception:
        log.exception("http.error", path=request.path)
        return error(503, "no_disponible", "el servicio no puede responder ahora; reintente")


def create_app(
    estado_pago: ObtenerEstadoPagoHandler,
    estadisticas: ObtenerEstadisticasOutboxHandler,
    atencion: ListarPagosQueRequierenAtencionHandler,
    readiness: Readiness,
) -> web.Application:
    async def get_pago(request: web.Request) -> web.Response:
        texto = request.match_info["id_pago"]
        try:
            id_pago = uuid.UUID(texto)
        except ValueError:
            return error(400, "id_pago_invalido", f"id_pago debe ser un UUID: {texto[:80]!r}")
        try:
            vista = await estado_pago(ObtenerEstadoPago(id_pago))
        except PagoNoEncontradoError as exc:
            return no_encontrado(exc)
        return json_response(vista_json(vista))

    async def get_estadisticas(_: web.Request) -> web.Response:
        e = await estadisticas()
        return json_response(
            {
                "total_eventos": e.total_eventos,
                "eventos_procesados": e.eventos_procesados,
                "eventos_pendientes": e.eventos_pendientes,
                "antiguedad_pendiente_mas_antiguo_s": e.antiguedad_pendiente_mas_antiguo_s,
            }
        )

    async def get_atencion(_: web.Request) -> web.Response:
        a = await atencion(100)
        return json_response(
            {
                "pagos": [vista_json(v) for v in a.pagos],
                "comandos_venenosos": [venenoso_json(v) for v in a.comandos_venenosos],
                "limite": 100,
            }
        )

    async def healthz(_: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        checks = await readiness()
        ok = all(v == "ok" for v in checks.values())
        return json_response({"status": "ok" if ok else "no_disponible", "checks": checks}, 200 if ok else 503)

    async def openapi(_: web.Request) -> web.Response:
        return json_response(OPENAPI)

    async def prometheus(_: web.Request) -> web.Response:
        response = web.Response(body=metrics.exposicion())
        response.headers["Content-Type"] = metrics.CONTENT_TYPE
        return response

    app = web.Application(middlewares=[errores_json], client_max_size=64 * 1024)
    app.router.add_get("/pagos/outbox/estadisticas", get_estadisticas)
    app.router.add_get("/pagos/atencion", get_atencion)  # before /pagos/{id_pago}, which would take it
    app.router.add_get("/pagos/{id_pago}", get_pago)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/metrics", prometheus)
    return app
