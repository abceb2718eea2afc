"""What decoding a `ProcesarPago` command costs: commands decoded per second by `decode_command`.

Three corpora, fixed by a seed: valid commands (the amount as text and as a JSON number, every
currency), invalid ones (one of each rejection reason, in turn) and, since the commands topic
carries mostly valid commands, a mix of 99 valid to 1 invalid. Each corpus is decoded `repeticiones`
times; the best round counts (the least disturbed by whatever else runs on the machine: many short
rounds find an undisturbed one more surely than a few long ones).
"""

from __future__ import annotations

import contextlib
import json
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from pagos_worker.contract.wire import ComandoInvalidoError, decode_command

Decoder = Callable[[bytes], object]


def validos(n: int, rng: random.Random) -> list[bytes]:
    comandos = []
    for i in range(n):
        centimos = rng.randrange(1, 100_000_000)
        monto: object = f"{centimos / 100:.2f}" if i % 4 else centimos / 100  # one in four as a JSON number
        objeto = {
            "id_pago": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "id_afiliado": f"afiliado_{rng.randrange(100_000)}",
            "monto": monto,
            "moneda": rng.choice(["USD", "EUR", "COP"]),
        }
        comandos.append(json.dumps(objeto).encode())
    return comandos


def _con(**cambios: object) -> bytes:
    base: dict[str, object] = {
        "id_pago": "550e8400-e29b-41d4-a716-446655440000",
        "id_afiliado": "afiliado_123",
        "monto": "100.50",
        "moneda": "USD",
    }
    base.update(cambios)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


# One of each rejection reason (several for the reasons that have several causes).
INVALIDOS = [
    b"\xff\xfe{}",
    b"{not json",
    b'{"monto": NaN}',
    b'{"id_pago": "a", "id_pago": "b"}',
    b"[1, 2]",
    _con(moneda=...),
    _con(extra=1),
    _con(id_pago="no-es-uuid"),
    _con(id_afiliado=""),
    _con(id_afiliado="a\nb"),
    _con(moneda="GBP"),
    _con(monto="0"),
    _con(monto="100.505"),
    _con(monto="abc"),
    _con(monto="99999999999999999999"),
    b" " * 20_000,
]


def invalidos(n: int) -> list[bytes]:
    return [INVALIDOS[i % len(INVALIDOS)] for i in range(n)]


def _ronda(decoder: Decoder, corpus: list[bytes]) -> float:
    t0 = time.perf_counter()
    for data in corpus:
        with contextlib.suppress(ComandoInvalidoError):
            decoder(data)
    return time.perf_counter() - t0


def medir(decoder: Decoder, corpus: list[bytes], repeticiones: int) -> dict[str, Any]:
    _ronda(decoder, corpus[:1000])  # warm-up: caches, compiled patterns
    mejor = min(_ronda(decoder, corpus) for _ in range(repeticiones))
    return {
        "comandos": len(corpus),
        "comandos_s": round(len(corpus) / mejor),
        "us_por_comando": mejor / len(corpus) * 1e6,
    }


def main(n: int = 5000, repeticiones: int = 30, semilla: int = 17, decoder: Decoder = decode_command) -> dict[str, Any]:
    rng = random.Random(semilla)  # noqa: S311 - a reproducible corpus, not a secret
    buenos = validos(n, rng)
    malos = invalidos(n)
    mezcla = [malos[i] if i % 100 == 0 else buenos[i] for i in range(n)]
    resultados = {
        nombre: medir(decoder, corpus, repeticiones)
        for nombre, corpus in (("validos", buenos), ("invalidos", malos), ("mezcla_99_1", mezcla))
    }
    for nombre, fila in resultados.items():
        print(f"{nombre:<12} {fila['comandos_s']:>9} comandos/s  {fila['us_por_comando']:>6.2f} µs/comando")
    print(json.dumps({"bench": "decode", "repeticiones": repeticiones, "resultados": resultados}))
    return resultados
