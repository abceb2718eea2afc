"""Stripe's error responses: `{"error": {"type", "message", "code", "param", "doc_url"}}` with the
status Stripe gives each kind (its SDKs choose their exception class by status and type)."""

from __future__ import annotations

from typing import Any

import orjson

_DOCS = "https://stripe.com/docs/error-codes/"


class ErrorStripeError(Exception):
    """Raised by a handler: the response is this error, with whatever headers it brings."""

    def __init__(
        self,
        status: int,
        mensaje: str,
        *,
        tipo: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        cabeceras: dict[str, str] | None = None,
    ) -> None:
        super().__init__(mensaje)
        self.status = status
        self.mensaje = mensaje
        self.tipo = tipo
        self.code = code
        self.param = param
        self.cabeceras = cabeceras or {}

    def cuerpo(self) -> bytes:
        error: dict[str, Any] = {"message": self.mensaje, "type": self.tipo}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = _DOCS + self.code.replace("_", "-")
        if self.param:
            error["param"] = self.param
        return orjson.dumps({"error": error})


def invalido(mensaje: str, param: str | None = None, code: str | None = None) -> ErrorStripeError:
    return ErrorStripeError(400, mensaje, code=code, param=param)


def desconocido(param: str, sugerencia: str | None = None) -> ErrorStripeError:
    mensaje = f"Received unknown parameter: {param}"
    if sugerencia:
        mensaje += f". Did you mean {sugerencia}?"
    return invalido(mensaje, param, "parameter_unknown")


def falta(param: str) -> ErrorStripeError:
    return invalido(f"Missing required param: {param}.", param, "parameter_missing")


def vacio(param: str) -> ErrorStripeError:
    mensaje = (
        f"You passed an empty string for '{param}'. We assume empty values are an attempt to unset a "
        f"parameter; however '{param}' cannot be unset. You should remove '{param}' from your request "
        "or supply a non-empty value."
    )
    return invalido(mensaje, param, "parameter_invalid_empty")


def entero_invalido(param: str, valor: str) -> ErrorStripeError:
    return invalido(f"Invalid integer: {valor[:100]}", param, "parameter_invalid_integer")


def no_existe(objeto: str, id_objeto: str, param: str | None = None, status: int = 404) -> ErrorStripeError:
    mensaje = f"No such {objeto}: '{id_objeto[:100]}'"
    return ErrorStripeError(status, mensaje, code="resource_missing", param=param)


def error_interno(cabeceras: dict[str, str] | None = None) -> ErrorStripeError:
    mensaje = "An unknown error occurred. Please try again later."
    return ErrorStripeError(500, mensaje, tipo="api_error", cabeceras=cabeceras)
