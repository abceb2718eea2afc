"""The wire contract: `ProcesarPago` commands in, `PagoExitoso`/`PagoFallido` events out.

Commands are UTF-8 JSON objects with exactly `id_pago`, `id_afiliado`, `monto` and `moneda`, as
`models.ComandoProcesarPago` describes them. Anything else is rejected with a reason code (the
dead-letter topic carries it), never a crash.

Decoding is two Rust passes and the domain's rules: jiter parses (refusing a repeated key, NaN and
Infinity, reading every number exactly as a `Decimal` or an `int`), the model validates, `Dinero`
checks the amount. Only what jiter refuses goes through the standard library's parser, which says
why in its words, or reads the little that jiter alone refuses (an escaped lone surrogate, nesting
deeper than 200 levels) for the model to judge like any other value.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import jiter
import orjson
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from pagos_worker.application.commands import ProcesarPago
from pagos_worker.contract.campos import LONGITUD_MAXIMA_AFILIADO
from pagos_worker.contract.models import ComandoProcesarPago
from pagos_worker.domain.dinero import Dinero, Moneda
from pagos_worker.domain.errors import DineroInvalidoError
from pagos_worker.domain.events import EventoPago, PagoFallido

TAMANO_MAXIMO_COMANDO = 16 * 1024
_CAMPOS = frozenset(ComandoProcesarPago.model_fields)
_TIPOS_JSON = {"dict": "object", "list": "array", "str": "string", "bool": "boolean", "NoneType": "null"}


class ComandoInvalidoError(ValueError):
    """A command that cannot be accepted. `motivo` is a stable code, `detalle` says what is wrong."""

    def __init__(self, motivo: str, detalle: str) -> None:
        super().__init__(f"{motivo}: {detalle}")
        self.motivo = motivo
        self.detalle = detalle


def decode_command(data: bytes) -> ProcesarPago:
    if len(data) > TAMANO_MAXIMO_COMANDO:
        raise ComandoInvalidoError("mensaje_demasiado_grande", f"{len(data)} bytes; máximo {TAMANO_MAXIMO_COMANDO}")
    try:
        objeto = jiter.from_json(
            data, allow_inf_nan=False, catch_duplicate_keys=True, float_mode="decimal", cache_mode="keys"
        )
    except ValueError:
        objeto = _parse_json(data)
    try:
        campos = ComandoProcesarPago.model_validate(objeto)
    except ValidationError as exc:
        raise _rechazo(exc.errors(include_url=False, include_context=False), objeto) from None
    monto = campos.monto if isinstance(campos.monto, Decimal) else Decimal(campos.monto)
    try:
        importe = Dinero(monto, Moneda(campos.moneda))
    except DineroInvalidoError as exc:
        raise ComandoInvalidoError(exc.codigo, str(exc)) from None
    return ProcesarPago(id_pago=uuid.UUID(campos.id_pago), id_afiliado=campos.id_afiliado, importe=importe)


def _parse_json(data: bytes) -> Any:  # noqa: ANN401 - any JSON value
    """What jiter refused, with the standard library's rules: the same refusals (its messages are
    the ones in `detalle`), and the same values for the rare texts that only jiter refuses."""
    try:
        texto = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ComandoInvalidoError("no_utf8", f"el mensaje no es UTF-8 válido: {exc.reason}") from None
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


def _rechazo(errores: list[ErrorDetails], objeto: object) -> ComandoInvalidoError:
    """The model's complaints as one reason, the first of: not an object, fields missing, fields not
    in the contract, a field that is wrong (`_campo_invalido`). The field names are compared here,
    not taken from the errors: pydantic cannot name a key that is not valid Unicode."""
    if not isinstance(objeto, dict):
        tipo = _TIPOS_JSON.get(type(objeto).__name__, "number")
        return ComandoInvalidoError("no_es_objeto", f"se esperaba un objeto JSON, llegó {tipo}")
    if faltan := _CAMPOS - objeto.keys():
        return ComandoInvalidoError("campo_faltante", f"faltan campos: {', '.join(sorted(faltan))}")
    if sobran := objeto.keys() - _CAMPOS:
        return ComandoInvalidoError("campo_desconocido", f"campos no admitidos: {', '.join(sorted(sobran))}")
    mal: dict[str, object] = {}
    for error in errores:
        mal.setdefault(str(error["loc"][0]), error["input"])
    return _campo_invalido(mal)


_ORDEN = {"id_pago": 0, "id_afiliado": 1, "moneda": 2, "monto": 3}


def _campo_invalido(mal: dict[str, object]) -> ComandoInvalidoError:
    """Fields are judged in the order id_pago, id_afiliado, moneda when it is not text, monto, then
    moneda: an unsupported currency code is reported only for an amount that reads."""
    campo = min(mal, key=lambda c: 4 if c == "moneda" and isinstance(mal[c], str) else _ORDEN[c])
    valor = mal[campo]
    if campo == "id_pago":
        return ComandoInvalidoError("id_pago_invalido", f"id_pago debe ser un UUID: {_corto(valor)}")
    if campo == "id_afiliado":
        detalle = f"id_afiliado debe ser texto de 1 a {LONGITUD_MAXIMA_AFILIADO} caracteres sin controles"
        return ComandoInvalidoError("id_afiliado_invalido", f"{detalle}: {_corto(valor)}")
    if campo == "monto":
        return ComandoInvalidoError("monto_invalido", f"monto debe ser un número o un texto decimal: {_corto(valor)}")
    if not isinstance(valor, str):
        return ComandoInvalidoError("moneda_no_soportada", f"moneda debe ser texto: {_corto(valor)}")
    soportadas = ", ".join(m.value for m in Moneda)
    return ComandoInvalidoError("moneda_no_soportada", f"moneda no soportada: {valor!r} (soportadas: {soportadas})")


def _corto(valor: object) -> str:
    texto = repr(valor)
    return texto if len(texto) <= 80 else texto[:77] + "..."  # noqa: PLR2004


def encode_command(comando: ProcesarPago) -> bytes:
    return orjson.dumps(
        {
            "id_pago": str(comando.id_pago),
            "id_afiliado": comando.id_afiliado,
            "monto": str(comando.importe.monto),
            "moneda": comando.importe.moneda.value,
        }
    )


def encode_event(evento: EventoPago) -> bytes:
    data: dict[str, str | None] = {
        "id_pago": str(evento.id_pago),
        "id_afiliado": evento.id_afiliado,
        "monto": str(evento.importe.monto),
        "moneda": evento.importe.moneda.value,
        "referencia_pago": evento.referencia_pago,
    }
    if isinstance(evento, PagoFallido):
        data["mensaje_error"] = evento.mensaje_error
    encoded = orjson.dumps(
        {
            "event_type": evento.tipo,
            "event_id": str(evento.event_id),
            "timestamp": iso_utc(evento.timestamp),
            "data": data,
        }
    )
    # orjson's bytes keep the whole buffer it wrote into (~4 KB for a ~0.3 KB event), and an event
    # is held until the broker confirms it: a copy of its own size is what is kept.
    return memoryview(encoded).tobytes()


def iso_utc(momento: datetime) -> str:
    """ISO-8601 in UTC with a `Z`, millisecond precision: 2026-11-28T10:00:00.123Z."""
    return momento.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
