"""The transfers' read side: `GET /v1/transfers/{id}`, `GET /v1/transfers` (newest first, limit
1-100, `starting_after` or `ending_before`, filters `destination`, `transfer_group`, `created`),
a transfer's reversals `GET /v1/transfers/{id}/reversals` (newest first, paged the same way) and
one of them, `GET /v1/transfers/{transfer}/reversals/{id}`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from pagos_dev.simulador import errores, reverso
from pagos_dev.simulador.consultas import Cursor, Filtro, Pagina
from pagos_dev.simulador.ledger import Ledger
from pagos_dev.simulador.parametros import Tipo
from pagos_dev.simulador.transfer import campos_a_expandir, expandir

_PAGINACION = {"ending_before": Tipo.TEXTO, "expand": Tipo.LISTA, "limit": Tipo.ENTERO, "starting_after": Tipo.TEXTO}
OBTENER = {"expand": Tipo.LISTA}
LISTAR = {**_PAGINACION, "created": Tipo.RANGO, "destination": Tipo.TEXTO, "transfer_group": Tipo.TEXTO}
REVERSALS = _PAGINACION
REVERSAL = OBTENER


def obtener(ledger: Ledger, id_transfer: str, params: dict[str, Any]) -> bytes:
    campos = campos_a_expandir(params.get("expand", []), en_lista=False)
    cuerpo = ledger.obtener(id_transfer)
    if cuerpo is None:
        raise errores.no_existe("transfer", id_transfer, "id")
    return orjson.dumps(expandir(orjson.loads(cuerpo), campos)) if campos else cuerpo


def listar(ledger: Ledger, params: dict[str, Any]) -> bytes:
    campos = campos_a_expandir(params.get("expand", []), en_lista=True)
    pagina = pagina_pedida(params, ledger.lugar_de)
    created = params.get("created", {})
    filtro = Filtro(
        destination=params.get("destination"),
        transfer_group=params.get("transfer_group"),
        created=created if isinstance(created, dict) else {"eq": created},
    )
    cuerpos, mas = ledger.listar(filtro, pagina)
    if campos:
        cuerpos = [orjson.dumps(expandir(orjson.loads(c), campos)) for c in cuerpos]
    return lista(cuerpos, mas=mas, url="/v1/transfers")


def reversals(ledger: Ledger, id_transfer: str, params: dict[str, Any]) -> bytes:
    campos = _campos_del_reverso(params, en_lista=True)
    seq_transfer = _seq_transfer(ledger, id_transfer, "id")
    pagina = pagina_pedida(params, lambda cursor: ledger.reversos.lugar_de(seq_transfer, cursor), "transfer_reversal")
    cuerpos, mas = ledger.reversos.pagina(seq_transfer, pagina)
    if campos:
        cuerpos = [_con_expansiones(ledger, c, campos) for c in cuerpos]
    return lista(cuerpos, mas=mas, url=f"/v1/transfers/{id_transfer}/reversals")


def reversal(ledger: Ledger, id_transfer: str, id_reverso: str, params: dict[str, Any]) -> bytes:
    campos = _campos_del_reverso(params, en_lista=False)
    cuerpo = ledger.reversos.obtener(_seq_transfer(ledger, id_transfer, "transfer"), id_reverso)
    if cuerpo is None:
        raise errores.no_existe("transfer_reversal", id_reverso, "id")
    return _con_expansiones(ledger, cuerpo, campos) if campos else cuerpo


def expandir_reverso(ledger: Ledger, cuerpo: bytes, campos: list[str]) -> bytes:
    """A reversal's body with `campos` (checked: `campos_a_expandir`) expanded."""
    return _con_expansiones(ledger, cuerpo, campos) if campos else cuerpo


def _campos_del_reverso(params: dict[str, Any], *, en_lista: bool) -> list[str]:
    return campos_a_expandir(params.get("expand", []), en_lista=en_lista, expandibles=reverso.EXPANDIBLES)


def _con_expansiones(ledger: Ledger, cuerpo: bytes, campos: list[str]) -> bytes:
    def transfer(id_transfer: str) -> dict[str, Any]:
        return dict(orjson.loads(ledger.obtener(id_transfer) or b"{}"))

    return orjson.dumps(reverso.expandir(orjson.loads(cuerpo), campos, transfer))


def _seq_transfer(ledger: Ledger, id_transfer: str, param: str) -> int:
    seq = ledger.seq_de(id_transfer)
    if seq is None:
        raise errores.no_existe("transfer", id_transfer, param)
    return seq


def pagina_pedida(params: dict[str, Any], lugar: Callable[[str], Cursor | None], objeto: str = "transfer") -> Pagina:
    """The page asked for; `lugar` finds a cursor's place (None: not one of the list's `objeto`s)."""
    limit = _limite(params)
    if "starting_after" in params and "ending_before" in params:
        mensaje = "You may only specify one of these parameters: ending_before, starting_after."
        raise errores.invalido(mensaje, "ending_before", "parameters_exclusive")
    lugares: dict[str, Cursor] = {}
    for cursor in ("starting_after", "ending_before"):
        if cursor in params:
            donde = lugar(params[cursor])
            if donde is None:
                raise errores.no_existe(objeto, params[cursor], cursor, status=400)
            lugares[cursor] = donde
    return Pagina(limit, lugares.get("starting_after"), lugares.get("ending_before"))


def _limite(params: dict[str, Any]) -> int:
    limit = int(params.get("limit", 10))
    if not 1 <= limit <= 100:  # noqa: PLR2004
        cota = "greater than or equal to 1" if limit < 1 else "less than or equal to 100"
        mensaje = f"This value must be {cota} (it currently is '{limit}')."
        raise errores.invalido(mensaje, "limit", "parameter_invalid_integer")
    return limit


def lista(cuerpos: list[bytes], *, mas: bool, url: str) -> bytes:
    return b"".join(
        (b'{"object":"list","data":[', b",".join(cuerpos), b'],"has_more":', b"true" if mas else b"false",
         b',"url":"', url.encode(), b'"}')
    )  # fmt: skip
