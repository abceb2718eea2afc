"""What `pagos-worker conciliar` prints: counts per class and the differences (rich, or `--json`),
a CSV for finance (`--csv FILE`: one row per difference), and a progress bar on a terminal."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any, Self

import orjson
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from pagos_worker.application.conciliacion import ResultadoConciliacion
from pagos_worker.application.ports.conciliacion import Diferencia
from pagos_worker.contract.wire import iso_utc
from pagos_worker.domain.conciliacion import ClaseDiferencia
from pagos_worker.entrypoints.consola import consola

_COLUMNAS_CSV = (
    "conciliacion", "clase", "critica", "id_pago", "id_reverso", "referencia", "servicio_estado",
    "servicio_unidades_menores", "servicio_moneda", "pasarela_unidades_menores", "pasarela_moneda",
    "pasarela_destino", "servicio", "pasarela",
)  # fmt: skip


def diferencia_json(d: Diferencia) -> dict[str, Any]:
    return {
        "clase": d.clase.value,
        "critica": d.clase.critica,
        "id_pago": str(d.id_pago) if d.id_pago else None,
        "id_reverso": str(d.id_reverso) if d.id_reverso else None,
        "referencia": d.referencia,
        "servicio": dict(d.servicio),
        "pasarela": dict(d.pasarela),
    }


def resultado_json(r: ResultadoConciliacion) -> dict[str, Any]:
    return {
        "conciliacion": r.id,
        "desde": iso_utc(r.ventana.desde),
        "hasta": iso_utc(r.ventana.hasta),
        "conteos": {c.value: r.conteos.get(c, 0) for c in ClaseDiferencia},
        "total_diferencias": r.total_diferencias,
        "diferencias": [diferencia_json(d) for d in r.diferencias],
        "peticiones": r.peticiones,
        "duracion_s": round(r.duracion_s, 3),
    }


def resultado(r: ResultadoConciliacion, *, como_json: bool) -> None:
    if como_json:
        sys.stdout.write(orjson.dumps(resultado_json(r), option=orjson.OPT_INDENT_2).decode() + "\n")
        sys.stdout.flush()
        return
    salida = consola()
    # The window on a line of its own: as a title it would be folded to the narrow table's width.
    salida.print(f"conciliación {r.id}: {iso_utc(r.ventana.desde)} – {iso_utc(r.ventana.hasta)}", markup=False)
    conteos = Table(title="por clase", title_justify="left")
    for columna in ("clase", "cantidad", "crítica"):
        conteos.add_column(columna)
    for clase in ClaseDiferencia:
        conteos.add_row(clase.value, str(r.conteos.get(clase, 0)), "sí" if clase.critica else "")
    salida.print(conteos)
    if r.diferencias:
        mostradas = len(r.diferencias)
        titulo = f"diferencias: {r.total_diferencias}"
        if mostradas < r.total_diferencias:
            titulo += f" (las primeras {mostradas}; todas quedan en la tabla diferencias)"
        tabla = Table(title=titulo, title_justify="left")
        for columna in ("clase", "id_pago", "id_reverso", "referencia", "servicio", "Stripe"):
            tabla.add_column(columna)
        for d in r.diferencias:
            tabla.add_row(d.clase.value, str(d.id_pago or "-"), str(d.id_reverso or "-"), d.referencia or "-",
                          _resumen(d.servicio), _resumen(d.pasarela))  # fmt: skip
        salida.print(tabla)
    veredicto = "todo coincide" if r.coincide_todo else "HAY DIFERENCIAS"
    salida.print(f"{veredicto} · peticiones a Stripe: {r.peticiones} · duración: {r.duracion_s:.1f} s", markup=False)


def _resumen(evidencia: Any) -> str:  # noqa: ANN401 - a JSON object
    if not evidencia:
        return "nada"
    if "transferencias" in evidencia:
        return ", ".join(_resumen(t) for t in evidencia["transferencias"])
    partes = [
        evidencia.get("referencia") or evidencia.get("referencia_reverso") or evidencia.get("referencia_pago"),
        evidencia.get("estado"),
        _importe(evidencia),
        evidencia.get("destino") and f"→ {evidencia['destino']}",
        evidencia.get("destino_esperado") and f"→ {evidencia['destino_esperado']}",
    ]
    return " ".join(str(p) for p in partes if p)


def _importe(evidencia: dict[str, Any]) -> str | None:
    unidades, moneda = evidencia.get("unidades_menores"), evidencia.get("moneda")
    return None if unidades is None else f"{unidades} {moneda or '?'} (unidades menores)"


def escribir_csv(r: ResultadoConciliacion, archivo: Path) -> None:
    with archivo.open("w", newline="", encoding="utf-8") as f:
        escritor = csv.writer(f)
        escritor.writerow(_COLUMNAS_CSV)
        for d in r.diferencias:
            servicio, pasarela = dict(d.servicio), dict(d.pasarela)
            escritor.writerow([
                r.id, d.clase.value, "si" if d.clase.critica else "no", d.id_pago or "", d.id_reverso or "",
                d.referencia or "", servicio.get("estado", ""), servicio.get("unidades_menores", ""),
                servicio.get("moneda", ""), pasarela.get("unidades_menores", ""), pasarela.get("moneda", ""),
                pasarela.get("destino", ""), orjson.dumps(servicio).decode(), orjson.dumps(pasarela).decode(),
            ])  # fmt: skip


class Avance:
    """Stripe's transfers read so far, drawn on stderr only when stdout is a terminal (and not
    under --json): scripts and transcripts get the result alone."""

    def __init__(self, *, activo: bool) -> None:
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}: {task.completed} transfers"), TimeElapsedColumn(),
            console=Console(stderr=True), disable=not (activo and sys.stdout.isatty()), transient=True,
        )  # fmt: skip
        self._tarea: TaskID | None = None

    def __enter__(self) -> Self:
        self._progress.start()
        self._tarea = self._progress.add_task("leyendo Stripe", total=None)
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def leidas(self, total: int) -> None:
        if self._tarea is not None:
            self._progress.update(self._tarea, completed=total)
