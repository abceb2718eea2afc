"""The `reversos` scenario's commands and tally: payments with reversals of some of them among them
(`ReversarPago`, told apart by the message property `tipo_comando`), and what became of each
reversal as pagos-events told it.

A reversal comes `distancia` commands after the last command about its payment (its payment, or
the reversal before it), so that most find their payment final and a few wait for it. Half of the
first reversals of a payment take part of it back, half all of it; a later one takes the rest, and
a few ask again for a payment already reversed in full (nothing left: `ReversoFallido`, with no
gateway call). A payment the simulator declined is annulled by each of its reversals (`PagoAnulado`).
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from pagos_dev.tools.observador import EventoVisto, Mensaje
from pagos_worker.application.commands import ReversarPago
from pagos_worker.contract.wire import PROPIEDAD_TIPO, TIPO_REVERSAR, encode_reversal
from pagos_worker.domain.reverso import MotivoReverso

DESENLACES = ("PagoReversado", "ReversoFallido", "PagoAnulado")
_PROPIEDADES = {PROPIEDAD_TIPO: TIPO_REVERSAR}
_OTRA_VEZ_SIN_RESTO = 0.3  # of the picks that land on a payment reversed in full: ask again anyway


@dataclass(frozen=True)
class Mezcla:
    mensajes: list[Mensaje]
    reversos: list[str]  # each reversal's id_reverso, in the order published
    parciales: int  # reversals with an amount; the others ask for everything not reversed yet


def cantidad_de_reversos(pagos: int, fraccion: float) -> int:
    """Reversals to go with `pagos` payments for them to be `fraccion` of the commands."""
    return round(pagos * fraccion / (1 - fraccion))


def mezclar(
    pagos: Sequence[tuple[bytes, str | None]], fraccion: float, rng: random.Random, distancia: tuple[int, int]
) -> Mezcla:
    """`pagos` (ProcesarPago messages, in order) with reversals placed among them: `fraccion` of all
    the commands, none in the first `distancia[0]`, each `distancia[0]`..`distancia[1]` commands
    after the last command about its payment."""
    minima, maxima = distancia
    n_reversos = cantidad_de_reversos(len(pagos), fraccion)
    total = len(pagos) + n_reversos
    if not 0 < minima <= maxima or n_reversos > total - minima:
        raise ValueError(f"{n_reversos} reversals do not fit in {total} commands at distance {distancia}")
    huecos = set(rng.sample(range(minima, total), n_reversos))
    pagado = [_centavos(data) for data, _ in pagos]
    restante = list(pagado)  # what is left to reverse of each (if the simulator pays it)
    de: list[int] = []  # position → the payment (its index) that command is about
    ultimo: dict[int, int] = {}  # payment → the position of the last command about it
    mensajes: list[Mensaje] = []
    reversos: list[str] = []
    parciales = 0
    siguiente = 0
    for i in range(total):
        if i not in huecos:
            k, siguiente = siguiente, siguiente + 1
            mensaje: Mensaje = pagos[k]
        else:
            k = _objetivo(i, de, ultimo, restante, rng=rng, distancia=distancia)
            monto = None
            if restante[k] == pagado[k] > 1 and rng.random() < 0.5:  # noqa: PLR2004
                parte = rng.randrange(1, restante[k])
                monto, parciales = Decimal(parte).scaleb(-2), parciales + 1
                restante[k] -= parte
            else:
                restante[k] = 0
            id_reverso = uuid.UUID(int=rng.getrandbits(128), version=4)
            id_pago = str(pagos[k][1])
            comando = ReversarPago(id_reverso, uuid.UUID(id_pago), monto, rng.choice(list(MotivoReverso)))
            mensaje = (encode_reversal(comando), id_pago, _PROPIEDADES)
            reversos.append(str(id_reverso))
        mensajes.append(mensaje)
        de.append(k)
        ultimo[k] = i
    return Mezcla(mensajes, reversos, parciales)


def _centavos(data: bytes) -> int:
    return int(Decimal(orjson.loads(data)["monto"]).scaleb(2))


def _objetivo(
    i: int,
    de: list[int],
    ultimo: dict[int, int],
    restante: list[int],
    *,
    rng: random.Random,
    distancia: tuple[int, int],
) -> int:
    """The payment a reversal at position `i` is about: one whose last command is at a position
    drawn within the distance (again while the draw finds a command that is not its payment's
    last, or mostly when its payment has nothing left); failing that, the nearest one with
    something left."""
    minima, maxima = distancia
    for _ in range(50):
        j = rng.randint(max(0, i - maxima), i - minima)
        k = de[j]
        if ultimo[k] == j and (restante[k] > 0 or rng.random() < _OTRA_VEZ_SIN_RESTO):
            return k
    for j in range(i - minima, -1, -1):
        if ultimo[de[j]] == j and restante[de[j]] > 0:
            return de[j]
    raise ValueError(f"no payment to reverse before position {i - minima}")


def recuento(publicados: Iterable[str], eventos: Iterable[EventoVisto], crudos: Iterable[bytes]) -> dict[str, Any]:
    """What became of the published reversals: their events by type (`ReversoFallido` by code, read
    from the raw `crudos`), those with no event (`perdidos`), with more than one distinct event
    (`con_varios_eventos`: each reversal must end in exactly one), and events of reversals nobody
    published (`ajenos`). A delivery of the same event again (same `event_id`) is `repetidos`."""
    esperados = set(publicados)
    vistos: dict[str, dict[str, str]] = {}  # id_reverso → {event_id: event_type}
    repetidos = 0
    for e in eventos:
        if e.id_reverso is None:
            continue
        suyos = vistos.setdefault(e.id_reverso, {})
        repetidos += e.event_id in suyos
        suyos[e.event_id] = e.event_type
    por_desenlace = Counter(dict.fromkeys(DESENLACES, 0))
    for r in esperados & vistos.keys():
        por_desenlace.update(vistos[r].values())
    codigos: Counter[str] = Counter()
    for data in crudos:
        if b'"ReversoFallido"' in data:
            cuerpo = orjson.loads(data)
            if cuerpo.get("event_type") == "ReversoFallido" and cuerpo["data"].get("id_reverso") in esperados:
                codigos[cuerpo["data"].get("codigo") or "?"] += 1
    perdidos = len(esperados - vistos.keys())
    con_varios = sum(1 for r in esperados & vistos.keys() if len(vistos[r]) > 1)
    ajenos = len(vistos.keys() - esperados)
    return {
        "publicados": len(esperados),
        "con_evento": len(esperados & vistos.keys()),
        "por_desenlace": dict(por_desenlace),
        "fallidos_por_codigo": dict(codigos),
        "perdidos": perdidos,
        "con_varios_eventos": con_varios,
        "ajenos": ajenos,
        "repetidos": repetidos,
        "cumple": perdidos == 0 and con_varios == 0 and ajenos == 0,
    }
