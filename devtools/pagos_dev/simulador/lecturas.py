"""The transfers' read side: `GET /v1/transfers/{id}`, `GET /v1/transfers` (newest first, limit
1-100, `starting_after` or `ending_before`, filters `destination`, `transfer_group`, `created`)
and `GET /v1/transfers/{id}/reversals` (always empty: the simulator reverses nothing)."""

from __future__ import annotations

from typing import Any

import orjson

from pagos_dev.simulador import errores
from pagos_dev.simulador.consultas import Filtro, Pagina
from pagos_dev.simulador.ledger import Ledger
from pagos_dev.simulador.parametros import Tipo
from pagos_dev.simulador.transfer import campos_a_expandir, expandir

_PAGINACION = {"ending_before": Tipo.TEXTO, "expand": Tipo.LISTA, "limit": Tipo.ENTERO, "starting_after": Tipo.TEXTO}
OBTENER = {"expand": Tipo.LISTA}
LISTAR = {**_PAGINACION, "created": Tipo.RANGO, "destination": Tipo.TEXTO, "transfer_group": Tipo.TEXTO}
REVERSALS = _PAGINACION


def obtener(ledger: Ledger, id_transfer: str, params: dict[str, Any]) -> bytes:
    campos = campos_a_expandir(params.get("expand", []), en_lista=False)
    cuerpo = ledger.obtener(id_transfer)
    if cuerpo is None:
        raise errores.no_existe("transfer", id_transfer, "id")
    return orjson.dumps(expandir(orjson.loads(cuerpo), campos)) if campos else cuerpo


def listar(ledger: Ledger, params: dict[str, Any]) -> bytes:
    campos = campos_a_expandir(params.get("expand", []), en_lista=True)
    pagina = _pagina(ledger, params)
    created = params.get("created", {})
    filtro = Filtro(
        destination=params.get("destination"),
        transfer_group=params.get("transfer_group"),
        created=created if isinstance(created, dict) else {"eq": created},
    )
    cuerpos, mas = ledger.listar(filtro, pagina)
    if campos:
        cuerpos = [orjson.dumps(expandir(orjson.loads(c), campos)) for c in cuerpos]
    return _lista(cuerpos, mas=mas, url="/v1/transfers")


def reversals(ledger: Ledger, id_transfer: str, params: dict[str, Any]) -> bytes:
    campos_a_expandir([e for e in params.get("expand", []) if e != "data"], en_lista=True)
    if ledger.seq_de(id_transfer) is None:
        raise errores.no_existe("transfer", id_transfer, "id")
    _limite(params)
    for cursor in ("starting_after", "ending_before"):
        if cursor in params:
            raise errores.no_existe("transfer_reversal", params[cursor], cursor, status=400)
    return _lista([], mas=False, url=f"/v1/transfers/{id_transfer}/reversals")


def _pagina(ledger: Ledger, params: dict[str, Any]) -> Pagina:
    limit = _limite(params)
    if "starting_after" in params and "ending_before" in params:
        mensaje = "You may only specify one of these parameters: ending_before, starting_after."
        raise errores.invalido(mensaje, "ending_before", "parameters_exclusive")
    lugares: dict[str, int] = {}
    for cursor in ("starting_after", "ending_before"):
        if cursor in params:
            seq = ledger.seq_de(params[cursor])
            if seq is None:
                raise errores.no_existe("transfer", params[cursor], cursor, status=400)
            lugares[cursor] = seq
    return Pagina(limit, lugares.get("starting_after"), lugares.get("ending_before"))


def _limite(params: dict[str, Any]) -> int:
    limit = int(params.get("limit", 10))
    if not 1 <= limit <= 100:  # noqa: PLR2004
        cota = "greater than or equal to 1" if limit < 1 else "less than or equal to 100"
        mensaje = f"This value must be {cota} (it currently is '{limit}')."
        raise errores.invalido(mensaje, "limit", "parameter_invalid_integer")
    return limit


def _lista(cuerpos: list[bytes], *, mas: bool, url: str) -> bytes:
    return b"".join(
        (b'{"object":"list","data":[', b",".join(cuerpos), b'],"has_more":', b"true" if mas else b"false",
         b',"url":"', url.encode(), b'"}')
    )  # fmt: skip
