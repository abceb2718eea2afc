"""`pagos-worker conciliar [--desde T] [--hasta T] [--json] [--csv FILE]`: reconcile the service's
books with Stripe's over a window. Exit status: 0 everything coincides, 1 differences were found
(and recorded), 2 it could not run (a setting missing, the window refused, another run in
progress, Stripe or PostgreSQL unreachable): nothing of such a run is presented as complete."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path

import structlog

from pagos_worker.application.conciliacion import ConciliacionEnCursoError, VentanaInvalidaError
from pagos_worker.application.ports.conciliacion import PasarelaInalcanzableError
from pagos_worker.bootstrap import Operador
from pagos_worker.entrypoints import conciliar_salida
from pagos_worker.entrypoints import operador_salida as salida

log = structlog.get_logger(__name__)
COINCIDE, DIFERENCIAS, NO_PUDO = 0, 1, 2
_Grupo = argparse._SubParsersAction  # noqa: SLF001 - argparse's own type for a group of subcommands


def fecha_utc(texto: str) -> datetime:
    """A date (its midnight, UTC) or an ISO 8601 date-time (UTC if it names no zone)."""
    texto = texto.strip()
    try:
        if len(texto) == len("2026-12-06"):
            return datetime.combine(date.fromisoformat(texto), datetime.min.time(), UTC)
        valor = datetime.fromisoformat(texto)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"no es una fecha ni una fecha y hora ISO 8601 (2026-12-06, 2026-12-06T00:00:00Z): {texto[:40]!r}"
        ) from None
    return valor.replace(tzinfo=UTC) if valor.tzinfo is None else valor.astimezone(UTC)


def registrar(
    sub: _Grupo[argparse.ArgumentParser], ejecutar: Callable[..., Awaitable[int]], requisitos: object
) -> None:
    ayuda = "comparar los pagos y reversos del servicio con los transfers de Stripe en una ventana de tiempo"
    parser = sub.add_parser("conciliar", help=ayuda, description=__doc__)
    # Whatever keeps it from running is status 2 (1 says differences were found).
    parser.set_defaults(func=ejecutar, accion=_conciliar, requisitos=requisitos, codigo_de_falla=NO_PUDO)
    parser.add_argument("--desde", type=fecha_utc, metavar="T", help="inicio (incluido); por omisión: ayer, 00:00 UTC")
    parser.add_argument("--hasta", type=fecha_utc, metavar="T", help="fin (excluido); por omisión: hoy, 00:00 UTC")
    parser.add_argument("--json", action="store_true", help="JSON en stdout en lugar de una tabla")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="además, una fila por diferencia en FILE (finanzas)")


async def _conciliar(op: Operador, args: argparse.Namespace) -> int:
    assert op.conciliar is not None  # noqa: S101 - wired with the gateway
    try:
        with conciliar_salida.Avance(activo=not args.json) as avance:
            r = await op.conciliar(args.desde, args.hasta, origen="cli", progreso=avance.leidas)
    except (VentanaInvalidaError, ConciliacionEnCursoError, PasarelaInalcanzableError) as exc:
        salida.error(f"no se pudo conciliar: {exc}")
        return NO_PUDO
    except Exception as exc:  # noqa: BLE001 - an outage (PostgreSQL): said in one line, the run is not complete
        log.debug("conciliar.error", error=repr(exc))
        salida.error(f"no se pudo conciliar: {type(exc).__name__}: {exc}")
        return NO_PUDO
    if args.csv is not None:
        conciliar_salida.escribir_csv(r, args.csv)
    conciliar_salida.resultado(r, como_json=args.json)
    return COINCIDE if r.coincide_todo else DIFERENCIAS
