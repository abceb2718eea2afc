"""W3C Trace Context as the service reads it: `traceparent` by the specification's rules, an invalid
one ignored, `tracestate` kept only when it is valid; and the contract's pattern says the same."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pagos_worker.application.ports.tracing import TraceContext
from pagos_worker.contract.campos import PATRON_TRACEPARENT

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
VALIDO = f"00-{TRACE_ID}-{PARENT_ID}-01"


def test_un_traceparent_valido():
    traza = TraceContext.leer(VALIDO)
    assert traza == TraceContext(TRACE_ID, PARENT_ID, "01")
    assert traza.traceparent == VALIDO
    assert traza.sampled
    assert not TraceContext.leer(f"00-{TRACE_ID}-{PARENT_ID}-00").sampled


@pytest.mark.parametrize(
    "valor",
    [
        "",
        "00",
        f"00-{TRACE_ID}-{PARENT_ID}",  # no flags
        f"00-{TRACE_ID.upper()}-{PARENT_ID}-01",  # uppercase hex
        f"00-{TRACE_ID}-{PARENT_ID.upper()}-01",
        f"00-{TRACE_ID[:-1]}-{PARENT_ID}-01",  # short trace id
        f"00-{TRACE_ID}0-{PARENT_ID}-01",  # long trace id
        f"00-{TRACE_ID}-{PARENT_ID[:-1]}-01",
        f"00-{'0' * 32}-{PARENT_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE_ID}-{PARENT_ID}-0g",  # flags not hex
        f"00-{TRACE_ID}-{PARENT_ID}-1",
        f"ff-{TRACE_ID}-{PARENT_ID}-01",  # version ff is invalid
        f"0x-{TRACE_ID}-{PARENT_ID}-01",
        f"00-{TRACE_ID}-{PARENT_ID}-01-extra",  # version 00 has exactly four fields
        f"00_{TRACE_ID}_{PARENT_ID}_01",
        f"00-{TRACE_ID}-{PARENT_ID}-01\n",
        f"00-{TRACE_ID}-{PARENT_ID}-01\x00",
    ],
)
def test_un_traceparent_invalido_no_es_contexto(valor):
    assert TraceContext.leer(valor) is None


def test_una_version_posterior_se_lee_hasta_donde_llega_la_00_y_se_escribe_como_00():
    traza = TraceContext.leer(f"cc-{TRACE_ID}-{PARENT_ID}-09-lo-que-venga")
    assert traza == TraceContext(TRACE_ID, PARENT_ID, "09")
    assert traza.traceparent == f"00-{TRACE_ID}-{PARENT_ID}-09"
    assert TraceContext.leer(f"cc-{TRACE_ID}-{PARENT_ID}-09") is not None
    assert TraceContext.leer(f"cc-{TRACE_ID}-{PARENT_ID}-09x") is None  # more only after a "-"


def test_los_espacios_alrededor_se_toleran():
    assert TraceContext.leer(f" \t{VALIDO}\t ") == TraceContext(TRACE_ID, PARENT_ID, "01")


@pytest.mark.parametrize(
    ("tracestate", "queda"),
    [
        ("congo=t61rcWkgMzE", "congo=t61rcWkgMzE"),
        ("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        ("tenant@sistema=1,,a=b", "tenant@sistema=1,a=b"),  # empty members are dropped
        ("", None),
        (" , ", None),
        ("Mayus=1", None),  # keys are lowercase
        ("a=1,a=2", None),  # a key at most once
        ("a=con=igual", None),
        ("a=", None),
        ("a=fin ", "a=fin"),  # spaces around members are no part of them
        ("a=dos palabras", "a=dos palabras"),
        ("a=\x01", None),  # printable ASCII only
        (",".join(f"k{i}=v" for i in range(33)), None),  # 32 members at most
        ("a=" + "v" * 255, "a=" + "v" * 255),
        ("a=" + "v" * 257, None),
        (",".join(f"k{i:02}=" + "v" * 50 for i in range(10)), None),  # longer than 512
    ],
)
def test_tracestate_solo_si_es_valido(tracestate, queda):
    traza = TraceContext.leer(VALIDO, tracestate)
    assert traza is not None  # an invalid tracestate never costs the traceparent
    assert traza.tracestate == queda


def test_de_las_propiedades_de_un_mensaje():
    assert TraceContext.de_propiedades({}) is None
    assert TraceContext.de_propiedades({"tracestate": "a=b"}) is None  # no traceparent, no context
    assert TraceContext.de_propiedades({"traceparent": "basura"}) is None
    assert TraceContext.de_propiedades({"traceparent": VALIDO, "tracestate": "a=b", "x": "y"}) == TraceContext(
        TRACE_ID, PARENT_ID, "01", "a=b"
    )


HEX = "0123456789abcdef"
contextos = st.builds(
    TraceContext,
    st.text(HEX, min_size=32, max_size=32).filter(lambda t: t != "0" * 32),
    st.text(HEX, min_size=16, max_size=16).filter(lambda p: p != "0" * 16),
    st.text(HEX, min_size=2, max_size=2),
)


@given(contextos)
def test_lo_que_se_escribe_se_lee_igual(traza):
    assert TraceContext.leer(traza.traceparent) == traza
    assert re.fullmatch(PATRON_TRACEPARENT, traza.traceparent)


casi_traceparents = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda v, t, p, f: f"{v}-{t}-{p}-{f}",
        st.sampled_from(["00", "01", "ff", "0A"]),
        st.one_of(st.text("0a", min_size=31, max_size=33), st.just("0" * 32)),
        st.one_of(st.text("0b", min_size=15, max_size=17), st.just("0" * 16)),
        st.text("01g", min_size=1, max_size=3),
    ),
)


@given(casi_traceparents)
def test_el_patron_del_contrato_dice_lo_mismo_que_el_lector_para_la_version_00(valor):
    """What the contract's schema accepts is what the service reads (for version 00, the only one
    the schema describes): never an exception, whatever the text."""
    traza = TraceContext.leer(valor)
    if valor.startswith("00-"):
        assert (traza is not None) == bool(re.fullmatch(PATRON_TRACEPARENT, valor))
    if traza is not None:
        assert re.fullmatch(PATRON_TRACEPARENT, traza.traceparent)
