"""Stripe's official Python SDK against the simulator, every answer checked against Stripe's
OpenAPI description (a `requests` hook validates each body the SDK receives)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import requests
import stripe

from tests.stripe_spec import validar_respuesta

T = TypeVar("T")


def _validar(respuesta: requests.Response, *_: Any, **__: Any) -> None:
    ruta = requests.utils.urlparse(respuesta.url).path
    validar_respuesta(respuesta.request.method or "GET", ruta, respuesta.status_code, respuesta.content)


class Sdk:
    """A StripeClient against the simulator; its calls run in a thread (the simulator is in this loop)."""

    def __init__(self, url: str, clave: str = "sk_test_sdk") -> None:
        sesion = requests.Session()
        sesion.hooks["response"].append(_validar)
        http = stripe.RequestsClient(session=sesion)
        self.cliente = stripe.StripeClient(clave, base_addresses={"api": url}, http_client=http, max_network_retries=0)
        self.transfers = self.cliente.v1.transfers
        self.reversals = self.cliente.v1.transfers.reversals

    async def __call__(self, llamada: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(functools.partial(llamada, *args, **kwargs))


class Reloj:
    """`created` of what the simulator makes, moved by the test."""

    def __init__(self) -> None:
        self.ahora = 1_700_000_000.0

    def __call__(self) -> float:
        return self.ahora
