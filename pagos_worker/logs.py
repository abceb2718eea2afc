"""structlog set-up: JSON lines (default) or a readable console. Our own log calls take structlog's
native path straight to stdout (a few µs a line: one is written per payment); stdlib logs (aiohttp,
alembic) go through a formatter that renders them the same way. Values under secret-looking keys are
masked, and so is every secret the settings hold wherever it shows up in a line — a message, a
value, a formatted traceback (`configure(..., secretos=...)`)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

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


class _OcultarValores:
    """Replaces each known secret value by `***` in every string of the line. Runs after the
    traceback is formatted, so that a secret in an exception's text (a DSN in a driver's message, a
    key in a library's repr) is masked there too."""

    def __init__(self, secretos: tuple[str, ...]) -> None:
        self._secretos = secretos

    def __call__(self, _: object, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in event.items():
            if isinstance(value, str):
                for secreto in self._secretos:
                    if secreto in value:
                        value = value.replace(secreto, "***")  # noqa: PLW2901 - written back below
                event[key] = value
        return event


def secretos_de(*valores: str | None) -> tuple[str, ...]:
    """The values worth scrubbing: set, stripped, and long enough not to hit ordinary words."""
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
    # After the traceback is formatted; without secrets, not in the chain at all (a line per payment).
    ocultar: list[Any] = [_OcultarValores(secretos)] if secretos else []
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, *ocultar, renderer],
        logger_factory=structlog.PrintLoggerFactory(out)
        if console
        else structlog.BytesLoggerFactory(stream.buffer if stream else None),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    stdlib_renderer: Any = (
        renderer if console else structlog.processors.JSONRenderer(serializer=lambda o, **_: _dumps(o).decode())
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                *ocultar,
                stdlib_renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def redact(url: str) -> str:
    """A URL fit for a log line or a banner: its password, if any, replaced by `***`."""
    partes = urlsplit(url)
    if partes.password is None:
        return url
    usuario = f"{partes.username}:***@" if partes.username is not None else ":***@"
    host = partes.netloc.rpartition("@")[2]
    return urlunsplit(partes._replace(netloc=usuario + host))
