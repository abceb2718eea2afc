"""`pagos-worker pagos …`, `pagos-worker dlq …` and `pagos-worker conciliacion resolver`: the
operators' commands.

Each parses its arguments, calls one use case of the application (wired by `bootstrap`, with the
service's own settings: `cli.py` checks them first) and prints the answer: a table, or JSON with
`--json`. Exit status: 0 done, 1 not found or refused (nothing changed; the message says why), 2 a
setting missing or invalid, or arguments that do not parse.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from pagos_worker.application.dlq import FiltroCartas
from pagos_worker.application.eventos import FiltroEventos
from pagos_worker.application.queries import CausaAtencion, FiltroAtencion, ObtenerEstadoPago
from pagos_worker.bootstrap import Operador
from pagos_worker.clock import utcnow
from pagos_worker.contract.campos import LONGITUD_MAXIMA_DESCRIPCION
from pagos_worker.domain.reverso import MotivoReverso
from pagos_worker.entrypoints import eventos_salida
from pagos_worker.entrypoints import operador_salida as salida

Accion = Callable[[Operador, argparse.Namespace], Awaitable[int]]
_Grupo = argparse._SubParsersAction  # noqa: SLF001 - argparse's own type for a group of subcommands


@dataclass(frozen=True)
class Requisitos:
    """What a command needs: PostgreSQL (all but `eventos`), the broker, the gateway."""

    pulsar: bool = False
    pasarela: bool = False
    postgres: bool = True


def registrar(sub: _Grupo[argparse.ArgumentParser], ejecutar: Callable[..., Awaitable[int]]) -> None:
    """Add the `pagos` and `dlq` command groups; each leaf runs through `ejecutar`'s set-up."""
    salida_json = argparse.ArgumentParser(add_help=False)
    salida_json.add_argument("--json", action="store_true", help="JSON en stdout en lugar de una tabla")
    operador = argparse.ArgumentParser(add_help=False)
    operador.add_argument("--operador", default=_usuario(), help="quién actúa (por omisión: $USER)")

    def hoja(grupo: _Grupo[argparse.ArgumentParser], nombre: str, accion: Accion, requisitos: Requisitos, ayuda: str,
             *padres: argparse.ArgumentParser) -> argparse.ArgumentParser:  # fmt: skip
        parser = grupo.add_parser(nombre, help=ayuda, description=ayuda, parents=[salida_json, *padres])
        parser.set_defaults(func=ejecutar, accion=accion, requisitos=requisitos)
        return parser

    pagos = sub.add_parser("pagos", help="pagos: ver, listar los que requieren atención, resolver, reanudar, reversar")
    grupo = pagos.add_subparsers(required=True, metavar="COMMAND")
    hoja(grupo, "ver", _ver, Requisitos(), "un pago, como lo muestra GET /pagos/{id}").add_argument(
        "id_pago", type=_uuid
    )
    ayuda = "pagos, comandos venenosos, reversos y diferencias de la conciliación que requieren atención"
    atencion = hoja(grupo, "atencion", _atencion, Requisitos(), ayuda)
    atencion.add_argument(
        "--mas-de", type=duracion, metavar="DURACION", help="más antiguos que esto: 30m, 1h, 2d, 1h30m"
    )
    atencion.add_argument("--causa", choices=[c.value for c in CausaAtencion], help="solo esta causa")
    atencion.add_argument("--limite", type=int, default=100, help="como mucho tantos (por omisión 100)")
    ayuda = "liquidar un pago según lo que la pasarela tiene de él (transfer_group = id_pago)"
    resolver = hoja(grupo, "resolver", _resolver, Requisitos(pasarela=True), ayuda, operador)
    resolver.add_argument("id_pago", type=_uuid)
    resolver.add_argument(
        "--fallido", metavar="MOTIVO", type=_texto, help="FALLIDO, solo si la pasarela no tiene ningún transfer"
    )
    resolver.add_argument("--motivo", type=_texto, help="por qué (se guarda con la resolución)")
    reanudar = hoja(grupo, "reanudar", _reanudar, Requisitos(pulsar=True),
                    "devolver un pago o un reverso marcado al proceso automático (uno rechazado: reconocerlo)",
                    operador)  # fmt: skip
    reanudar.add_argument("id_pago", type=_uuid, metavar="ID", help="el id_pago, o el id_reverso de un reverso")
    ayuda = "devolver (parte de) lo pagado: publica un ReversarPago en el topic de comandos"
    _reversar(hoja(grupo, "reversar", _pedir_reverso, Requisitos(pulsar=True), ayuda, operador))

    conciliacion = sub.add_parser(
        "conciliacion", help="las diferencias de la conciliación: cerrarlas una vez atendidas"
    )
    grupo = conciliacion.add_subparsers(required=True, metavar="COMMAND")
    ayuda = ("cerrar una diferencia de la conciliación ya atendida: sale de la lista de atención "
             "(no cambia ningún pago ni mueve dinero)")  # fmt: skip
    resolver_diferencia = hoja(grupo, "resolver", _resolver_diferencia, Requisitos(), ayuda, operador)
    resolver_diferencia.add_argument("id_diferencia", type=_id_diferencia, metavar="DIFERENCIA_ID")
    resolver_diferencia.add_argument(
        "--nota", required=True, type=_texto, help="qué se hizo, o por qué no hace falta nada"
    )

    dlq = sub.add_parser("dlq", help="cartas muertas: listarlas, reenviarlas al topic de comandos")
    grupo = dlq.add_subparsers(required=True, metavar="COMMAND")
    filtros = argparse.ArgumentParser(add_help=False)
    filtros.add_argument("--motivo", help="solo las cartas con este motivo (p. ej. json_invalido, error_repetido)")
    filtros.add_argument("--id-pago", type=_uuid, help="solo las de este pago")
    filtros.add_argument(
        "--desde",
        type=instante,
        metavar="T",
        help="publicadas desde T: ISO 8601, o una duración (2h: desde hace dos horas)",
    )
    hoja(grupo, "listar", _dlq_listar, Requisitos(pulsar=True), "las cartas muertas, la más antigua primero", filtros)
    reenviar = hoja(grupo, "reenviar", _dlq_reenviar, Requisitos(pulsar=True),
                    "reenviar cartas muertas al topic de comandos", filtros, operador)  # fmt: skip
    reenviar.add_argument("--dry-run", action="store_true", help="decir qué se reenviaría; no enviar nada")
    reenviar.add_argument(
        "--otra-vez", action="store_true", help="también las ya reenviadas por una ejecución anterior"
    )

    ayuda = "los eventos de los pagos en su topic, leídos con un Reader (nada se consume), el más antiguo primero"
    eventos = sub.add_parser("eventos", help=ayuda, description=ayuda, parents=[salida_json])
    eventos.set_defaults(func=ejecutar, accion=_eventos, requisitos=Requisitos(pulsar=True, postgres=False))
    eventos.add_argument("--id-pago", type=_uuid, help="solo los de este pago")
    eventos.add_argument(
        "--desde",
        type=instante,
        metavar="T",
        help="publicadas desde T: ISO 8601, o una duración (2h: desde hace dos horas)",
    )
    eventos.add_argument(
        "--seguir", action="store_true", help="y después seguir mostrando los que lleguen, hasta Ctrl-C"
    )


def _reversar(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id_pago", type=_uuid)
    motivos = ", ".join(m.value for m in MotivoReverso)
    parser.add_argument("--motivo", required=True, type=_motivo, metavar="MOTIVO", help=f"por qué: {motivos}")
    parser.add_argument("--monto", type=_monto, help="cuánto, en la moneda del pago (por omisión: todo lo que quede)")
    parser.add_argument("--descripcion", type=_descripcion, help="para personas: se guarda con el reverso")
    parser.add_argument(
        "--id-reverso", type=_uuid, metavar="UUID",
        help="el de un pedido anterior, para repetirlo sin reversar dos veces (por omisión: uno nuevo)",
    )  # fmt: skip


async def _ver(op: Operador, args: argparse.Namespace) -> int:
    assert op.estado is not None  # noqa: S101 - wired with PostgreSQL
    salida.pago(await op.estado(ObtenerEstadoPago(args.id_pago)), como_json=args.json)
    return 0


async def _atencion(op: Operador, args: argparse.Namespace) -> int:
    assert op.atencion is not None  # noqa: S101 - wired with PostgreSQL
    causa = CausaAtencion(args.causa) if args.causa else None
    antes = utcnow() - args.mas_de if args.mas_de else None
    salida.atencion(await op.atencion(args.limite, FiltroAtencion(antes, causa)), como_json=args.json)
    return 0


async def _resolver(op: Operador, args: argparse.Namespace) -> int:
    assert op.resolver is not None  # noqa: S101 - wired with the gateway
    resuelto = await op.resolver(args.id_pago, operador=args.operador, motivo=args.motivo, fallido=args.fallido)
    salida.resuelto(resuelto, como_json=args.json)
    return 0


async def _resolver_diferencia(op: Operador, args: argparse.Namespace) -> int:
    assert op.resolver_diferencia is not None  # noqa: S101 - wired with PostgreSQL
    resuelta = await op.resolver_diferencia(args.id_diferencia, operador=args.operador, nota=args.nota)
    salida.diferencia_resuelta(resuelta, como_json=args.json)
    return 0


async def _reanudar(op: Operador, args: argparse.Namespace) -> int:
    assert op.reanudar is not None  # noqa: S101 - wired with the broker
    salida.reanudado(await op.reanudar(args.id_pago), args.operador, como_json=args.json)
    return 0


async def _pedir_reverso(op: Operador, args: argparse.Namespace) -> int:
    assert op.reversar is not None  # noqa: S101 - wired with the broker
    pedido = await op.reversar(
        args.id_pago, motivo=args.motivo, operador=args.operador, monto=args.monto, descripcion=args.descripcion,
        id_reverso=args.id_reverso,
    )  # fmt: skip
    salida.reverso_pedido(pedido, como_json=args.json)
    return 0


async def _dlq_listar(op: Operador, args: argparse.Namespace) -> int:
    assert op.listar_dlq is not None  # noqa: S101 - wired with the broker
    with salida.Barras(activas=not args.json) as barras:
        cartas = await op.listar_dlq(_filtro(args), progreso=barras)
    salida.cartas(cartas, como_json=args.json, topic=op.dlq_topic)
    return 0


async def _dlq_reenviar(op: Operador, args: argparse.Namespace) -> int:
    assert op.reenviar_dlq is not None  # noqa: S101 - wired with the broker
    with salida.Barras(activas=not args.json) as barras:
        resultado = await op.reenviar_dlq(
            _filtro(args), operador=args.operador, dry_run=args.dry_run, otra_vez=args.otra_vez, progreso=barras
        )
    salida.reenvio(resultado, como_json=args.json)
    return 0


async def _eventos(op: Operador, args: argparse.Namespace) -> int:
    assert op.eventos is not None  # noqa: S101 - wired with the broker
    mostrados = 0
    try:
        async for evento in op.eventos(FiltroEventos(args.id_pago, args.desde), seguir=args.seguir):
            eventos_salida.evento(evento, como_json=args.json)
            mostrados += 1
    except asyncio.CancelledError:  # Ctrl-C while following: the way to stop, not a failure
        if not args.seguir:
            raise
    if not args.json:
        eventos_salida.total_eventos(mostrados, op.events_topic)
    return 0


def _filtro(args: argparse.Namespace) -> FiltroCartas:
    return FiltroCartas(motivo=args.motivo, id_pago=args.id_pago, desde=args.desde)


def _usuario() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):  # no such user entry (a container's uid)
        return ""


def _uuid(texto: str) -> uuid.UUID:
    try:
        return uuid.UUID(texto)
    except ValueError:
        raise argparse.ArgumentTypeError(f"no es un UUID: {texto[:80]!r}") from None


def _id_diferencia(texto: str) -> int:
    if not texto.strip().isdigit() or int(texto) < 1:
        raise argparse.ArgumentTypeError(f"no es el id de una diferencia (un entero positivo): {texto[:40]!r}")
    return int(texto)


def _texto(texto: str) -> str:
    if not texto.strip():
        raise argparse.ArgumentTypeError("no puede estar vacío")
    return texto.strip()


def _motivo(texto: str) -> MotivoReverso:
    try:
        return MotivoReverso(texto.strip())
    except ValueError:
        motivos = ", ".join(m.value for m in MotivoReverso)
        raise argparse.ArgumentTypeError(f"no es un motivo de reverso: {texto[:40]!r} ({motivos})") from None


def _monto(texto: str) -> Decimal:
    try:
        monto = Decimal(texto.strip())
    except InvalidOperation:
        monto = Decimal(0)
    if not monto.is_finite() or monto <= 0:
        raise argparse.ArgumentTypeError(f"no es un monto positivo (42.50): {texto[:40]!r}")
    return monto


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _descripcion(texto: str) -> str:
    """As the contract admits it (the worker would dead-letter any other)."""
    texto = _texto(texto)
    if _CONTROL.search(texto):
        raise argparse.ArgumentTypeError("no puede llevar caracteres de control (saltos de línea, tabuladores…)")
    if len(texto) > LONGITUD_MAXIMA_DESCRIPCION:
        raise argparse.ArgumentTypeError(f"{LONGITUD_MAXIMA_DESCRIPCION} caracteres como máximo; tiene {len(texto)}")
    return texto


_PARTE = re.compile(r"(\d+)([smhd])")
_UNIDADES = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def duracion(texto: str) -> timedelta:
    """`90s`, `30m`, `1h`, `2d`, or several together: `1h30m`."""
    partes = _PARTE.findall(texto.strip().lower())
    if not partes or "".join(n + u for n, u in partes) != texto.strip().lower():
        raise argparse.ArgumentTypeError(f"no es una duración (30m, 1h, 2d, 1h30m): {texto[:40]!r}")
    return sum((timedelta(**{_UNIDADES[u]: int(n)}) for n, u in partes), timedelta())


def instante(texto: str) -> datetime:
    """An ISO 8601 time (UTC if it names no zone), or a duration meaning that long ago."""
    try:
        valor = datetime.fromisoformat(texto.strip())
    except ValueError:
        try:
            return utcnow() - duracion(texto)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"no es una fecha ISO 8601 ni una duración (2h): {texto[:40]!r}") from None
    return valor.replace(tzinfo=UTC) if valor.tzinfo is None else valor.astimezone(UTC)
