"""Which connected account pays each affiliate."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path


class Destinos:
    """Which connected account (`acct_…`) pays each affiliate: the configured mapping first, then,
    in test mode only, a template such as `acct_{id_afiliado}`; None when neither applies (the
    payment then fails without a gateway call)."""

    def __init__(self, mapping: Mapping[str, str] | None = None, template: str | None = None) -> None:
        self._mapa = dict(mapping or {})
        self._plantilla = template or None

    @classmethod
    def desde_archivo(cls, path: Path | None, template: str | None) -> Destinos:
        mapping = json.loads(path.read_text()) if path else {}
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise ValueError(f"{path}: se esperaba un objeto JSON {{id_afiliado: acct_…}}")
        return cls(mapping, template)

    def para(self, id_afiliado: str) -> str | None:
        if id_afiliado in self._mapa:
            return self._mapa[id_afiliado]
        return self._plantilla.format(id_afiliado=id_afiliado) if self._plantilla else None

    def como_tabla(self) -> tuple[dict[str, str], str | None]:
        """The mapping and the template, for a comparison made elsewhere (the reconciliation's SQL):
        the template's `{id_afiliado}` is the only field it may hold there."""
        return dict(self._mapa), self._plantilla
