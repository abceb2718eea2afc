"""`python -m pagos_dev.reloj_desfasado SEGUNDOS ARGS…`: `pagos-worker ARGS…` on a host whose clock is
SEGUNDOS off (negative: behind). The chaos suite runs a worker replica and operator commands so, to
show that only the database's clock decides who may act.

Every wall-clock read of the service goes through `pagos_worker.clock.utcnow` (the one clock; the
architecture tests keep it so): shifting it before the service is imported shifts every time the
service would take from its host. Durations (`time.monotonic`) are not shifted, as a skewed host's are not.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from pagos_worker import clock


def desfasar(segundos: float) -> None:
    """This process's service clock, `segundos` off from now on: call before importing the service."""
    desfase = timedelta(seconds=segundos)
    clock.utcnow = lambda: datetime.now(UTC) + desfase


def main(argv: list[str]) -> int:
    if not argv:
        print("uso: python -m pagos_dev.reloj_desfasado SEGUNDOS [argumentos de pagos-worker]", file=sys.stderr)
        return 2
    try:
        desfasar(float(argv[0]))  # before the service's modules bind the clock
    except ValueError:
        print(f"SEGUNDOS debe ser un número (negativo: atrasado), no {argv[0]!r}", file=sys.stderr)
        return 2
    from pagos_worker.entrypoints.cli import main as pagos_worker  # noqa: PLC0415 - after the shift

    return pagos_worker(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
