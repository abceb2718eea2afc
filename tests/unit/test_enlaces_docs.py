"""Every relative link in the README and docs/ leads somewhere: the file exists and, where the link
names a section (`#…`), a heading of that file makes that anchor (as GitHub makes them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTOS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
_ENLACE = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_CODIGO = re.compile(r"```.*?```", re.DOTALL)


def anclas(documento: Path) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped, spaces
    as hyphens, repeated ones numbered."""
    vistas: dict[str, int] = {}
    resultado = set()
    for linea in _CODIGO.sub("", documento.read_text()).splitlines():
        if not (m := re.match(r"#{1,6} (.+)", linea)):
            continue
        base = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = vistas.get(base, 0)
        vistas[base] = n + 1
        resultado.add(base if n == 0 else f"{base}-{n}")
    return resultado


def enlaces() -> list[tuple[Path, str]]:
    return [
        (doc, destino)
        for doc in DOCUMENTOS
        for destino in _ENLACE.findall(_CODIGO.sub("", doc.read_text()))
        if not destino.startswith(("http://", "https://", "mailto:"))
    ]


def test_hay_enlaces_que_comprobar():
    assert len(enlaces()) > 50  # the docs link to each other a lot


@pytest.mark.parametrize(("doc", "destino"), enlaces(), ids=lambda x: x.name if isinstance(x, Path) else x)
def test_el_enlace_lleva_a_algo(doc: Path, destino: str):
    ruta, _, ancla = destino.partition("#")
    archivo = (doc.parent / ruta).resolve() if ruta else doc
    assert archivo.exists(), f"{doc.relative_to(ROOT)}: {destino} does not exist"
    if ancla and archivo.suffix == ".md":
        assert ancla in anclas(archivo), f"{doc.relative_to(ROOT)}: no heading makes #{ancla} in {ruta or doc.name}"


def test_las_anclas_son_las_de_github():
    assert {"the-accounts-budget", "checked-at-start"} <= anclas(ROOT / "docs" / "gateway.md")
