"""Bodies checked against Stripe's own OpenAPI description (`../shared/stripe/spec3.json`).

The spec is OpenAPI 3.0: `nullable: true` becomes a JSON Schema `null` alternative, and `$ref`s
resolve against the whole document. A clone without `../shared/` still runs the simulator's tests:
their bodies go unchecked (the run's summary says so) and the tests about the spec itself skip."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC = Path(__file__).resolve().parents[1] / ".." / "shared" / "stripe" / "spec3.json"
_URI = "urn:stripe:spec3"
validados: dict[str, int] = {"cuerpos": 0, "sin_comprobar": 0}  # reported at the end of the run


def requerir_spec() -> None:
    if not SPEC.is_file():
        pytest.skip(f"Stripe's OpenAPI description is not at {SPEC} (../shared/ is absent): spec checks skipped")


def _anulable(nodo: Any) -> Any:
    if isinstance(nodo, list):
        return [_anulable(n) for n in nodo]
    if not isinstance(nodo, dict):
        return nodo
    nodo = {k: _anulable(v) for k, v in nodo.items()}
    if nodo.pop("nullable", False) is True:
        if "$ref" in nodo:
            nodo = {"anyOf": [{"$ref": nodo.pop("$ref")}, {"type": "null"}], **nodo}
        elif "anyOf" in nodo:
            nodo["anyOf"] = [*nodo["anyOf"], {"type": "null"}]
        elif "type" in nodo:
            nodo["type"] = [nodo["type"], "null"]
            if "enum" in nodo:
                nodo["enum"] = [*nodo["enum"], None]
    return nodo


@functools.cache
def _documento() -> tuple[dict[str, Any], Registry[Any]]:
    documento = _anulable(orjson.loads(SPEC.read_bytes()))
    recurso = Resource.from_contents(documento, default_specification=DRAFT202012)
    return documento, Registry().with_resource(_URI, recurso)


@functools.cache
def _validador(puntero: str) -> Draft202012Validator:
    _, registro = _documento()
    return Draft202012Validator({"$ref": f"{_URI}#{puntero}"}, registry=registro)


@functools.cache
def _rutas() -> list[tuple[re.Pattern[str], str]]:
    documento, _ = _documento()
    return [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", ruta) + "$"), ruta) for ruta in documento["paths"]]


def puntero_de_respuesta(metodo: str, ruta: str, status: int) -> str:
    """Where the spec describes the body of that answer (`default` for errors)."""
    documento, _ = _documento()
    for patron, plantilla in _rutas():
        if patron.match(ruta):
            operacion = documento["paths"][plantilla][metodo.lower()]
            codigo = str(status) if str(status) in operacion["responses"] else "default"
            escapada = plantilla.replace("~", "~0").replace("/", "~1")
            return f"/paths/{escapada}/{metodo.lower()}/responses/{codigo}/content/application~1json/schema"
    raise AssertionError(f"{metodo} {ruta} is not in Stripe's spec")


def validar_respuesta(metodo: str, ruta: str, status: int, cuerpo: bytes | dict[str, Any]) -> None:
    """Fails the test when the body is not what the spec says that operation answers."""
    if not SPEC.is_file():
        validados["sin_comprobar"] += 1
        return
    valor = orjson.loads(cuerpo) if isinstance(cuerpo, bytes) else cuerpo
    errores = sorted(_validador(puntero_de_respuesta(metodo, ruta, status)).iter_errors(valor), key=str)
    assert not errores, f"{metodo} {ruta} {status}: {errores[0].message} at {list(errores[0].absolute_path)}"
    validados["cuerpos"] += 1


def validar_esquema(nombre: str, valor: dict[str, Any]) -> None:
    if not SPEC.is_file():
        validados["sin_comprobar"] += 1
        return
    errores = list(_validador(f"/components/schemas/{nombre}").iter_errors(valor))
    assert not errores, f"{nombre}: {errores[0].message} at {list(errores[0].absolute_path)}"
    validados["cuerpos"] += 1


def propiedades(nombre: str) -> set[str]:
    requerir_spec()
    return set(_documento()[0]["components"]["schemas"][nombre]["properties"])


def resumen() -> str | None:
    """The run's line about the spec: how many bodies were checked against it, or went unchecked."""
    if not validados["cuerpos"] and not validados["sin_comprobar"]:
        return None
    if validados["sin_comprobar"]:
        return f"Stripe spec: absent at {SPEC}: {validados['sin_comprobar']} bodies went unchecked"
    return f"Stripe spec: {validados['cuerpos']} response bodies validated against {SPEC.resolve()}"


def parametros_de_la_peticion(metodo: str, plantilla: str) -> dict[str, str]:
    """The parameters the spec lets that operation take (`plantilla` as the spec writes the path),
    by name, as the simulator's `parametros.Tipo` values: the query's for a GET, the form's for a POST."""
    requerir_spec()
    operacion = _documento()[0]["paths"][plantilla][metodo.lower()]
    if metodo.upper() == "GET":
        esquemas = {p["name"]: p["schema"] for p in operacion.get("parameters", []) if p["in"] == "query"}
    else:
        esquemas = operacion["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["properties"]
    return {nombre: _tipo(esquema) for nombre, esquema in esquemas.items()}


def _tipo(esquema: dict[str, Any]) -> str:
    if "anyOf" not in esquema:
        tipo = esquema["type"][0] if isinstance(esquema["type"], list) else esquema["type"]
        return "hash" if tipo == "object" and "additionalProperties" in esquema else str(tipo)  # metadata
    alternativas = {_tipo(a) for a in esquema["anyOf"]}
    if alternativas == {"hash", "string"}:
        return "hash"  # metadata, or "" to unset it
    if alternativas == {"object", "integer"}:
        return "range"  # created: an integer, or gt/gte/lt/lte
    return "|".join(sorted(alternativas))
