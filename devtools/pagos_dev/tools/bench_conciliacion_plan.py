"""The `conciliacion` bench's pure part: which payment gets which planted difference (a few hundred
of each class in a million), the answer the reconciliation must give, how its answer compares, and
what the request budget says about a day (`bench_conciliacion` does the I/O)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# What is planted at a payment's slot. The reversal classes are per reversal (their id_reverso),
# the others per payment; `importe_reverso` is an `importe_distinto` of a reversal.
PLANTADAS = (
    "exitoso_sin_transferencia",
    "transferencia_sin_exito",  # half with the payment FALLIDO, half with no payment at all
    "transferencias_multiples",
    "importe_distinto",
    "destino_distinto",
    "reverso_externo",
    "reverso_sin_registro",
    "reverso_faltante",
    "importe_reverso",
)
CLASE_DE = {p: ("importe_distinto" if p == "importe_reverso" else p) for p in PLANTADAS}
CON_REVERSO = frozenset({"reverso_sin_registro", "reverso_faltante", "importe_reverso"})
REVERSOS_PROPIOS = 50  # one payment in this many has a reversal of ours, matched at Stripe


def por_clase(pagos: int) -> int:
    """How many of each class: 300 in a million, at least 1, never more than a 20th of the slots."""
    return max(1, min(pagos * 3 // 10_000, pagos // (20 * len(PLANTADAS))))


def plan(pagos: int) -> dict[int, str]:
    """The slot of each planted difference: spread over the window, every class in every stretch."""
    n = por_clase(pagos)
    total = n * len(PLANTADAS)
    paso = pagos / total
    return {int(k * paso + paso / 2): PLANTADAS[k % len(PLANTADAS)] for k in range(total)}


Clave = tuple[str, str | None, str | None]  # (class, id_pago, id_reverso)


def clave(d: Mapping[str, Any]) -> Clave:
    return (str(d["clase"]), d.get("id_pago"), d.get("id_reverso"))


@dataclass(frozen=True)
class Comparacion:
    encontradas: int
    faltantes: list[Clave]  # planted, not reported (or reported under another class)
    falsas: list[Clave]  # reported, not planted
    conteos_ok: bool

    @property
    def cumple(self) -> bool:
        return not self.faltantes and not self.falsas and self.conteos_ok


def comparar(esperadas: Iterable[Clave], coinciden: int, resultado: Mapping[str, Any]) -> Comparacion:
    """The run's `--json` against the planted answer: the same differences, each with its class,
    nothing else, and its counts (all of them, shown or not) the planted ones and `coinciden`."""
    esperado = set(esperadas)
    visto = [clave(d) for d in resultado["diferencias"]]
    faltantes = sorted(esperado - set(visto), key=str)
    falsas = sorted((set(visto) - esperado) | {k for k, n in Counter(visto).items() if n > 1}, key=str)
    conteos = {c: n for c, n in resultado["conteos"].items() if n}
    esperados = dict(Counter(c for c, _, _ in esperado))
    if coinciden:
        esperados["coincide"] = coinciden
    return Comparacion(len(visto), faltantes, falsas, conteos == esperados)


def uso_del_presupuesto(muestras: list[tuple[float, int]], cuota_s: float) -> dict[str, Any]:
    """The requests a second the reader sent while it read (first to last request seen in the
    samples of the simulator's counter) against its share of the budget."""
    activas = [(t, n) for t, n in muestras if n > muestras[0][1]] if muestras else []
    if len(activas) < 2:  # noqa: PLR2004 - no rate to speak of
        return {"cuota_s": cuota_s, "peticiones_s": None, "uso": None}
    (t0, n0), (t1, n1) = activas[0], next(m for m in activas if m[1] == activas[-1][1])
    if t1 <= t0:
        return {"cuota_s": cuota_s, "peticiones_s": None, "uso": None}
    rate = (n1 - n0) / (t1 - t0)
    return {"cuota_s": cuota_s, "peticiones_s": round(rate, 1), "uso": round(rate / cuota_s, 3),
            "lectura_s": round(t1 - t0, 1)}  # fmt: skip


def costo_de_un_dia(peticiones: int, pagos: int, *, pagos_dia: int = 1_000_000, limite_s: float = 100.0,
                    share: float = 0.2) -> dict[str, float]:  # fmt: skip
    """What reconciling a day of `pagos_dia` payouts costs at Stripe's live rate: the requests (this
    run's per payment, scaled), and how long the share of the budget takes to send them."""
    por_pago = peticiones / pagos
    total = math.ceil(por_pago * pagos_dia)
    return {"peticiones": total, "segundos": round(total / (limite_s * share), 1), "share": share,
            "limite_s": limite_s, "peticiones_por_pago": round(por_pago, 5)}  # fmt: skip


def segundos_postgres(lineas: Iterable[str]) -> dict[str, float]:
    """The statements' time PostgreSQL logged (log_min_duration_statement = 0): COPY (Stripe's pages
    loaded) apart from the rest (classification, look-ups, the record)."""
    copia = resto = 0.0
    for linea in lineas:
        _, sep, tras = linea.partition("duration: ")
        if not sep:
            continue
        ms, _, texto = tras.partition(" ms")
        try:
            valor = float(ms) / 1000
        except ValueError:
            continue
        if "COPY " in texto:
            copia += valor
        else:
            resto += valor
    return {"copy_s": round(copia, 2), "resto_s": round(resto, 2), "total_s": round(copia + resto, 2)}
