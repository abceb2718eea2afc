"""Where the operators' commands write for people: a terminal at its real width, or, piped (a
file, a script, a transcript), plain text as wide as what is written, never cut."""

from __future__ import annotations

import re
import sys
from typing import IO, TextIO, cast

from rich.console import Console

_SIN_LIMITE = 100_000  # columns: a table as wide as its content
_FINALES = re.compile(r" +\n")


def consola(*, stderr: bool = False) -> Console:
    # On a terminal, its real width (rich folds what does not fit). Not a terminal (a pipe, a file,
    # a transcript): no colours, and a table as wide as its rows, never cut (--json for scripts).
    en_terminal = Console(stderr=stderr, highlight=False)
    if en_terminal.is_terminal:
        return en_terminal
    archivo = _SinEspaciosFinales(sys.stderr if stderr else sys.stdout)
    return Console(file=cast("IO[str]", archivo), highlight=False, width=_SIN_LIMITE, no_color=True)


class _SinEspaciosFinales:
    """A stream that drops the spaces rich pads a table's title out with at the end of a line."""

    def __init__(self, destino: TextIO) -> None:
        self._destino = destino

    def write(self, texto: str) -> int:
        return self._destino.write(_FINALES.sub("\n", texto))

    def flush(self) -> None:
        self._destino.flush()

    def isatty(self) -> bool:
        return False
