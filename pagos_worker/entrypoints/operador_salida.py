"""What the operators' commands print: tables for people (rich), JSON for scripts (`--json`: the
same shapes as the HTTP API where there is one), progress bars on stderr while walking a topic."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Self

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from pagos_worker import logs
from pagos_worker.application.dlq import ResultadoReenvio, VistaCarta
from pagos_worker.application.operador import PagoReanudado, PagoResuelto, ReversoReanudado
from pagos_worker.application.pedir_reverso import ReversoPedido
from pagos_worker.application.queries import Atencion, VistaDiferencia, VistaPago, VistaReverso
from pagos_worker.clock import utcnow
from pagos_worker.contract.wire import iso_utc
from pagos_worker.domain.dinero import Dinero, Moneda
from pagos_worker.domain.errors import DominioError
from pagos_worker.domain.reverso import EstadoReverso
from pagos_worker.entrypoints.consola import consola as _consola
from pagos_worker.entrypoints.http_api import (
    diferencia_json,
    monto_json,
    resolucion_json,
    reverso_en_atencion_json,
    venenoso_json,
    vista_json,
)


def error(mensaje: str) -> None:
    """One line on stderr, with the settings' secrets masked as in the logs (an outage's text may
    quote a URL or a driver's message)."""
    _consola(stderr=True).print(f"pagos-worker: {logs.enmascarar(mensaje)}", markup=False, soft_wrap=True)


def _json(valor: Any) -> None:  # noqa: ANN401 - any JSON value
    sys.stdout.write(orjson.dumps(valor, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def pago(vista: VistaPago, *, como_json: bool) -> None:
    if como_json:
        _json(vista_json(vista))
        return
    tabla = Table(show_header=False, title=f"pago {vista.id}", title_justify="left")
    for campo, valor in vista_json(vista).items():
        if campo not in {"comando_venenoso", "resolucion", "reversos", "diferencias"}:
            tabla.add_row(campo, _texto(valor))
    tabla.add_row("causa de atención", str(vista.causa or "-"))
    if (r := vista.resolucion) is not None:
        tabla.add_row("resuelto por", f"{r.operador} el {iso_utc(r.fecha)}: {r.estado.value}")
        tabla.add_row("motivo", r.motivo)
        tabla.add_row("la pasarela mostró", _transfers(r.transferencias) or "ningún transfer")
    if (v := vista.comando_venenoso) is not None:
        tabla.add_row("comando venenoso", f"{v.message_id}: {v.fallos} fallos, el último {v.ultimo_error}")
    _consola().print(tabla)
    if vista.reversos:
        reversos = Table(title=f"reversos: {len(vista.reversos)}, el más nuevo primero", title_justify="left")
        for columna in ("id_reverso", "monto", "estado", "código", "referencia", "motivo", "creado", "procesado",
                        "operador"):  # fmt: skip
            reversos.add_column(columna)
        for rev in vista.reversos:
            motivo = rev.motivo + (f": {rev.descripcion}" if rev.descripcion else "")
            reversos.add_row(str(rev.id_reverso), _monto_reverso(rev, vista.moneda), rev.estado, rev.codigo or "-",
                             rev.referencia_reverso or "-", motivo, iso_utc(rev.fecha_creacion),
                             _fecha(rev.fecha_procesamiento), rev.operador or "-")  # fmt: skip
        _consola().print(reversos)
    if vista.diferencias:
        _consola().print(_diferencias(vista.diferencias, f"diferencias sin resolver: {len(vista.diferencias)}"))


def _diferencias(diferencias: Sequence[VistaDiferencia], titulo: str) -> Table:
    """One row per difference, both sides' evidence as the reconciliation recorded it."""
    tabla = Table(title=titulo, title_justify="left")
    for columna in ("id", "clase", "id_pago", "id_reverso", "referencia", "creada", "conciliación", "servicio",
                    "pasarela"):  # fmt: skip
        tabla.add_column(columna)
    for d in diferencias:
        tabla.add_row(str(d.id), _clase(d), str(d.id_pago or "-"), str(d.id_reverso or "-"), d.referencia or "-",
                      iso_utc(d.creada), str(d.conciliacion), _evidencia(d.servicio),
                      _evidencia(d.pasarela))  # fmt: skip
    return tabla


def _clase(d: VistaDiferencia) -> str:
    return f"{d.clase} (crítica)" if diferencia_json(d)["critica"] else d.clase


def _evidencia(valor: Any) -> str:  # noqa: ANN401 - a JSON object
    return orjson.dumps(valor).decode() if valor else "-"


def _monto_reverso(r: VistaReverso, moneda: str) -> str:
    """Fixed once claimed; until then, as asked for (in its payment's currency)."""
    if r.monto is not None:
        return f"{monto_json(r.monto)} {r.moneda}"
    if r.monto_pedido is not None:
        return f"{monto_json(r.monto_pedido)} {moneda} (pedido)"
    return "todo lo que quede"


def _fecha(momento: Any) -> str:  # noqa: ANN401 - a datetime or None
    return "-" if momento is None else iso_utc(momento)


def atencion(a: Atencion, *, como_json: bool) -> None:
    if como_json:
        pagos = [{**vista_json(v), "causa": str(v.causa) if v.causa else None} for v in a.pagos]
        _json({"pagos": pagos, "comandos_venenosos": [venenoso_json(v) for v in a.comandos_venenosos],
               "reversos": [reverso_en_atencion_json(r) for r in a.reversos],
               "diferencias": [diferencia_json(d) for d in a.diferencias]})  # fmt: skip
        return
    ahora = utcnow()
    tabla = Table(title=f"pagos que requieren atención: {len(a.pagos)}", title_justify="left")
    for columna in ("id_pago", "afiliado", "monto", "causa", "intentos", "edad", "último error"):
        tabla.add_column(columna)
    for v in a.pagos:
        tabla.add_row(str(v.id), v.id_afiliado, f"{v.monto} {v.moneda}", str(v.causa or "-"), str(v.intentos),
                      _edad(ahora - v.fecha_creacion), v.ultimo_error or "-")  # fmt: skip
    consola = _consola()
    consola.print(tabla if a.pagos else "pagos que requieren atención: 0", markup=False)
    if a.comandos_venenosos:
        venenosos = Table(title=f"comandos venenosos: {len(a.comandos_venenosos)}", title_justify="left")
        for columna in ("message_id", "id_pago", "fallos", "en la DLQ desde", "último error"):
            venenosos.add_column(columna)
        for c in a.comandos_venenosos:
            venenosos.add_row(c.message_id, str(c.id_pago or "-"), str(c.fallos), iso_utc(c.venenoso_desde),
                              c.ultimo_error)  # fmt: skip
        consola.print(venenosos)
    if a.reversos:
        consola.print(_reversos_en_atencion(a.reversos, ahora))
    if a.diferencias:
        consola.print(_diferencias(a.diferencias, f"diferencias de la conciliación sin resolver: {len(a.diferencias)}"))


def _reversos_en_atencion(lista: list[VistaReverso], ahora: datetime) -> Table:
    reversos = Table(title=f"reversos que requieren atención: {len(lista)}", title_justify="left")
    for columna in ("id_reverso", "id_pago", "monto", "causa", "estado", "edad", "detalle"):
        reversos.add_column(columna)
    for r in lista:
        reversos.add_row(str(r.id_reverso), str(r.id_pago), _monto_reverso(r, "?"), str(r.causa or "-"), r.estado,
                         _edad(ahora - r.fecha_creacion), r.mensaje_error or r.ultimo_error or "-")  # fmt: skip
    return reversos


def diferencia_resuelta(d: VistaDiferencia, *, como_json: bool) -> None:
    if como_json:
        _json({**diferencia_json(d), "resuelta_en": _fecha(d.resuelta_en), "resuelta_por": d.resuelta_por,
               "nota": d.nota})  # fmt: skip
        return
    sujeto = f" del pago {d.id_pago}" if d.id_pago else ""
    _consola().print(
        f"diferencia {d.id} ({_clase(d)}{sujeto}, {d.referencia or '-'}): resuelta por {d.resuelta_por} el "
        f"{_fecha(d.resuelta_en)}\n  nota: {d.nota}\n  sale de la lista de atención (ningún pago cambió)",
        markup=False,
    )


def reverso_pedido(p: ReversoPedido, *, como_json: bool) -> None:
    c = p.comando
    registrado = p.registrado
    if como_json:
        _json({"id_reverso": str(c.id_reverso), "id_pago": str(c.id_pago), "monto": monto_json(c.monto),
               "moneda": p.moneda, "motivo": c.motivo.value, "descripcion": c.descripcion, "operador": c.operador,
               "publicado": p.publicado, "estado": registrado.estado if registrado else None})  # fmt: skip
        return
    seguir = f"  para seguirlo: pagos-worker pagos ver {c.id_pago}"
    if registrado is not None:
        _consola().print(
            f"reverso {c.id_reverso}: ya registrado ({registrado.estado}): no se publicó nada\n{seguir}", markup=False
        )
        return
    cuanto = f"{c.monto} {p.moneda}"
    if c.monto is None:
        cuanto = f"todo lo que quede ({monto_json(p.queda)} {p.moneda} ahora)"
    _consola().print(
        f"reverso {c.id_reverso}: pedido para el pago {c.id_pago}: {cuanto}, motivo {c.motivo.value}\n"
        f"  comando ReversarPago publicado en el topic de comandos por {c.operador}: lo procesa un worker\n"
        f"{seguir}\n"
        f"  para repetirlo sin reversar dos veces: --id-reverso {c.id_reverso}",
        markup=False,
    )


def resuelto(r: PagoResuelto, *, como_json: bool) -> None:
    if como_json:
        _json({"id_pago": str(r.pago.id_pago), "estado": r.pago.estado.value, "referencia_pago": r.pago.referencia_pago,
               "eventos_en_outbox": r.eventos, "resolucion": resolucion_json(r.resolucion),
               "diferencias_resueltas": list(r.diferencias_resueltas)})  # fmt: skip
        return
    evento = r.pago.eventos[-1].tipo if r.pago.eventos else "-"
    referencia = f" con {r.pago.referencia_pago}" if r.pago.referencia_pago else ""
    cerradas = ", ".join(map(str, r.diferencias_resueltas))
    _consola().print(
        f"pago {r.pago.id_pago}: {r.pago.estado.value}{referencia}\n"
        f"  evento {evento} en el outbox (lo publican los relays)\n"
        f"  resolución: {r.resolucion.operador}, {iso_utc(r.resolucion.fecha)}: {r.resolucion.motivo}\n"
        f"  la pasarela mostró: {_transfers(r.resolucion.transferencias) or 'ningún transfer'}"
        + (f"\n  diferencias de la conciliación resueltas con él: {cerradas}" if cerradas else ""),
        markup=False,
    )


def reanudado(r: PagoReanudado | ReversoReanudado, operador: str, *, como_json: bool) -> None:
    if isinstance(r, ReversoReanudado):
        _reverso_reanudado(r, operador, como_json=como_json)
        return
    if como_json:
        _json({"id_pago": str(r.pago.id_pago), "reanudado_por": operador, "comando_publicado": r.comando_publicado,
               "error": r.error})  # fmt: skip
        return
    cola = "comando publicado: un worker lo toma ahora (consulta en la pasarela primero, misma clave)"
    if not r.comando_publicado:
        cola = f"comando NO publicado ({r.error}): el reconciliador lo tomará"
    _consola().print(f"pago {r.pago.id_pago}: reanudado por {operador}\n  {cola}", markup=False)


def _reverso_reanudado(r: ReversoReanudado, operador: str, *, como_json: bool) -> None:
    ident = str(r.reverso.id_reverso)
    if como_json:
        _json({"id_reverso": ident, "id_pago": str(r.reverso.id_pago), "estado": r.reverso.estado.value,
               "reanudado_por": operador, "comando_publicado": r.comando_publicado, "error": r.error})  # fmt: skip
        return
    if r.reverso.estado is not EstadoReverso.PROCESANDO:
        cola = f"{r.reverso.estado.value} ({r.reverso.codigo or '-'}): reconocido, sale de la lista de atención"
    elif r.comando_publicado:
        cola = "comando publicado: un worker lo toma ahora (consulta en la pasarela primero, misma clave)"
    else:
        cola = f"comando NO publicado ({r.error}): el reconciliador lo tomará"
    _consola().print(f"reverso {ident} del pago {r.reverso.id_pago}: reanudado por {operador}\n  {cola}", markup=False)


def cartas(lista: list[VistaCarta], *, como_json: bool, topic: str = "") -> None:
    if como_json:
        _json([_carta_json(c) for c in lista])
        return
    if not lista:  # the topic named: a wrong one must not pass for an empty one
        _consola().print(f"cartas muertas: 0 (topic {topic})" if topic else "cartas muertas: 0", markup=False)
        return
    tabla = Table(title=f"cartas muertas: {len(lista)}", title_justify="left")
    for columna in ("message_id", "publicada", "motivo", "id_pago", "detalle", "vuelta de", "reenviada"):
        tabla.add_column(columna)
    for c in lista:
        vuelta = c.origen if c.origen != c.carta.message_id else "-"  # back after a re-drive of that letter
        reenviada = f"{iso_utc(c.reenvio.fecha)} ×{c.reenvio.veces}" if c.reenvio else "-"
        tabla.add_row(c.carta.message_id, iso_utc(c.carta.publicada), c.motivo, str(c.id_pago or "-"),
                      c.detalle[:80], vuelta, reenviada)  # fmt: skip
    _consola().print(tabla)


def reenvio(r: ResultadoReenvio, *, como_json: bool) -> None:
    if como_json:
        _json({"lote": str(r.lote), "dry_run": r.dry_run, "reenviadas": r.reenviadas,
               "a_reenviar": [_carta_json(c) for c in r.a_enviar],
               "omitidas_ya_reenviadas": [_carta_json(c) for c in r.omitidas]})  # fmt: skip
        return
    consola = _consola()
    enviar = r.a_enviar
    if r.dry_run:
        consola.print(f"en seco (--dry-run): se reenviarían {len(enviar)} (no se envió nada)", markup=False)
        if enviar:
            cartas(enviar, como_json=False)
    else:
        consola.print(f"reenviadas: {r.reenviadas} al topic de comandos (lote {r.lote})", markup=False)
    if r.omitidas:
        consola.print(f"omitidas: {len(r.omitidas)}, ya reenviadas antes (--otra-vez para volver a enviarlas)")


def _carta_json(c: VistaCarta) -> dict[str, Any]:
    return {
        "message_id": c.carta.message_id,
        "publicada": iso_utc(c.carta.publicada),
        "motivo": c.motivo,
        "detalle": c.detalle,
        "id_pago": str(c.id_pago) if c.id_pago else None,
        "origen": c.origen,
        "key": c.carta.key or None,
        "payload": c.carta.payload.decode("utf-8", "replace"),
        "reenviada": None if c.reenvio is None else {
            "fecha": iso_utc(c.reenvio.fecha), "operador": c.reenvio.operador, "veces": c.reenvio.veces,
            "lote": str(c.reenvio.lote),
        },
    }  # fmt: skip


def _transfers(transferencias: Any) -> str:  # noqa: ANN401 - a sequence of TransferenciaHallada
    return "; ".join(
        f"{t.referencia} ({_importe(t.unidades_menores, t.moneda)}, {t.destino or '?'})" for t in transferencias
    )


def _importe(unidades: int | None, moneda: str | None) -> str:
    """As every amount of the service is written (`42.00 USD`), from the gateway's minor units."""
    try:
        return str(Dinero.de_unidades_menores(unidades or 0, Moneda((moneda or "").upper())))
    except (ValueError, DominioError):  # a currency the service does not pay in: as the gateway said it
        return f"{unidades} {moneda} (unidades menores)"


def _texto(valor: Any) -> str:  # noqa: ANN401 - a JSON value
    return "-" if valor is None else str(valor)


def _edad(d: Any) -> str:  # noqa: ANN401 - a timedelta
    segundos = int(d.total_seconds())
    horas, resto = divmod(segundos, 3600)
    return f"{horas}h{resto // 60:02d}m" if horas else f"{resto // 60}m{resto % 60:02d}s"


class Barras:
    """A `Progreso` (application.dlq) drawn on stderr while the topic is walked; drawn only on a
    terminal (and not under --json), so scripts and transcripts get the result alone."""

    def __init__(self, *, activas: bool) -> None:
        consola = Console(stderr=True)
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=consola, disable=not (activas and consola.is_terminal), transient=False,
        )  # fmt: skip
        self._lectura: TaskID | None = None
        self._envio: TaskID | None = None

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def leidas(self, n: int) -> None:
        if self._lectura is None:
            self._lectura = self._progress.add_task("leyendo la DLQ", total=None)
        self._progress.advance(self._lectura, n)

    def a_enviar(self, total: int) -> None:
        if self._lectura is not None:  # the read is over: its bar full
            leidas = self._progress.tasks[self._lectura].completed
            self._progress.update(self._lectura, total=leidas, completed=leidas)
        self._envio = self._progress.add_task("reenviando", total=total)

    def enviadas(self, n: int) -> None:
        if self._envio is not None:
            self._progress.advance(self._envio, n)
