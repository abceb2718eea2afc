"""Which connected account pays each affiliate."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path


class Destinos:
    """Which connected account (`acct_…`) pays each affiliate: the configured mapping first, then,
    in test mode only, a template such as `acct_{id_afiliado}`; None when neither applies (the
    payment then fails without a gateway call)."""

    def __init__(self, mapa: Mapping[str, str] | None = None, plantilla: str | None = None) -> None:
        self._mapa = dict(mapa or {})
        self._plantilla = plantilla or None

    @classmethod
    def desde_archivo(cls, archivo: Path | None, plantilla: str | None) -> Destinos:
        mapa = json.loads(archivo.read_text()) if archivo else {}
        if not isinstance(mapa, dict) or not all(isinstance(v, str) for v in mapa.values()):
            raise ValueError(f"{archivo}: se esperaba un objeto JSON {{id_afiliado: acct_…}}")
        return cls(mapa, plantilla)

    def para(self, id_afiliado: str) -> str | None:
        if id_afiliado in self._mapa:
            return self._mapa[id_afiliado]
        return self._plantilla.format(id_afiliado=id_afiliado) if self._plantilla else None
