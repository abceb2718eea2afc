"""structlog set-up: JSON lines (default) or a readable console. Our own log calls take structlog's
native path straight to stdout (a few µs a line: one is written per payment); stdlib logs (aiohttp,
alembic) go through a formatter that renders them the same way. Values under secret-looking keys are
masked, and so is every secret the settings hold wherever it shows up in a line (`configure(...,
secretos=...)`): the rendered line is masked, so a message, a nested value, an object's repr or a
formatted traceback cannot carry one out."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit, urlunsplit

import orjson
import structlog

_SECRET_KEYS = ("secret", "password", "authorization", "api_key", "token")
_ES_SECRETO: dict[str, bool] = {}  # per key name: the same few names come again and again
_MIN_SECRETO = 6  # shorter values (a test password "x") would mask ordinary words as well


def _mask_secrets(_: object, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in event:
        secreto = _ES_SECRETO.get(key)
        if secreto is None:
            secreto = _ES_SECRETO[key] = any(s in key.lower() for s in _SECRET_KEYS)
        if secreto:
            event[key] = "***"
    return event


class _Enmascarado:
    """A renderer whose every line has each known secret replaced by `***`: the line as written, so
    whatever carried the secret (a message, a nested value, an object's repr, a key, a formatted
    traceback) is masked. JSON lines are bytes, console lines str; a secret is looked for as given
    and as JSON and `repr` escape it."""

    def __init__(self, renderer: Any, secretos: tuple[str, ...]) -> None:  # noqa: ANN401 - a structlog renderer
        self._renderer = renderer
        # Longest first: a secret inside another is not left half visible.
        formas = dict.fromkeys(
            forma
            for secreto in sorted(secretos, key=len, reverse=True)
            for forma in (secreto, orjson.dumps(secreto).decode()[1:-1], repr(secreto)[1:-1])
        )
        self._texto = tuple(formas)
        self._bytes = tuple(f.encode() for f in formas)

    def __call__(self, logger: object, name: str, event: MutableMapping[str, Any]) -> str | bytes:
        linea: str | bytes = self._renderer(logger, name, event)
        if isinstance(linea, str):
            return self.en(linea)
        for forma in self._bytes:
            if forma in linea:
                linea = linea.replace(forma, b"***")
        return linea

    def en(self, texto: str) -> str:
        """`texto` with the secrets masked (console lines, and what is printed beside the logs)."""
        for forma in self._texto:
            if forma in texto:
                texto = texto.replace(forma, "***")
        return texto


_enmascarado: _Enmascarado | None = None


def enmascarar(texto: str) -> str:
    """`texto` with every secret the logs were configured with replaced by `***`."""
    return _enmascarado.en(texto) if _enmascarado is not None else texto


def secretos_de(*valores: str | None) -> tuple[str, ...]:
    """The values worth masking: set, stripped, and long enough not to hit ordinary words."""
    return tuple(dict.fromkeys(v.strip() for v in valores if v and len(v.strip()) >= _MIN_SECRETO))


class _Instante:
    """ISO-8601 UTC timestamps, the seconds part formatted once a second (a line per payment)."""

    def __init__(self) -> None:
        self._segundo = -1
        self._prefijo = ""

    def __call__(self, _: object, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        ahora = time.time()
        segundo = int(ahora)
        if segundo != self._segundo:
            self._segundo, self._prefijo = segundo, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(segundo))
        event["timestamp"] = f"{self._prefijo}.{int((ahora - segundo) * 1_000_000):06d}Z"
        return event


def _dumps(obj: Any, default: Any = None) -> bytes:  # noqa: ANN401
    return orjson.dumps(obj, default=default or str)


def configure(
    fmt: str = "json", level: str = "INFO", *, stream: TextIO | None = None, secretos: tuple[str, ...] = ()
) -> None:
    """`stream`: where lines go, stdout unless told (the operators' commands keep stdout for their
    own output and log to stderr). `secretos`: values never to be written (see `secretos_de`)."""
    out = stream or sys.stdout
    # Context is passed explicitly (id_pago, event_id, message_id...), except a payment's trace: the
    # worker and the handler bind `trace_id` (and `span_id`, with a tracer) for the lines logged
    # while it is handled (structlog's contextvars; under a microsecond a line when none is bound).
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _Instante(),
        _mask_secrets,
    ]
    console = fmt == "console"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=out.isatty())
        if console
        else structlog.processors.JSONRenderer(serializer=_dumps)
    )
    global _enmascarado  # noqa: PLW0603 - one logging set-up per process
    # The rendered line is masked; without secrets nothing is added (a line per payment).
    _enmascarado = _Enmascarado(renderer, secretos) if secretos else None
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, _enmascarado or renderer],
        logger_factory=structlog.PrintLoggerFactory(out)
        if console
        else structlog.BytesLoggerFactory(stream.buffer if stream else None),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    stdlib_renderer: Any = (
        renderer if console else structlog.processors.JSONRenderer(serializer=lambda o, **_: _dumps(o).decode())
    )
    if secretos:
        stdlib_renderer = _Enmascarado(stdlib_renderer, secretos)
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                stdlib_renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "alembic.runtime.migration", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _es_clave_secreta(nombre: str) -> bool:
    return any(s in nombre.lower() for s in _SECRET_KEYS)


def redact(url: str) -> str:
    """A URL fit for a log line or a banner: its password and any secret-looking query parameter
    (`?password=`), if any, replaced by `***`."""
    partes = urlsplit(url)
    if partes.password is not None:
        usuario = f"{partes.username}:***@" if partes.username is not None else ":***@"
        partes = partes._replace(netloc=usuario + partes.netloc.rpartition("@")[2])
    if partes.query:  # each parameter as written, but a secret's value
        piezas = [p.partition("=") for p in partes.query.split("&")]
        query = "&".join(f"{k}=***" if _es_clave_secreta(unquote(k)) else f"{k}{igual}{v}" for k, igual, v in piezas)
        partes = partes._replace(query=query)
    return urlunsplit(partes)
