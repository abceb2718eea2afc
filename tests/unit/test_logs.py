"""The log lines never carry a secret: under a secret-looking key, or anywhere in a line (a message,
a value, a formatted traceback) when the settings hold it."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator

import orjson
import pytest
import structlog

from pagos_worker import logs
from pagos_worker.config import Settings
from pagos_worker.entrypoints import cli, operador_salida

CLAVE = "sk_live_51Hx7QpZZZsecretoDeVerdad"
CLAVE_BD = "contrasena-de-la-base"


_ABIERTAS: list[io.TextIOWrapper] = []  # a wrapper collected would close the buffer under it


def configurar(*secretos: str) -> io.BytesIO:
    """JSON logs into a buffer, masking `secretos`."""
    salida = io.BytesIO()
    _ABIERTAS.append(io.TextIOWrapper(salida))
    logs.configure("json", "INFO", stream=_ABIERTAS[-1], secretos=logs.secretos_de(*secretos))
    return salida


@pytest.fixture
def lineas() -> Iterator[io.BytesIO]:
    """The JSON lines written while the test runs (structlog and stdlib logging restored after)."""
    raiz = logging.getLogger()
    handlers, nivel = raiz.handlers[:], raiz.level
    try:
        yield configurar(CLAVE, CLAVE_BD)
    finally:
        structlog.reset_defaults()
        raiz.handlers[:], raiz.level = handlers, nivel
        _ABIERTAS.clear()


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


class _ConRepr:
    def __repr__(self) -> str:
        return f"<cliente clave={CLAVE}>"


@pytest.mark.usefixtures("lineas")
def test_ningun_valor_lleva_un_secreto_fuera_por_anidado_que_vaya():
    """Masked in the line as written: nested, bytes, an object's repr, a key, JSON-escaped."""
    raro = 'pa"ss\\w0rd-con-comillas'
    lineas = configurar(CLAVE, raro)
    structlog.get_logger("prueba").info(
        "anidado",
        datos={"cabeceras": [("Authorization", f"Bearer {CLAVE}")], CLAVE: 1},
        crudo=CLAVE.encode(),
        objeto=_ConRepr(),
        comillas=f"dsn con {raro}",
    )
    texto = lineas.getvalue().decode()
    assert CLAVE not in texto
    assert "w0rd-con-comillas" not in texto
    assert texto.count("***") >= 5


@pytest.mark.usefixtures("lineas")
def test_un_secreto_dentro_de_otro_no_queda_a_medias():
    lineas = configurar(CLAVE[:12], CLAVE)
    structlog.get_logger("prueba").info("dos", valor=CLAVE)
    [linea] = _leidas(lineas)
    assert linea["valor"] == "***"


def test_la_consola_tambien_se_limpia():
    salida = io.StringIO()
    raiz = logging.getLogger()
    handlers, nivel = raiz.handlers[:], raiz.level
    try:
        logs.configure("console", "INFO", stream=salida, secretos=logs.secretos_de(CLAVE))
        try:
            _falla(RuntimeError(f"clave {CLAVE}"))
        except RuntimeError:
            structlog.get_logger("prueba").exception("fallo", valor=[CLAVE])
        logging.getLogger("aiohttp").warning("cabecera %s", CLAVE)
    finally:
        structlog.reset_defaults()
        raiz.handlers[:], raiz.level = handlers, nivel
    assert "RuntimeError: clave ***" in salida.getvalue()
    assert "cabecera ***" in salida.getvalue()
    assert CLAVE not in salida.getvalue()


def test_los_errores_del_operador_se_limpian(lineas, capsys):
    operador_salida.error(f"could not be done: OSError: connect to postgresql://pagos:{CLAVE_BD}@db failed")
    assert (
        capsys.readouterr().err.strip()
        == "pagos-worker: could not be done: OSError: connect to postgresql://pagos:***@db failed"
    )


def test_la_cli_le_da_sus_secretos_a_los_logs(monkeypatch):
    """The wiring: `pagos-worker` configures its logs with every secret of its settings."""
    monkeypatch.setenv("PAGOS_DATABASE_URL", f"postgresql+asyncpg://pagos:{CLAVE_BD}@127.0.0.1:1/pagos")
    monkeypatch.setenv("PAGOS_STRIPE_SECRET_KEY", CLAVE)
    dados: dict[str, object] = {}
    monkeypatch.setattr(logs, "configure", lambda *_, **kw: dados.update(kw))
    monkeypatch.setattr(cli, "_run_loop", lambda corrutina: corrutina.close() or 0)
    assert cli.main(["pagos", "ver", str(uuid.uuid4())]) == 0
    assert {CLAVE, CLAVE_BD} <= set(dados["secretos"])


def test_los_valores_cortos_o_vacios_no_se_toman_por_secretos():
    """A one-letter password would mask every "x" in every line."""
    assert logs.secretos_de("x", "", None, "  ", f"  {CLAVE} ", CLAVE) == (CLAVE,)


def test_los_ajustes_dicen_sus_secretos(monkeypatch, tmp_path):
    monkeypatch.setenv("PAGOS_DATABASE_URL", "postgresql+asyncpg://pagos:p%40ss-de-la-base@db:5432/pagos")
    monkeypatch.setenv("PAGOS_STRIPE_SECRET_KEY", CLAVE)
    monkeypatch.setenv("PAGOS_HTTP_TOKENS", "token-de-operador-1, token-de-operador-2")
    monkeypatch.setenv("PAGOS_PULSAR_TOKEN", "jwt.de.pulsar")
    secretos = set(Settings().secretos())
    assert {CLAVE, "p%40ss-de-la-base", "p@ss-de-la-base", "jwt.de.pulsar"} <= secretos  # as written and decoded
    assert {"token-de-operador-1", "token-de-operador-2"} <= secretos
    archivo = tmp_path / "token"
    archivo.write_text("jwt.del.archivo\n")
    monkeypatch.delenv("PAGOS_PULSAR_TOKEN")
    monkeypatch.setenv("PAGOS_PULSAR_TOKEN_FILE", str(archivo))
    assert "jwt.del.archivo" in logs.secretos_de(*Settings().secretos())


def test_una_clave_en_la_query_de_una_url_tampoco_se_escribe(monkeypatch):
    """libpq and asyncpg take `?password=`: it is as secret as the user:password part."""
    url = "postgresql+asyncpg://pagos@db:5432/pagos?password=clave-en-la-query&sslmode=require"
    assert logs.redact(url) == "postgresql+asyncpg://pagos@db:5432/pagos?password=***&sslmode=require"
    monkeypatch.setenv("PAGOS_DATABASE_URL", url)
    monkeypatch.setenv("PAGOS_PULSAR_URL", "pulsar+ssl://usuario:clave-del-broker@b:6651")
    secretos = set(Settings(_env_file=None).secretos())
    assert {"clave-en-la-query", "clave-del-broker"} <= secretos
    monkeypatch.setenv("PAGOS_DATABASE_URL", "postgresql+asyncpg://pagos@db/pagos?password=p%40ss%2Bw")
    assert {"p%40ss%2Bw", "p@ss+w"} <= set(Settings(_env_file=None).secretos())  # as written and decoded
    assert logs.redact("pulsar+ssl://usuario:clave-del-broker@b:6651") == "pulsar+ssl://usuario:***@b:6651"
