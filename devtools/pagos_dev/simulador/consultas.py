"""`GET /v1/transfers` as SQL: the filters Stripe takes (destination, transfer_group, created) and
a page before or after a cursor, newest first: by `created`, as Stripe sorts, and by creation order
within a second (a transfer made with a clock set back, as a test may, is listed by its `created`).
The index on `created` grows at its end (times only move forward outside tests): a `created` window
is found without scanning the newer transfers, and pages walk it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

OPERADORES = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "="}
ACTUAL = "coalesce(a.cuerpo, c.cuerpo)"  # a transfer as it is now: its body once reversed, else its first


@dataclass(frozen=True, slots=True)
class Filtro:
    destination: str | None = None
    transfer_group: str | None = None
    created: dict[str, int] = field(default_factory=dict)  # gt, gte, lt, lte, or eq (an exact timestamp)


Cursor = tuple[int, int]  # an object's place in its list: (created, seq)


@dataclass(frozen=True, slots=True)
class Pagina:
    limit: int = 10
    despues_de: Cursor | None = None  # the cursor's place for starting_after: the page of older objects
    antes_de: Cursor | None = None  # and for ending_before: the page of newer objects next to it

    @property
    def hacia_atras(self) -> bool:
        return self.antes_de is not None


def consulta_de_pagina(filtro: Filtro, pagina: Pagina, excluidos: Sequence[int] = ()) -> tuple[str, list[object]]:
    """One more row than the page holds: whether it came says `has_more`. `excluidos`: the places
    (seq) of transfers not listed yet."""
    condiciones: list[str] = []
    argumentos: list[object] = []
    if excluidos:
        condiciones.append("t.seq NOT IN (SELECT value FROM json_each(?))")  # one parameter, however many
        argumentos.append(orjson.dumps(list(excluidos)).decode())
    if filtro.destination is not None:
        condiciones.append("t.destination = ?")
        argumentos.append(filtro.destination)
    if filtro.transfer_group is not None:
        condiciones.append("t.transfer_group = ?")
        argumentos.append(filtro.transfer_group)
    for operador, valor in filtro.created.items():
        if operador == "eq":
            condiciones.append("t.created = ?")
            argumentos.append(valor)
    # One bound on `created` each way, the window's and the cursor's folded into it: SQLite walks the
    # index from a single bound and ignores the row value (created, seq), so with the window's bound
    # alone every page walked all the newer transfers first (a day's million read in O(n²)).
    mayor, menor = _cotas(filtro.created, pagina)
    if menor is not None:
        condiciones.append("t.created >= ?")
        argumentos.append(menor)
    if mayor is not None:
        condiciones.append("t.created <= ?")
        argumentos.append(mayor)
    if pagina.despues_de is not None:
        condiciones.append("(t.created, t.seq) < (?, ?)")
        argumentos.extend(pagina.despues_de)
    if pagina.antes_de is not None:
        condiciones.append("(t.created, t.seq) > (?, ?)")
        argumentos.extend(pagina.antes_de)
    donde = f" WHERE {' AND '.join(condiciones)}" if condiciones else ""
    orden = "ASC" if pagina.hacia_atras else "DESC"
    # A transfer group (a payment's: one transfer, or a few) is found faster by the table's own
    # scan, its matches sorted after, than by walking the index on `created` (3x, measured).
    created = "+t.created" if filtro.transfer_group is not None and not filtro.created else "t.created"
    argumentos.append(pagina.limit + 1)
    consulta = (
        f"SELECT {ACTUAL} FROM transfers t JOIN cuerpos c ON c.seq = t.seq"  # noqa: S608 - fixed names
        f" LEFT JOIN cuerpos_actuales a ON a.seq = t.seq{donde} ORDER BY {created} {orden}, t.seq {orden} LIMIT ?"
    )
    return consulta, argumentos


def _cotas(created: dict[str, int], pagina: Pagina) -> tuple[int | None, int | None]:
    """The highest and the lowest `created` a page may hold (inclusive; whole seconds)."""
    altas = [v - 1 if op == "lt" else v for op, v in created.items() if op in ("lt", "lte")]
    bajas = [v + 1 if op == "gt" else v for op, v in created.items() if op in ("gt", "gte")]
    if pagina.despues_de is not None:
        altas.append(pagina.despues_de[0])
    if pagina.antes_de is not None:
        bajas.append(pagina.antes_de[0])
    return (min(altas) if altas else None), (max(bajas) if bajas else None)
