"""The operators' HTTP API: read-only JSON, every error a JSON body, never a stack trace."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

import orjson
import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from pagos_worker import observability as metrics
from pagos_worker.application.ports.operador import Resolucion
from pagos_worker.application.queries import (
    ListarPagosQueRequierenAtencionHandler,
    ObtenerEstadisticasOutboxHandler,
    ObtenerEstadoPago,
    ObtenerEstadoPagoHandler,
    PagoNoEncontradoError,
    VistaComandoVenenoso,
    VistaDiferencia,
    VistaPago,
    VistaReverso,
)
from pagos_worker.contract.asyncapi import documento_publicado
from pagos_worker.contract.wire import iso_utc
from pagos_worker.domain.conciliacion import ClaseDiferencia
from pagos_worker.entrypoints.docs import add_docs_routes
from pagos_worker.entrypoints.openapi import openapi

log = structlog.get_logger(__name__)

Readiness = Callable[[], Awaitable[dict[str, str]]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
        "resolucion": resolucion_json(vista.resolucion) if vista.resolucion else None,
        "monto_reversado": monto_json(vista.monto_reversado),
        "reversos": [reverso_json(r) for r in vista.reversos],
        "diferencias": [diferencia_json(d) for d in vista.diferencias],
    }


def diferencia_json(d: VistaDiferencia) -> dict[str, Any]:
    return {
        "id": d.id,
        "conciliacion": d.conciliacion,
        "clase": d.clase,
        "critica": ClaseDiferencia(d.clase).critica,
        "id_pago": str(d.id_pago) if d.id_pago else None,
        "id_reverso": str(d.id_reverso) if d.id_reverso else None,
        "referencia": d.referencia,
        "creada": iso_utc(d.creada),
        "servicio": dict(d.servicio),
        "pasarela": dict(d.pasarela),
    }


def monto_json(monto: Decimal | None) -> str | None:
    """With the currencies' two decimals, however the amount was held (`0` is `0.00`)."""
    return None if monto is None else str(monto.quantize(_CENTIMOS))


_CENTIMOS = Decimal("0.01")


def reverso_json(vista: VistaReverso) -> dict[str, Any]:
    return {
        "id_reverso": str(vista.id_reverso),
        "monto": monto_json(vista.monto),
        "moneda": vista.moneda,
        "monto_pedido": monto_json(vista.monto_pedido),
        "estado": vista.estado,
        "referencia_reverso": vista.referencia_reverso,
        "motivo": vista.motivo,
        "descripcion": vista.descripcion,
        "codigo": vista.codigo,
        "mensaje_error": vista.mensaje_error,
        "operador": vista.operador,
        "fecha_creacion": iso_utc(vista.fecha_creacion),
        "fecha_procesamiento": iso_utc(vista.fecha_procesamiento) if vista.fecha_procesamiento else None,
        "requiere_atencion": vista.requiere_atencion,
        "ultimo_error": vista.ultimo_error,
    }


def reverso_en_atencion_json(vista: VistaReverso) -> dict[str, Any]:
    """A reversal on the attention list: with its payment, and why it is there."""
    return {**reverso_json(vista), "id_pago": str(vista.id_pago), "causa": str(vista.causa) if vista.causa else None}


def resolucion_json(resolucion: Resolucion) -> dict[str, Any]:
    return {
        "operador": resolucion.operador,
        "fecha": iso_utc(resolucion.fecha),
        "motivo": resolucion.motivo,
        "estado": resolucion.estado.value,
        "transferencias": [
            {
                "referencia": t.referencia,
                "monto": None if t.unidades_menores is None else str(Decimal(t.unidades_menores).scaleb(-2)),
                "moneda": t.moneda,
                "fecha_creacion": iso_utc(t.creada) if t.creada else None,
                "destino": t.destino,
            }
            for t in resolucion.transferencias
        ],
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
    """404; with the command, when it was dead-lettered as poison before its payment was stored,
    and the reversal that annulled it, when one came first."""
    cuerpo: dict[str, Any] = {"error": "pago_no_encontrado", "mensaje": str(exc)}
    if exc.comando_venenoso is not None:
        cuerpo["comando_venenoso"] = venenoso_json(exc.comando_venenoso)
    if exc.anulado_por is not None:
        cuerpo["anulado_por"] = str(exc.anulado_por)
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


SIN_TOKEN = frozenset({"/healthz", "/readyz"})  # probes: the orchestrator knows no token


def exigir_token(tokens: Sequence[str]) -> Middleware:
    """Every route but the probes wants `Authorization: Bearer <one of tokens>`: 401 without one,
    403 with one that is not known. Compared in constant time, against every token."""
    esperados = [t.encode() for t in tokens]

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in SIN_TOKEN:
            return await handler(request)
        esquema, _, dado = request.headers.get("Authorization", "").partition(" ")
        if esquema.lower() != "bearer" or not dado.strip():
            respuesta = error(401, "no_autenticado", "falta la cabecera Authorization: Bearer <token>")
            respuesta.headers["WWW-Authenticate"] = 'Bearer realm="pagos-worker"'
            return respuesta
        candidato = dado.strip().encode()
        if not any([hmac.compare_digest(candidato, t) for t in esperados]):  # noqa: C419 - all compared
            return error(403, "no_autorizado", "el token no es válido")
        return await handler(request)

    return middleware


def create_operations_app(readiness: Readiness, tokens: Sequence[str] = ()) -> web.Application:
    """What every process serves, whatever its roles: liveness, readiness and its metrics. With
    `tokens`, every route but /healthz and /readyz asks for one of them."""

    async def healthz(_: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        checks = await readiness()
        ok = all(v == "ok" for v in checks.values())
        return json_response({"status": "ok" if ok else "no_disponible", "checks": checks}, 200 if ok else 503)

    async def prometheus(_: web.Request) -> web.Response:
        response = web.Response(body=metrics.exposicion())
        response.headers["Content-Type"] = metrics.CONTENT_TYPE
        return response

    middlewares: list[Middleware] = [errores_json, exigir_token(tokens)] if tokens else [errores_json]
    app = web.Application(middlewares=middlewares, client_max_size=64 * 1024)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", prometheus)
    return app


def create_app(
    estado_pago: ObtenerEstadoPagoHandler,
    estadisticas: ObtenerEstadisticasOutboxHandler,
    atencion: ListarPagosQueRequierenAtencionHandler,
    readiness: Readiness,
    tokens: Sequence[str] = (),
) -> web.Application:
    """The operators' API: the status queries, on top of what every process serves, and the
    service's descriptions: /openapi.json (shown at /docs) and /asyncapi.json (the messaging contract)."""

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
                "reversos": [reverso_en_atencion_json(r) for r in a.reversos],
                "diferencias": [diferencia_json(d) for d in a.diferencias],
                "limite": 100,
            }
        )

    descripcion_openapi = orjson.dumps(openapi())
    descripcion_asyncapi = documento_publicado()

    async def get_openapi(_: web.Request) -> web.Response:
        return web.Response(body=descripcion_openapi, content_type="application/json")

    async def get_asyncapi(_: web.Request) -> web.Response:
        return web.Response(body=descripcion_asyncapi, content_type="application/json")

    app = create_operations_app(readiness, tokens)
    app.router.add_get("/pagos/outbox/estadisticas", get_estadisticas)
    app.router.add_get("/pagos/atencion", get_atencion)  # before /pagos/{id_pago}, which would take it
    app.router.add_get("/pagos/{id_pago}", get_pago)
    app.router.add_get("/openapi.json", get_openapi)
    app.router.add_get("/asyncapi.json", get_asyncapi)
    add_docs_routes(app)
    return app
