"""`pagos-dev contract`: the generated files, written into the checkout: the contract's documents,
from its models (the AsyncAPI document, package data the service serves at /asyncapi.json; the JSON
Schema of every message; the HTTP API's OpenAPI document), and deploy/prometheus's PrometheusRule,
from the alert rules (`monitorizacion`). With `--check`, writes nothing and fails if a committed
file differs from what they give (the tests check the same)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pagos_dev.tools import monitorizacion
from pagos_worker.config import (
    CONTRACT_COMMANDS_TOPIC,
    CONTRACT_DLQ_TOPIC,
    CONTRACT_EVENTS_TOPIC,
    CONTRACT_SUBSCRIPTION,
)
from pagos_worker.contract.asyncapi import ARCHIVO, Topics, asyncapi
from pagos_worker.contract.schemas import esquemas_de_mensajes
from pagos_worker.entrypoints.openapi import openapi

TOPICS = Topics(CONTRACT_COMMANDS_TOPIC, CONTRACT_EVENTS_TOPIC, CONTRACT_DLQ_TOPIC, CONTRACT_SUBSCRIPTION)


def texto(documento: Any) -> bytes:  # noqa: ANN401 - any JSON value
    return (json.dumps(documento, indent=2, ensure_ascii=False) + "\n").encode()


def documentos(raiz: Path) -> dict[str, bytes]:
    """Every generated file, by its path in the checkout at `raiz` (the PrometheusRule is made from
    that checkout's rules file)."""
    archivos = {f"pagos_worker/contract/{ARCHIVO}": texto(asyncapi(TOPICS))}
    archivos["docs/contract/openapi.json"] = texto(openapi())
    for nombre, esquema in esquemas_de_mensajes().items():
        archivos[f"docs/contract/schemas/{nombre}.json"] = texto(esquema)
    archivos[monitorizacion.PROMETHEUSRULE] = monitorizacion.prometheusrule(raiz).encode()
    return archivos


def desfasados(raiz: Path) -> list[str]:
    """The generated files that are missing from the checkout or differ from it."""
    return [ruta for ruta, contenido in documentos(raiz).items() if _leer(raiz / ruta) != contenido]


def escribir(raiz: Path) -> list[str]:
    """Write what changed; return those paths."""
    cambiados = desfasados(raiz)
    todos = documentos(raiz)
    for ruta in cambiados:
        (raiz / ruta).parent.mkdir(parents=True, exist_ok=True)
        (raiz / ruta).write_bytes(todos[ruta])
    return cambiados


def main(raiz: Path, *, comprobar: bool) -> int:
    if not (raiz / "setup.cfg").is_file() or not (raiz / "pagos_worker").is_dir():
        print(f"{raiz} is not a pagos_worker checkout (run from its root or pass --raiz)")
        return 2
    if comprobar:
        malos = desfasados(raiz)
        for ruta in malos:
            print(f"out of date: {ruta} (make contract)")
        return 1 if malos else 0
    for ruta in escribir(raiz):
        print(f"wrote {ruta}")
    return 0


def _leer(ruta: Path) -> bytes | None:
    return ruta.read_bytes() if ruta.is_file() else None
