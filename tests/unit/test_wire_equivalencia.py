"""Property-based: the pydantic decoder accepts exactly the commands that the decoder before it
accepted (`tests/wire_referencia.py`), as the same `ProcesarPago`, and refuses every other input
with the same `motivo`. The inputs aim at where two JSON parsers differ: repeated keys (escaped or
not), NaN and Infinity, numbers in every form, escaped lone surrogates, deep nesting, whitespace."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pagos_worker.contract.wire import ComandoInvalidoError, decode_command
from tests import wire_referencia

ID = "550e8400-e29b-41d4-a716-446655440000"


def desenlace(decoder, data: bytes) -> tuple[str, object]:
    try:
        return "aceptado", decoder(data)
    except ComandoInvalidoError as exc:
        return "rechazado", exc.motivo if exc.detalle else "sin detalle"


def mismo_desenlace(data: bytes) -> None:
    assert desenlace(decode_command, data) == desenlace(wire_referencia.decode_command, data), data


numeros = st.from_regex(
    r"-?(0|[1-9][0-9]{0,32})(\.[0-9]{1,32})?([eE][+-]?[0-9]{1,4})?", fullmatch=True
) | st.sampled_from(
    ["NaN", "Infinity", "-Infinity", "-0", "01", "1.", ".5", "1e", "+1", "0x10", "1_000", "1e999", "-1e999"]
)
textos = (
    st.text(max_size=20).map(json.dumps)
    | st.sampled_from([ID, ID.upper(), "{" + ID + "}", ID.replace("-", ""), "USD", "EUR", "COP", "usd", "100.50",
                       "1e3", " 1", "1\n", "-0.00", "0" * 31, "a" * 129]).map(json.dumps)
    | st.sampled_from(['"\\ud800"', '"a\\udc00b"', '"\\ud83d\\ude00"', '"\\u0000"', '"a\\nb"', '"\\u007f"', '"\x7f"',
                       '"\\u00e9"', '"é"', '"\\/"'])
)  # fmt: skip
escalares = numeros | textos | st.sampled_from(["true", "false", "null"])
valores = st.recursive(
    escalares,
    lambda hijos: (
        st.lists(hijos, max_size=3).map(lambda xs: "[" + ",".join(xs) + "]")
        | st.lists(st.tuples(textos, hijos), max_size=3).map(lambda ps: "{" + ",".join(f"{k}:{v}" for k, v in ps) + "}")
    ),
    max_leaves=8,
) | st.integers(150, 260).map(lambda n: "[" * n + "]" * n)
claves = st.sampled_from(
    [
        '"id_pago"',
        '"id_afiliado"',
        '"monto"',
        '"moneda"',
        '"id\\u005fpago"',
        '"\\u006donto"',
        '"extra"',
        '"\\ud800"',
        '""',
    ]
)
espacios = st.sampled_from(["", " ", "\n", "\t", "\r\n", "\x0c", "\u00a0", "\ufeff"])


@st.composite
def objetos(draw) -> str:
    """Objects near a command: every field usually there, with a plausible or a hostile value."""
    base = {'"id_pago"': json.dumps(ID), '"id_afiliado"': '"afiliado_1"', '"monto"': '"100.50"', '"moneda"': '"USD"'}
    pares = [(k, draw(valores) if draw(st.booleans()) else v) for k, v in base.items() if draw(st.integers(0, 9))]
    pares += draw(st.lists(st.tuples(claves, valores), max_size=2))
    pares = draw(st.permutations(pares))
    sep = draw(espacios)
    return sep + "{" + ",".join(f"{sep}{k}{sep}:{sep}{v}" for k, v in pares) + "}" + draw(espacios)


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
@given(objetos())
@example('{"id_pago": "' + ID + '", "id_afiliado": "a", "monto": 1, "moneda": "USD", "monto": 2}')
@example('{"id_pago": "' + ID + '", "id_afiliado": "a", "monto": 1, "moneda": "USD", "\\u006donto": 2}')
@example('{"id_pago": "' + ID + '", "id_afiliado": "\\ud800", "monto": 1, "moneda": "USD"}')
@example('{"id_pago": "' + ID + '", "id_afiliado": "a", "monto": 1e999, "moneda": "GBP"}')
@example('{"id_pago": "' + ID + '", "id_afiliado": "a", "monto": "x", "moneda": "GBP"}')
@example('{"id_pago": "' + ID + '", "id_afiliado": "a", "monto": "x", "moneda": 7}')
@example('{"id_pago": "' + ID + '", "id_afiliado": "a", "monto": true, "moneda": "USD"}')
@example('{"id_pago": "' + ID + '", "id_afiliado": "a", "monto": -0, "moneda": "USD"}')
def test_objetos_cerca_de_un_comando(texto):
    mismo_desenlace(texto.encode("utf-8", "surrogatepass"))


@settings(max_examples=1000)
@given(valores, espacios)
def test_valores_json_cualesquiera(texto, espacio):
    mismo_desenlace((espacio + texto + espacio).encode())


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_bytes_cualesquiera(data):
    mismo_desenlace(data)


def con_monto(monto: str) -> bytes:
    return f'{{"id_pago": "{ID}", "id_afiliado": "a", "monto": {monto}, "moneda": "USD"}}'.encode()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        b"{}",
        b"[]",
        b"\xef\xbb\xbf{}",
        b" " * 20_000,
        '{"a": "\udc80"}'.encode(errors="surrogatepass"),
        # numbers far past any float, and past Python's 4,300 digits for int(str)
        con_monto("1" + "0" * 10_000),
        con_monto("0." + "0" * 10_000 + "1"),
        con_monto("-" + "9" * 9_000),
        con_monto("1e99999999999"),
        con_monto("1E-99999999999"),
        con_monto('"' + "1" * 31 + '"'),
    ],
    ids=lambda data: repr(data[:40]),
)
def test_casos_sueltos(data):
    mismo_desenlace(data)
