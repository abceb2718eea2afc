"""TLS to PostgreSQL as the deployment guide writes it (`?sslmode=verify-full&sslrootcert=…` in
PAGOS_DATABASE_URL), against a server of its own with a certificate: every kind of connection the
service opens — the engine's pool, and asyncpg's own for LISTEN and the reconciliation — encrypts and
checks the server; a certificate from another CA is refused; plain `sslmode=require` against a
server without TLS is refused too."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from pagos_dev.embedded.postgres import EmbeddedPostgres
from pagos_worker.adapters.postgres.database import asyncpg_dsn, create_engine
from tests.conftest import free_port

# The wheel's PostgreSQL is built without TLS: the system's, where there is one (Debian's package).
SISTEMA = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)), None)
pytestmark = pytest.mark.integration
con_servidor_tls = pytest.mark.skipif(
    SISTEMA is None or shutil.which("openssl") is None,
    reason="needs a system PostgreSQL built with TLS (/usr/lib/postgresql/*/bin) and openssl",
)


def _certificado(carpeta: Path, nombre: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA): (certificate, key)."""
    cert, key = carpeta / f"{nombre}.crt", carpeta / f"{nombre}.key"
    subprocess.run(  # noqa: S603 - openssl from PATH, fixed arguments
        [shutil.which("openssl") or "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
async def servidor_tls(tmp_path) -> AsyncIterator[tuple[str, Path]]:
    """(URL, CA file) of a PostgreSQL that speaks TLS with a certificate for 127.0.0.1."""
    assert SISTEMA is not None
    servidor = EmbeddedPostgres(tmp_path / "pg", port=free_port(), binarios=SISTEMA.parent)
    await servidor.start()
    try:
        cert, key = _certificado(tmp_path, "servidor")
        destino = servidor.pgdata
        for archivo in (cert, key):
            shutil.copy(archivo, destino / archivo.name)
            shutil.chown(destino / archivo.name, *_dueno(destino))
            (destino / archivo.name).chmod(0o600)
        conn = await asyncpg.connect(asyncpg_dsn(servidor.url()), ssl=False)
        try:
            await conn.execute("ALTER SYSTEM SET ssl_cert_file = 'servidor.crt'")
            await conn.execute("ALTER SYSTEM SET ssl_key_file = 'servidor.key'")
            await conn.execute("ALTER SYSTEM SET ssl = on")
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()
        await asyncio.sleep(0.5)  # the reload is asynchronous
        yield servidor.url(), cert
    finally:
        await servidor.stop()


def _dueno(ruta: Path) -> tuple[int, int]:
    estado = ruta.stat()
    return estado.st_uid, estado.st_gid


async def _cifrada_por_el_motor(url: str) -> bool:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return bool(await conn.scalar(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")))
    finally:
        await engine.dispose()


async def _cifrada_por_asyncpg(url: str) -> bool:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return bool(await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))
    finally:
        await conn.close()


@con_servidor_tls
async def test_verify_full_cifra_y_comprueba_en_cada_conexion(servidor_tls, tmp_path):
    url, ca = servidor_tls
    buena = f"{url}?sslmode=verify-full&sslrootcert={ca}"
    assert await _cifrada_por_el_motor(buena)
    assert await _cifrada_por_asyncpg(buena)
    assert await _cifrada_por_el_motor(f"{url}?ssl=verify-full&sslrootcert={ca}")  # SQLAlchemy's spelling

    otra, _ = _certificado(tmp_path, "otra")
    mala = f"{url}?sslmode=verify-full&sslrootcert={otra}"
    for conectar in (_cifrada_por_el_motor, _cifrada_por_asyncpg):
        with pytest.raises(OSError, match="certificate verify failed"):
            await conectar(mala)


async def test_require_sin_tls_en_el_servidor_no_conecta(postgres_server):
    url = f"{postgres_server}?sslmode=require"
    for conectar in (_cifrada_por_el_motor, _cifrada_por_asyncpg):
        with pytest.raises(ConnectionError, match="SSL"):
            await conectar(url)
    assert not await _cifrada_por_el_motor(f"{postgres_server}?sslmode=disable")
