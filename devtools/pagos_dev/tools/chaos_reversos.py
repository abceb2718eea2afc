"""The chaos suite's reversals: `ReversarPago` traffic woven into the payments' (a fifth of the
payments reversed: some in part and then the rest, some wholly, some sent twice, some before their
payment, some right behind it, while it is processed), and the audit of what became of them: one
event per reversal, none lost, none sent twice to the gateway, and the gateway's reversed amount of
each transfer equal to the sum of its `PagoReversado` events and to what the service recorded."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

from pagos_dev.tools.cluster import Cluster
from pagos_dev.tools.observador import EventoVisto, Mensaje
from pagos_worker.application.commands import ReversarPago
from pagos_worker.contract.wire import PROPIEDAD_TIPO, TIPO_REVERSAR, encode_reversal
from pagos_worker.domain.reverso import MotivoReverso

PROPIEDADES = {PROPIEDAD_TIPO: TIPO_REVERSAR}
FRACCION = 0.2
# Where a reversal goes, from its payment's place in the sequence of messages.
DESPUES = (30, 600)  # well after: its payment is final by then, mostly
DETRAS = (1, 3)  # right behind: its payment is being processed
ANTES = (1, 40)  # before it: the payment is annulled, and fails unpaid when it comes
# The share of each kind, cumulative: in part then the rest, wholly, in part sent twice, right
# behind its payment, before it.
_PARTE_Y_RESTO, _TODO, _DOS_VECES, _DETRAS = 0.35, 0.55, 0.70, 0.85


def tejer(
    mensajes: list[tuple[bytes, str | None, str]], validos: list[dict[str, str]], rng: random.Random
) -> tuple[list[tuple[Mensaje, str]], dict[str, str]]:
    """`mensajes` (payments, duplicates, malformed: bytes, key, id_pago) with reversals of a fifth of
    the payments put in among them. Returns each message with the id of the valid command it is
    ("" for none; a reversal's id_reverso), and every reversal's id_pago by its id_reverso."""
    posicion = {id_pago: i for i, (_, _, id_pago) in reversed(list(enumerate(mensajes))) if id_pago}
    insertos: list[tuple[float, Mensaje, str]] = []
    reversos: dict[str, str] = {}
    for pago in rng.sample(validos, int(len(validos) * FRACCION)):
        lugar = posicion[pago["id_pago"]]
        tipo = rng.random()
        for comando, donde in _reversos_de(pago, tipo, lugar, rng):
            reversos[str(comando.id_reverso)] = pago["id_pago"]
            insertos.append((donde, (encode_reversal(comando), pago["id_pago"], PROPIEDADES), str(comando.id_reverso)))
    ordenados: list[tuple[float, Mensaje, str]] = [
        (float(i), (data, key), id_pago) for i, (data, key, id_pago) in enumerate(mensajes)
    ]
    ordenados += insertos
    ordenados.sort(key=lambda m: m[0])
    return [(mensaje, ident) for _, mensaje, ident in ordenados], reversos


def _reversos_de(pago: dict[str, str], tipo: float, lugar: int, rng: random.Random) -> list[tuple[ReversarPago, float]]:
    monto = Decimal(pago["monto"])
    parte = (monto * Decimal(rng.randrange(10, 60)) / 100).quantize(Decimal("0.01"))

    def nuevo(cantidad: Decimal | None, donde: float) -> tuple[ReversarPago, float]:
        motivo = rng.choice(list(MotivoReverso))
        return ReversarPago(_uuid(rng), uuid.UUID(pago["id_pago"]), cantidad, motivo), donde

    tras = lugar + rng.randrange(*DESPUES) + rng.random()
    if tipo < _PARTE_Y_RESTO:  # in part, then the rest
        return [nuevo(parte if parte > 0 else None, tras), nuevo(None, tras + rng.randrange(*DESPUES))]
    if tipo < _TODO:  # wholly
        return [nuevo(None, tras)]
    if tipo < _DOS_VECES:  # in part, its command sent twice
        comando, donde = nuevo(parte if parte > 0 else None, tras)
        return [(comando, donde), (comando, donde + rng.randrange(*DESPUES))]
    if tipo < _DETRAS:  # right behind its payment: it waits until the payment is final
        return [nuevo(None, lugar + rng.randrange(*DETRAS) + rng.random())]
    return [nuevo(None, lugar - rng.randrange(*ANTES) - rng.random())]  # before its payment


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


async def auditar(
    cluster: Cluster, eventos: list[EventoVisto], reversos: dict[str, str], filas: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """`reversos`: every reversal published (id_reverso → id_pago); `filas`: the reversals' rows."""
    por_reverso: dict[str, set[str]] = {}
    tipos: Counter[str] = Counter()
    devuelto: dict[str, int] = {}  # id_pago → minor units its PagoReversado events brought back
    vistos: set[str] = set()
    for e in eventos:
        if e.id_reverso is None:
            continue
        por_reverso.setdefault(e.id_reverso, set()).add(e.event_id)
        if e.event_id in vistos:
            continue
        vistos.add(e.event_id)
        tipos[e.event_type] += 1
        if e.event_type == "PagoReversado" and e.monto is not None:
            devuelto[e.id_pago] = devuelto.get(e.id_pago, 0) + int(Decimal(e.monto) * 100)
    en_pasarela, por_id, excedidos = await _pasarela(cluster)
    finales = {i for i, f in filas.items() if f["estado"] in ("EXITOSO", "FALLIDO", "ANULADO")}
    senalados = {i for i, f in filas.items() if f["requiere_atencion"]}
    return {
        "reversos_publicados": len(reversos),
        "reversos_por_resultado": dict(tipos),
        "reversos_sin_evento": sum(1 for r in reversos if r not in por_reverso),
        "reversos_con_mas_de_un_evento": sum(1 for evs in por_reverso.values() if len(evs) > 1),
        "reversos_ni_finales_ni_senalados": len(set(reversos) - finales - senalados),
        "reversos_que_requieren_atencion": len(senalados & set(reversos)),
        # Stripe's side: a reversal of ours made twice (two of its id), and per transfer the amount
        # reversed against the PagoReversado events of its payment.
        "revertidos_dos_veces": sum(1 for n in por_id.values() if n > 1),
        "reversado_distinto_de_los_eventos": sum(
            1 for id_pago in set(en_pasarela) | set(devuelto) if en_pasarela.get(id_pago, 0) != devuelto.get(id_pago, 0)
        ),
        "reversado_mas_que_pagado": excedidos,
    }


async def _pasarela(cluster: Cluster) -> tuple[dict[str, int], Counter[str], int]:
    """Per payment, what the simulator reversed of its transfers (minor units); how many reversals
    it holds of each id_reverso of ours; and transfers reversed beyond their amount."""
    reversado: dict[str, int] = {}
    por_id: Counter[str] = Counter()
    excedidos = 0
    for t in await cluster.ledger():
        if not t.get("amount_reversed"):
            continue
        id_pago = t["metadata"]["id_pago"]
        reversado[id_pago] = reversado.get(id_pago, 0) + t["amount_reversed"]
        excedidos += t["amount_reversed"] > t["amount"]
        for r in await cluster.lista(f"/v1/transfers/{t['id']}/reversals"):
            if propio := (r.get("metadata") or {}).get("id_reverso"):
                por_id[propio] += 1
    return reversado, por_id, excedidos


CERO = (
    "reversos_sin_evento", "reversos_con_mas_de_un_evento", "reversos_ni_finales_ni_senalados",
    "revertidos_dos_veces", "reversado_distinto_de_los_eventos", "reversado_mas_que_pagado",
)  # fmt: skip


def filas_de_tabla(informe: dict[str, Any]) -> list[tuple[str, object, str]]:
    resultados = " ".join(f"{k}={v}" for k, v in sorted(informe["reversos_por_resultado"].items()))
    return [
        ("reversos publicados (distintos)", informe["reversos_publicados"], ""),
        ("  por resultado", resultados, ""),
        ("reversos sin evento / con más de uno",
         f"{informe['reversos_sin_evento']} / {informe['reversos_con_mas_de_un_evento']}", "0 / 0"),
        ("reversos ni finales ni señalados", informe["reversos_ni_finales_ni_senalados"], "0"),
        ("revertidos dos veces (ledger del simulador)", informe["revertidos_dos_veces"], "0"),
        ("revertido en la pasarela ≠ eventos PagoReversado", informe["reversado_distinto_de_los_eventos"], "0"),
        ("transfers revertidos más de lo pagado", informe["reversado_mas_que_pagado"], "0"),
        ("reversos que requieren atención", informe["reversos_que_requieren_atencion"], ""),
    ]  # fmt: skip
