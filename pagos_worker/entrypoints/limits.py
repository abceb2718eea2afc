"""The process's open-file limit: each gateway call in flight holds a socket, so a replica with
thousands of payments in flight needs thousands of descriptors, more than a default soft limit."""

from __future__ import annotations

import resource

import structlog

log = structlog.get_logger(__name__)

# Beyond the gateway's sockets: the database pool and group-commit connections, the broker's,
# the HTTP server's, logs, the interpreter's own files.
MARGEN = 256


def elevar_limite_de_descriptores(conexiones_pasarela: int, conexiones_db: int) -> tuple[int, int]:
    """Raise the soft limit as far as the hard limit allows; warn when the configured concurrency
    still cannot fit. Returns the (soft, needed) pair."""
    necesarios = conexiones_pasarela + conexiones_db + MARGEN
    blando, duro = resource.getrlimit(resource.RLIMIT_NOFILE)
    objetivo = duro if duro != resource.RLIM_INFINITY else max(blando, necesarios)
    if objetivo > blando:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (objetivo, duro))
            blando = objetivo
        except (ValueError, OSError) as exc:
            log.warning("descriptores.no_elevado", blando=blando, duro=duro, error=str(exc))
    if blando < necesarios:
        log.warning(
            "descriptores.insuficientes",
            limite=blando,
            necesarios=necesarios,
            consejo="raise the hard limit (ulimit -Hn, LimitNOFILE, the container's nofile) "
            "or lower PAGOS_PASARELA_CONCURRENCY",
        )
    return blando, necesarios
