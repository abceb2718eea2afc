"""The command decoder as it was before issue 17 (json.loads with hooks, then hand-written checks),
kept unchanged as the oracle that the pydantic decoder is checked against: the same commands
accepted, as the same `ProcesarPago`, and every other one refused with the same `motivo`.
(Its own copy of the encoders is left out: those did not change.)"""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal
from typing import Any

from pagos_worker.application.commands import ProcesarPago
from pagos_worker.contract.wire import ComandoInvalidoError
from pagos_worker.domain.dinero import Dinero, Moneda
from pagos_worker.domain.errors import DineroInvalidoError, MonedaNoSoportadaError

TAMANO_MAXIMO_COMANDO = 16 * 1024
LONGITUD_MAXIMA_AFILIADO = 128
CAMPOS = frozenset({"id_pago", "id_afiliado", "monto", "moneda"})

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_MONTO_TEXTO = re.compile(r"-?[0-9]{1,30}(\.[0-9]{1,30})?")
_AFILIADO = re.compile(r"[^\x00-\x1f\x7f\ud800-\udfff]+")


def decode_command(data: bytes) -> ProcesarPago:
    if len(data) > TAMANO_MAXIMO_COMANDO:
        raise ComandoInvalidoError("mensaje_demasiado_grande", f"{len(data)} bytes; máximo {TAMANO_MAXIMO_COMANDO}")
    try:
        texto = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ComandoInvalidoError("no_utf8", f"el mensaje no es UTF-8 válido: {exc.reason}") from None
    objeto = _parse_json(texto)
    if not isinstance(objeto, dict):
        raise ComandoInvalidoError("no_es_objeto", f"se esperaba un objeto JSON, llegó {type(objeto).__name__}")
    if faltan := CAMPOS - objeto.keys():
        raise ComandoInvalidoError("campo_faltante", f"faltan campos: {', '.join(sorted(faltan))}")
    if sobran := objeto.keys() - CAMPOS:
        raise ComandoInvalidoError("campo_desconocido", f"campos no admitidos: {', '.join(sorted(sobran))}")
    return ProcesarPago(
        id_pago=_id_pago(objeto["id_pago"]),
        id_afiliado=_id_afiliado(objeto["id_afiliado"]),
        importe=_importe(objeto["monto"], objeto["moneda"]),
    )


def _parse_json(texto: str) -> Any:
    try:
        return json.loads(
            texto, parse_float=Decimal, parse_int=Decimal, parse_constant=_rechazar, object_pairs_hook=_sin_duplicados
        )
    except ComandoInvalidoError:
        raise
    except (ValueError, RecursionError) as exc:
        raise ComandoInvalidoError("json_invalido", f"JSON no válido: {str(exc)[:200]}") from None


def _rechazar(constante: str) -> None:
    raise ComandoInvalidoError("json_invalido", f"{constante} no es JSON estándar")


def _sin_duplicados(pares: list[tuple[str, Any]]) -> dict[str, Any]:
    objeto = dict(pares)
    if len(objeto) != len(pares):
        raise ComandoInvalidoError("json_invalido", "claves repetidas en el objeto")
    return objeto


def _id_pago(valor: object) -> uuid.UUID:
    if not isinstance(valor, str) or not _UUID.fullmatch(valor):
        raise ComandoInvalidoError("id_pago_invalido", f"id_pago debe ser un UUID: {_corto(valor)}")
    return uuid.UUID(valor)


def _id_afiliado(valor: object) -> str:
    if not isinstance(valor, str) or not _AFILIADO.fullmatch(valor) or len(valor) > LONGITUD_MAXIMA_AFILIADO:
        raise ComandoInvalidoError(
            "id_afiliado_invalido",
            f"id_afiliado debe ser texto de 1 a {LONGITUD_MAXIMA_AFILIADO} caracteres sin controles: {_corto(valor)}",
        )
    return valor


def _importe(monto: object, moneda: object) -> Dinero:
    if not isinstance(moneda, str):
        raise ComandoInvalidoError("moneda_no_soportada", f"moneda debe ser texto: {_corto(moneda)}")
    try:
        return Dinero(_monto(monto), Moneda.de_codigo(moneda))
    except MonedaNoSoportadaError as exc:
        raise ComandoInvalidoError("moneda_no_soportada", str(exc)) from None
    except DineroInvalidoError as exc:
        raise ComandoInvalidoError(exc.codigo, str(exc)) from None


def _monto(valor: object) -> Decimal:
    if isinstance(valor, Decimal):  # a JSON number, parsed exactly
        return valor
    if isinstance(valor, str) and _MONTO_TEXTO.fullmatch(valor):
        return Decimal(valor)
    raise ComandoInvalidoError("monto_invalido", f"monto debe ser un número o un texto decimal: {_corto(valor)}")


def _corto(valor: object) -> str:
    texto = repr(valor)
    return texto if len(texto) <= 80 else texto[:77] + "..."
