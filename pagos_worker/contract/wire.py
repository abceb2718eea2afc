"""The wire contract: `ProcesarPago` and `ReversarPago` commands in, the payments' and reversals'
events out.

A `ProcesarPago` is a UTF-8 JSON object with exactly `id_pago`, `id_afiliado`, `monto` and `moneda`,
as `models.ComandoProcesarPago` describes it; a `ReversarPago` (message property `tipo_comando`)
is `models.ComandoReversarPago`. Anything else is rejected with a reason code (the dead-letter
topic carries it), never a crash.

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

from pagos_worker.application.commands import Comando, ProcesarPago, ReversarPago
from pagos_worker.contract.campos import LONGITUD_MAXIMA_AFILIADO, LONGITUD_MAXIMA_DESCRIPCION
from pagos_worker.contract.models import ComandoProcesarPago, ComandoReversarPago
from pagos_worker.domain.dinero import Dinero, Moneda
from pagos_worker.domain.errors import DineroInvalidoError
from pagos_worker.domain.events import (
    Evento,
    EventoPago,
    PagoFallido,
    PagoReversado,
    ReversoFallido,
)
from pagos_worker.domain.reverso import MotivoReverso

TAMANO_MAXIMO_COMANDO = 16 * 1024
# The message property that tells a `ReversarPago` apart; without it a message is a `ProcesarPago`.
PROPIEDAD_TIPO = "tipo_comando"
TIPO_REVERSAR = "ReversarPago"
_CAMPOS = frozenset(ComandoProcesarPago.model_fields)
_CAMPOS_REVERSO = frozenset(ComandoReversarPago.model_fields)
_REQUERIDOS_REVERSO = frozenset(n for n, f in ComandoReversarPago.model_fields.items() if f.is_required())
_TIPOS_JSON = {"dict": "object", "list": "array", "str": "string", "bool": "boolean", "NoneType": "null"}


class ComandoInvalidoError(ValueError):
    """A command that cannot be accepted. `motivo` is a stable code, `detalle` says what is wrong."""

    def __init__(self, motivo: str, detalle: str) -> None:
        super().__init__(f"{motivo}: {detalle}")
        self.motivo = motivo
        self.detalle = detalle


def decode(data: bytes, properties: dict[str, str] | None = None) -> Comando:
    """The command a message carries: a `ReversarPago` when its property `tipo_comando` says so,
    else a `ProcesarPago` (its publishers never set it)."""
    tipo = (properties or {}).get(PROPIEDAD_TIPO)
    if tipo is None or tipo == "ProcesarPago":
        return decode_command(data)
    if tipo == TIPO_REVERSAR:
        return decode_reversal(data)
    raise ComandoInvalidoError(
        "tipo_comando_desconocido", f"{PROPIEDAD_TIPO} {_corto(tipo)}: se admiten ProcesarPago y {TIPO_REVERSAR}"
    )


def decode_command(data: bytes) -> ProcesarPago:
    objeto = _objeto(data)
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


def decode_reversal(data: bytes) -> ReversarPago:
    """A `ReversarPago`, as strict as a `ProcesarPago`. Its amount's currency is its payment's, known
    only when it is handled: here it is held to every currency's rules (above zero, 2 decimals)."""
    objeto = _objeto(data)
    try:
        campos = ComandoReversarPago.model_validate(objeto)
        if nulos := [k for k in ("monto", "descripcion") if k in objeto and objeto[k] is None]:
            # May be absent, never null (the models take None for absent): judged as a wrong value.
            errores = [{"loc": (k,), "input": None} for k in nulos]
            raise _rechazo_reverso(errores, objeto)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise _rechazo_reverso(exc.errors(include_url=False, include_context=False), objeto) from None
    monto = None
    if campos.monto is not None:
        monto = campos.monto if isinstance(campos.monto, Decimal) else Decimal(campos.monto)
        try:
            monto = Dinero(monto, Moneda.COP).monto  # the widest currency: the payment's is checked later
        except DineroInvalidoError as exc:
            raise ComandoInvalidoError(exc.codigo, str(exc)) from None
    return ReversarPago(
        id_reverso=uuid.UUID(campos.id_reverso),
        id_pago=uuid.UUID(campos.id_pago),
        monto=monto,
        motivo=MotivoReverso(campos.motivo),
        descripcion=campos.descripcion,
    )


def _objeto(data: bytes) -> Any:  # noqa: ANN401 - any JSON value
    if len(data) > TAMANO_MAXIMO_COMANDO:
        raise ComandoInvalidoError("mensaje_demasiado_grande", f"{len(data)} bytes; máximo {TAMANO_MAXIMO_COMANDO}")
    try:
        return jiter.from_json(
            data, allow_inf_nan=False, catch_duplicate_keys=True, float_mode="decimal", cache_mode="keys"
        )
    except ValueError:
        return _parse_json(data)


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
    if (forma := _forma(objeto, _CAMPOS, _CAMPOS)) is not None:
        return forma
    return _campo_invalido(_campos_mal(errores))


def _forma(objeto: object, requeridos: frozenset[str], admitidos: frozenset[str]) -> ComandoInvalidoError | None:
    """Not an object, fields missing, fields not in the contract: the first of these, or None."""
    if not isinstance(objeto, dict):
        tipo = _TIPOS_JSON.get(type(objeto).__name__, "number")
        return ComandoInvalidoError("no_es_objeto", f"se esperaba un objeto JSON, llegó {tipo}")
    if faltan := requeridos - objeto.keys():
        return ComandoInvalidoError("campo_faltante", f"faltan campos: {', '.join(sorted(faltan))}")
    if sobran := objeto.keys() - admitidos:
        return ComandoInvalidoError("campo_desconocido", f"campos no admitidos: {', '.join(sorted(sobran))}")
    return None


def _campos_mal(errores: list[ErrorDetails]) -> dict[str, object]:
    mal: dict[str, object] = {}
    for error in errores:
        mal.setdefault(str(error["loc"][0]), error["input"])
    return mal


def _rechazo_reverso(errores: list[ErrorDetails], objeto: object) -> ComandoInvalidoError:
    """A `ReversarPago`'s complaints as one reason, in the same order as a `ProcesarPago`'s."""
    if (forma := _forma(objeto, _REQUERIDOS_REVERSO, _CAMPOS_REVERSO)) is not None:
        return forma
    mal = _campos_mal(errores)
    campo = min(mal, key=_ORDEN_REVERSO.__getitem__)
    valor = _corto(mal[campo])
    if campo in ("id_reverso", "id_pago"):
        return ComandoInvalidoError(f"{campo}_invalido", f"{campo} debe ser un UUID: {valor}")
    if campo == "monto":
        return ComandoInvalidoError("monto_invalido", f"monto debe ser un número o un texto decimal: {valor}")
    if campo == "motivo":
        motivos = ", ".join(m.value for m in MotivoReverso)
        return ComandoInvalidoError("motivo_invalido", f"motivo no admitido: {valor} (admitidos: {motivos})")
    detalle = f"descripcion debe ser texto de 1 a {LONGITUD_MAXIMA_DESCRIPCION} caracteres sin controles"
    return ComandoInvalidoError("descripcion_invalida", f"{detalle}: {valor}")


_ORDEN = {"id_pago": 0, "id_afiliado": 1, "moneda": 2, "monto": 3}
_ORDEN_REVERSO = {"id_reverso": 0, "id_pago": 1, "monto": 2, "motivo": 3, "descripcion": 4}


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


def encode_reversal(comando: ReversarPago) -> bytes:
    """A `ReversarPago`'s payload (its message also carries the property `tipo_comando`)."""
    cuerpo = {"id_reverso": str(comando.id_reverso), "id_pago": str(comando.id_pago), "motivo": comando.motivo.value}
    if comando.monto is not None:
        cuerpo["monto"] = str(comando.monto)
    if comando.descripcion is not None:
        cuerpo["descripcion"] = comando.descripcion
    return orjson.dumps(cuerpo)


def encode_event(evento: Evento) -> bytes:
    data = _datos_pago(evento) if isinstance(evento, EventoPago) else _datos_reverso(evento)
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


def _datos_pago(evento: EventoPago) -> dict[str, str | None]:
    data: dict[str, str | None] = {
        "id_pago": str(evento.id_pago),
        "id_afiliado": evento.id_afiliado,
        "monto": str(evento.importe.monto),
        "moneda": evento.importe.moneda.value,
        "referencia_pago": evento.referencia_pago,
    }
    if isinstance(evento, PagoFallido):
        data["mensaje_error"] = evento.mensaje_error
    return data


def _datos_reverso(evento: Evento) -> dict[str, str | None]:
    assert not isinstance(evento, EventoPago)  # noqa: S101 - the caller told them apart
    data: dict[str, str | None] = {
        "id_pago": str(evento.id_pago),
        "id_reverso": str(evento.id_reverso),
        "motivo": evento.motivo,
    }
    if isinstance(evento, PagoReversado):
        data["monto"] = str(evento.importe.monto)
        data["moneda"] = evento.importe.moneda.value
        data["monto_reversado_total"] = str(evento.monto_reversado_total)
        data["referencia_reverso"] = evento.referencia_reverso
    elif isinstance(evento, ReversoFallido):
        data["codigo"] = evento.codigo
        data["mensaje_error"] = evento.mensaje_error
    return data


def iso_utc(momento: datetime) -> str:
    """ISO-8601 in UTC with a `Z`, millisecond precision: 2026-11-28T10:00:00.123Z."""
    return momento.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
