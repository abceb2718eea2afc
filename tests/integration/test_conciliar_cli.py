"""`pagos-worker conciliar` as an operator runs it (a process of its own, the service's settings):
its table, --json, --csv, and its exit status: 0 all coincide, 1 differences, 2 could not run."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from tests.conftest import free_port
from tests.integration.conciliacion_helpers import SECRETO, T0, T1, escena

pytestmark = pytest.mark.integration
VENTANA = ("--desde", T0.date().isoformat(), "--hasta", T1.isoformat().replace("+00:00", "Z"))


def _env(database_url: str, api_base: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ, "PAGOS_DATABASE_URL": database_url, "PAGOS_STRIPE_API_BASE": api_base,
        "PAGOS_STRIPE_SECRET_KEY": SECRETO, "PAGOS_STRIPE_DESTINATION_TEMPLATE": "acct_{id_afiliado}",
        "PAGOS_CONCILIACION_MAX_WAIT_SECONDS": "1", "PAGOS_STRIPE_TIMEOUT_SECONDS": "1", **extra,
    }  # fmt: skip


async def _cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proceso = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pagos_worker", "conciliar", *args, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proceso.communicate(), 60)
    return proceso.returncode or 0, out.decode(), err.decode()


async def test_estados_de_salida_tabla_json_y_csv(engine, database_url, tmp_path):
    async with escena(engine, database_url) as e:
        await e.pagado()
        env = _env(database_url, e.url)
        rc, out, err = await _cli(env, *VENTANA, "--json")
        assert rc == 0, err
        informe = json.loads(out)
        assert informe["conteos"]["coincide"] == 1
        assert informe["diferencias"] == []
        assert informe["desde"] == "2026-11-30T00:00:00.000Z"  # the contract's form of a time

        externo, tr = await e.pagado(monto=5000)
        await e.reversal(tr, 100)  # from the dashboard
        archivo = tmp_path / "diferencias.csv"
        rc, out, err = await _cli(env, *VENTANA, "--csv", str(archivo))
        assert rc == 1, err
        assert "reverso_externo" in out
        assert "HAY DIFERENCIAS" in out
        with archivo.open(encoding="utf-8") as f:
            [fila] = list(csv.DictReader(f))
        assert (fila["clase"], fila["id_pago"], fila["pasarela_unidades_menores"]) == (
            "reverso_externo", str(externo), "100"
        )  # fmt: skip


async def test_no_pudo_conciliar_es_2(engine, database_url):
    async with escena(engine, database_url) as e:
        env = _env(database_url, e.url)
        rc, _, err = await _cli(env, "--hasta", "2999-01-01")
        assert rc == 2
        assert "margen de asentamiento" in err
        rc, _, err = await _cli({k: v for k, v in env.items() if k != "PAGOS_STRIPE_API_BASE"}, *VENTANA)
        assert rc == 2
        assert "PAGOS_STRIPE_API_BASE" in err
        rc, _, err = await _cli(env, "--desde", "ayer")
        assert rc == 2

        await e.pagado()
        rc, _, err = await _cli(_env(database_url, f"http://127.0.0.1:{free_port()}"), *VENTANA)
        assert rc == 2, err
        assert "Stripe sin responder" in err
        async with engine.connect() as conn:
            estado = await conn.scalar(text("SELECT estado FROM conciliaciones ORDER BY id DESC LIMIT 1"))
        assert estado == "FALLIDA"
