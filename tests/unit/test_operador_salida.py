"""What the operators' commands print, piped (not a terminal: scripts, transcripts): nothing cut,
amounts as the rest of the service writes them, and one language, the domain's Spanish, for
whatever an operator reads (setting names, codes and states stay as they are)."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pagos_worker.application.ports.operador import Resolucion
from pagos_worker.application.ports.pasarela import TransferenciaHallada
from pagos_worker.application.queries import Atencion, VistaPago
from pagos_worker.domain.pago import EstadoPago
from pagos_worker.entrypoints import cli
from pagos_worker.entrypoints import operador_salida as salida


def _vista(**cambios: object) -> VistaPago:
    campos: dict[str, object] = {
        "id": uuid.uuid4(), "id_afiliado": "afiliado_123", "monto": Decimal("42.00"), "moneda": "USD",
        "estado": "PROCESANDO", "referencia_pago": None, "fecha_creacion": datetime.now(UTC),
        "fecha_procesamiento": None, "mensaje_error": None, "intentos": 1, "requiere_atencion": True,
        "ultimo_error": "x", "marcado": True,
    }  # fmt: skip
    return VistaPago(**{**campos, **cambios})  # type: ignore[arg-type]


def test_una_tabla_por_una_tuberia_no_se_corta(capsys):
    largo = "la pasarela no contestó: " + "muy " * 80 + "largo"
    salida.atencion(Atencion([_vista(ultimo_error=largo)], []), como_json=False)
    out = capsys.readouterr().out
    assert largo in out  # whole, on one line
    assert "…" not in out
    assert all(linea == linea.rstrip() for linea in out.splitlines())  # no title padded out to the width


def test_los_montos_de_la_pasarela_se_escriben_como_los_del_pago(capsys):
    hallada = TransferenciaHallada("tr_1", unidades_menores=4200, moneda="usd", destino="acct_af_1")
    resolucion = Resolucion("ana", datetime.now(UTC), "visto en Stripe", EstadoPago.EXITOSO, (hallada,))
    salida.pago(_vista(estado="EXITOSO", resolucion=resolucion), como_json=False)
    out = capsys.readouterr().out
    assert "tr_1 (42.00 USD, acct_af_1)" in out
    assert "unidades menores" not in out
    assert "42.00" in out


@pytest.fixture
def sin_ajustes(monkeypatch: pytest.MonkeyPatch) -> None:
    for nombre in list(os.environ):
        if nombre.startswith("PAGOS_"):
            monkeypatch.delenv(nombre)


def test_los_errores_de_los_comandos_del_operador_son_en_espanol(sin_ajustes, capsys):
    assert cli.main(["pagos", "ver", str(uuid.uuid4())]) == 2
    err = capsys.readouterr().err
    assert "faltan ajustes: PAGOS_DATABASE_URL" in err
    assert "missing" not in err
    assert cli.main(["eventos"]) == 2
    assert "faltan ajustes: PAGOS_PULSAR_URL" in capsys.readouterr().err
    for argumentos, esperado in (
        (["pagos", "atencion", "--mas-de", "ayer"], "no es una duración"),
        (["pagos", "ver", "123"], "no es un UUID"),
        (["dlq", "listar", "--desde", "ayer"], "no es una fecha ISO 8601 ni una duración"),
        (["pagos", "resolver", str(uuid.uuid4()), "--motivo", " "], "no puede estar vacío"),
    ):
        with pytest.raises(SystemExit) as fin:
            cli.main(argumentos)
        assert fin.value.code == 2
        assert esperado in capsys.readouterr().err


def test_la_ayuda_de_los_comandos_del_operador_es_en_espanol(capsys):
    for argumentos in (["pagos", "--help"], ["dlq", "reenviar", "--help"], ["eventos", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(argumentos)
        out = capsys.readouterr().out
        assert any(palabra in out for palabra in ("pago", "cartas", "eventos")), out
        for ingles in ("payment", "dead letter", "only this", "the events"):
            assert ingles not in out, (argumentos, ingles)


def test_los_comandos_del_operador_no_escriben_lineas_de_log_salvo_que_se_pidan(sin_ajustes, monkeypatch, capsys):
    import structlog  # noqa: PLC0415

    # The action itself is recorded in PostgreSQL (the resolution) and said by the command's own
    # output: a JSON warning line beside it, for every action, is noise.
    assert cli.main(["pagos", "ver", str(uuid.uuid4())]) == 2
    capsys.readouterr()
    structlog.get_logger("prueba").warning("operador.pago_resuelto", id_pago="x")
    assert capsys.readouterr() == ("", "")
    monkeypatch.setenv("PAGOS_LOG_LEVEL", "INFO")  # asked for: shown, on stderr
    assert cli.main(["pagos", "ver", str(uuid.uuid4())]) == 2
    capsys.readouterr()
    structlog.get_logger("prueba").warning("operador.pago_resuelto", id_pago="x")
    salida = capsys.readouterr()
    assert salida.out == ""
    assert "operador.pago_resuelto" in salida.err


def test_un_evento_raro_no_corta_los_eventos_ni_el_terminal():
    """An integer past 64 bits (orjson refuses it) still prints as JSON; a control character in an
    event's text is shown escaped, not sent to the operator's terminal."""
    from pagos_worker.entrypoints import eventos_salida  # noqa: PLC0415

    assert json.loads(eventos_salida._json_de({"n": 2**70})) == {"n": 2**70}
    assert eventos_salida._sin_controles("pago\x1b[2Jrechazado\n") == "pago\\x1b[2Jrechazado\\n"
