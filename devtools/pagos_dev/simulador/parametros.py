"""Request parameters as Stripe reads them, out of the pairs `formularios` decodes: bracketed
names (`metadata[id_pago]`, `expand[]`, `expand[0]`, `created[gte]`) checked against what each
endpoint takes (as the spec lists them): an unknown name is a 400 `parameter_unknown` naming it,
before anything happens."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Any

from pagos_dev.simulador import errores

MAX_TEXTO = 5000
RANGO = ("gt", "gte", "lt", "lte")


class Tipo(Enum):
    TEXTO = "string"
    ENTERO = "integer"
    LISTA = "array"  # of strings (expand)
    HASH = "hash"  # of strings (metadata)
    RANGO = "range"  # an integer, or gt/gte/lt/lte integers (created)
    BOOLEANO = "boolean"  # true or false (refund_application_fee)


def leer(pares: Iterable[tuple[str, str]], esquema: Mapping[str, Tipo]) -> dict[str, Any]:
    """The parameters, typed as the endpoint takes them; raises `ErrorStripeError` otherwise."""
    crudos = _anidar(pares)
    leidos: dict[str, Any] = {}
    for nombre, valor in crudos.items():
        tipo = esquema.get(nombre)
        if tipo is None:
            cercanos = difflib.get_close_matches(nombre, list(esquema), n=1)
            raise errores.desconocido(nombre, cercanos[0] if cercanos else None)
        if tipo is Tipo.TEXTO and valor.__class__ is str and len(valor) <= MAX_TEXTO:
            leidos[nombre] = valor  # the common case, without a call
        else:
            leidos[nombre] = _tipar(nombre, valor, tipo)
    return leidos


def _anidar(pares: Iterable[tuple[str, str]]) -> dict[str, Any]:
    raiz: dict[str, Any] = {}
    for clave, valor in pares:
        if "[" not in clave:
            raiz[clave] = valor
            continue
        base, _, resto = clave.partition("[")
        subclaves = resto[:-1].split("][") if resto.endswith("]") else None
        if subclaves is None:
            raiz[clave] = valor  # a malformed name, refused as unknown
            continue
        camino = [base, *subclaves]
        nodo = raiz
        for sub in camino[:-2]:
            nodo = nodo.setdefault(sub, {})
            if not isinstance(nodo, dict):
                raise errores.invalido("Invalid hash", base)
        padre, ultima = camino[-2], camino[-1]
        hijo = nodo.setdefault(padre, [] if ultima == "" else {})
        if ultima == "" and isinstance(hijo, list):
            hijo.append(valor)
        elif ultima != "" and isinstance(hijo, dict):
            hijo[ultima] = valor
        else:
            raise errores.invalido("Invalid array" if ultima == "" else "Invalid hash", base)
    return raiz


def _tipar(nombre: str, valor: Any, tipo: Tipo) -> Any:  # noqa: ANN401 - decoded form values
    if (simple := _SIMPLES.get(tipo)) is not None:
        return simple(nombre, valor)
    if tipo is Tipo.LISTA:
        if isinstance(valor, dict) and all(k.isdigit() for k in valor):
            valor = [valor[k] for k in sorted(valor, key=int)]
        if not isinstance(valor, list):
            raise errores.invalido("Invalid array", nombre)
        return [_texto(nombre, v) for v in valor]
    if isinstance(valor, dict):
        for clave in valor:
            if clave not in RANGO:
                raise errores.desconocido(f"{nombre}[{clave}]")
        return {clave: _entero(f"{nombre}[{clave}]", v) for clave, v in valor.items()}
    return _entero(nombre, valor)


def _texto(nombre: str, valor: object) -> str:
    if not isinstance(valor, str):
        raise errores.invalido("Invalid string", nombre)
    if len(valor) > MAX_TEXTO:
        raise errores.invalido(f"Invalid string: {valor[:20]}...; must be at most {MAX_TEXTO} characters", nombre)
    return valor


def _booleano(nombre: str, valor: object) -> bool:
    texto = _texto(nombre, valor)
    if texto not in {"true", "false"}:
        raise errores.invalido(f"Invalid boolean: {texto[:100]}", nombre)
    return texto == "true"


def _entero(nombre: str, valor: object) -> int:
    texto = _texto(nombre, valor)
    digitos = texto.removeprefix("-")
    if not (digitos.isascii() and digitos.isdigit()) or len(digitos) > 18:  # noqa: PLR2004 - int64
        raise errores.entero_invalido(nombre, texto)
    return int(texto)


_MAX_CLAVES, _MAX_LARGO_CLAVE, _MAX_LARGO_VALOR = 50, 40, 500  # Stripe's metadata limits


def _hash(nombre: str, valor: object) -> dict[str, str]:
    if valor == "":
        return {}  # "unset every key": on a new object, none
    if not isinstance(valor, dict):
        raise errores.invalido("Invalid hash", nombre)
    hash_: dict[str, str] = {}
    for clave, v in valor.items():
        param = f"{nombre}[{clave}]"
        if not isinstance(v, str):
            raise errores.invalido("Invalid string", param)
        if len(clave) > _MAX_LARGO_CLAVE:
            raise errores.invalido(f"Metadata keys can have at most {_MAX_LARGO_CLAVE} characters", param)
        if len(v) > _MAX_LARGO_VALOR:
            raise errores.invalido(f"Metadata values can have at most {_MAX_LARGO_VALOR} characters", param)
        if v:  # an empty value unsets the key
            hash_[clave] = v
    if len(hash_) > _MAX_CLAVES:
        raise errores.invalido(f"Metadata can have at most {_MAX_CLAVES} keys", nombre)
    return hash_


_SIMPLES: dict[Tipo, Callable[[str, Any], object]] = {
    Tipo.TEXTO: _texto, Tipo.ENTERO: _entero, Tipo.HASH: _hash, Tipo.BOOLEANO: _booleano,
}  # fmt: skip
