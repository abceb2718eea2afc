"""The log lines never carry a secret: under a secret-looking key, or anywhere in a line (a message,
a value, a formatted traceback) when the settings hold it."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
import structlog

from pagos_worker import logs
from pagos_worker.config import Settings

CLAVE = "sk_live_51Hx7QpZZZsecretoDeVerdad"
CLAVE_BD = "contrasena-de-la-base"


@pytest.fixture
def lineas() -> Iterator[io.BytesIO]:
    """The JSON lines written while the test runs (structlog and stdlib logging restored after)."""
    raiz = logging.getLogger()
    handlers, nivel = raiz.handlers[:], raiz.level
    salida = io.BytesIO()
    logs.configure("json", "INFO", stream=io.TextIOWrapper(salida), secretos=logs.secretos_de(CLAVE, CLAVE_BD))
    try:
        yield salida
    finally:
        structlog.reset_defaults()
        raiz.handlers[:], raiz.level = handlers, nivel


def _falla(exc: Exception) -> None:
    raise exc


def _leidas(salida: io.BytesIO) -> list[dict[str, object]]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return [orjson.loads(linea) for linea in salida.getvalue().splitlines() if linea.strip()]


def test_un_secreto_en_el_texto_de_una_excepcion_no_se_escribe(lineas):
    log = structlog.get_logger("prueba")
    try:
        _falla(RuntimeError(f"la biblioteca repitió la cabecera: Authorization: Bearer {CLAVE}"))
    except RuntimeError:
        log.exception("fallo", detalle=f"dsn postgresql://pagos:{CLAVE_BD}@db/pagos")
    [linea] = _leidas(lineas)
    texto = orjson.dumps(linea).decode()
    assert CLAVE not in texto
    assert CLAVE_BD not in texto
    assert "Bearer ***" in str(linea["exception"])  # the traceback is there, the key masked in it
    assert linea["detalle"] == "dsn postgresql://pagos:***@db/pagos"


def test_las_lineas_de_bibliotecas_tambien_se_limpian(lineas):
    try:
        _falla(ConnectionError(f"password authentication failed: {CLAVE_BD}"))
    except ConnectionError:
        logging.getLogger("asyncpg").exception("conexión rechazada con %s", CLAVE)
    [linea] = _leidas(lineas)
    texto = orjson.dumps(linea).decode()
    assert CLAVE not in texto
    assert CLAVE_BD not in texto
    assert "conexión rechazada con ***" in texto


def test_una_clave_con_nombre_de_secreto_se_oculta_siempre(lineas):
    structlog.get_logger("prueba").info("ajuste", api_key="cualquier-valor", otro="visible")
    [linea] = _leidas(lineas)
    assert (linea["api_key"], linea["otro"]) == ("***", "visible")


def test_los_valores_cortos_o_vacios_no_se_toman_por_secretos():
    """A one-letter password would mask every "x" in every line."""
    assert logs.secretos_de("x", "", None, "  ", f"  {CLAVE} ", CLAVE) == (CLAVE,)


def test_los_ajustes_dicen_sus_secretos(monkeypatch):
    monkeypatch.setenv("PAGOS_DATABASE_URL", f"postgresql+asyncpg://pagos:{CLAVE_BD}@db:5432/pagos")
    monkeypatch.setenv("PAGOS_STRIPE_SECRET_KEY", CLAVE)
    monkeypatch.setenv("PAGOS_HTTP_TOKENS", "token-de-operador-1, token-de-operador-2")
    secretos = Settings().secretos()
    assert {CLAVE, CLAVE_BD, "token-de-operador-1", "token-de-operador-2"} <= set(secretos)
