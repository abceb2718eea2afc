"""Drift planted in the simulator for the reconciliation's tests (issue 26): `DELETE
/_simulador/transfers/{id}` (a transfer gone from the ledger, its reversals, balance and keys with
it) and `pagos-dev deriva transfer|reverso|borrar` run as a process against a simulator in this loop."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from pagos_dev import cli
from tests.simulador_helpers import AUTH, form, pedir, simulador_en_marcha

pytestmark = pytest.mark.integration
RAIZ = Path(__file__).resolve().parents[2]


async def _borrar(sim: Any, id_transfer: str) -> tuple[int, Any]:
    async with sim.http.delete(f"{sim.url}/_simulador/transfers/{id_transfer}") as resp:
        return resp.status, await resp.json()


async def _saldo(sim: Any, cuenta: str, moneda: str = "usd") -> int:
    async with sim.http.get(f"{sim.url}/_simulador/saldos", params={"cuenta": cuenta}) as resp:
        return next((s["saldo"] for s in (await resp.json())["saldos"] if s["moneda"] == moneda), 0)


async def test_borrar_un_transfer_lo_quita_con_sus_reversos_su_saldo_y_sus_claves(sim):
    status, creado, _ = await pedir(sim, "POST", "/v1/transfers", data=form("acct_1", "1000", transfer_group="p1"),
                                 headers={"Idempotency-Key": "crear-p1"})  # fmt: skip
    assert status == 200
    id_transfer = creado["id"]
    otro = (await pedir(sim, "POST", "/v1/transfers", data=form("acct_1", "50", transfer_group="p2")))[1]["id"]
    ruta = f"/v1/transfers/{id_transfer}/reversals"
    r1 = (await pedir(sim, "POST", ruta, data={"amount": "300"}, headers={"Idempotency-Key": "rev-1"}))[1]["id"]
    r2 = (await pedir(sim, "POST", ruta, data={"amount": "100"}))[1]["id"]
    assert await _saldo(sim, "acct_1") == 1050 - 400

    status, hecho = await _borrar(sim, id_transfer)
    assert (status, hecho) == (200, {"id": id_transfer, "deleted": True, "reversos": [r1, r2], "claves": 1,
                                     "saldo": {"cuenta": "acct_1", "moneda": "usd", "saldo": 50}})  # fmt: skip
    assert await _saldo(sim, "acct_1") == 50  # as if it had never been made: the other transfer's
    for metodo, ruta_, datos in (("GET", f"/v1/transfers/{id_transfer}", None), ("GET", ruta, None),
                                 ("GET", f"{ruta}/{r1}", None), ("POST", ruta, {"amount": "1"})):  # fmt: skip
        status, cuerpo, _ = await pedir(sim, metodo, ruta_, data=datos)
        assert (status, cuerpo["error"]["code"]) == (404, "resource_missing"), ruta_
    for params in ({}, {"transfer_group": "p1"}, {"created[lte]": str(creado["created"])}):
        status, lista, _ = await pedir(sim, "GET", "/v1/transfers", params=params)
        assert [t["id"] for t in lista["data"]] == ([] if "transfer_group" in params else [otro])
    async with sim.http.get(f"{sim.url}/_simulador/estadisticas") as resp:
        assert {k: v for k, v in (await resp.json()).items() if k != "respuestas"} == {"transfers": 1, "reversos": 0}
    # Its creation's key neither makes it again nor shows it: a replay, of a 404 that says why.
    status, cuerpo, cabeceras = await pedir(sim, "POST", "/v1/transfers", headers={"Idempotency-Key": "crear-p1"},
                                            data=form("acct_1", "1000", transfer_group="p1"))  # fmt: skip
    assert (status, cuerpo["error"]["code"], cabeceras["Idempotent-Replayed"]) == (404, "resource_missing", "true")
    assert "deleted from the simulator's ledger" in cuerpo["error"]["message"]
    status, cuerpo, _ = await pedir(sim, "POST", ruta, data={"amount": "300"}, headers={"Idempotency-Key": "rev-1"})
    assert (status, cuerpo["error"]["code"]) == (404, "resource_missing")  # its transfer's path: no such transfer
    assert len(sim.simulador.ledger.transfers) == 1
    status, cuerpo = await _borrar(sim, id_transfer)
    assert (status, cuerpo["error"]) == (404, f"no existe el transfer '{id_transfer}'")
    async with sim.http.get(f"{sim.url}/_simulador/transfers/{otro}") as resp:
        assert resp.status == 404  # only DELETE: the transfer is Stripe's to read


async def test_un_borrado_sobrevive_a_un_reinicio_y_una_cuenta_sin_saldo(tmp_path):
    archivo = tmp_path / "ledger.sqlite3"
    import aiohttp  # noqa: PLC0415

    async with simulador_en_marcha(archivo=archivo) as sim, aiohttp.ClientSession(headers=AUTH) as http:
        sim.http = http  # type: ignore[attr-defined]
        datos = form("acct_test_afiliado_sin_saldo", "700")
        id_transfer = (await pedir(sim, "POST", "/v1/transfers", data=datos, headers={"Idempotency-Key": "k"}))[1]["id"]
        status, hecho = await _borrar(sim, id_transfer)
        assert (status, hecho["saldo"]["saldo"], hecho["claves"]) == (200, 0, 1)  # it never credited that account
    async with simulador_en_marcha(archivo=archivo) as sim, aiohttp.ClientSession(headers=AUTH) as http:
        sim.http = http  # type: ignore[attr-defined]
        assert (await pedir(sim, "GET", f"/v1/transfers/{id_transfer}"))[0] == 404
        status, _, cabeceras = await pedir(sim, "POST", "/v1/transfers", data=datos, headers={"Idempotency-Key": "k"})
        assert (status, cabeceras["Idempotent-Replayed"]) == (404, "true")
        assert len(sim.simulador.ledger.transfers) == 0


async def _pagos_dev(sim: Any, *args: str) -> tuple[int, str, str]:
    entorno = {**os.environ, "PYTHONPATH": os.pathsep.join([str(RAIZ), str(RAIZ / "devtools")])}
    entorno.pop("PAGOS_STRIPE_API_BASE", None)
    proceso = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pagos_dev", "deriva", *args, "--url", sim.url, env=entorno,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    salida, errores = await proceso.communicate()
    return proceso.returncode or 0, salida.decode().strip(), errores.decode().strip()


async def test_los_comandos_de_deriva_contra_el_simulador(sim):
    rc, salida, _ = await _pagos_dev(sim, "transfer", "--transfer-group", "pago-x", "--amount", "1234",
                                     "--destination", "acct_7", "--metadata", "origen=otro")  # fmt: skip
    assert rc == 0
    id_transfer = salida.split()[1]
    assert salida == f"transfer {id_transfer} transfer_group=pago-x 1234 usd -> acct_7"
    transfer = (await pedir(sim, "GET", f"/v1/transfers/{id_transfer}"))[1]
    assert (transfer["transfer_group"], transfer["metadata"]) == ("pago-x", {"origen": "otro"})

    rc, salida, _ = await _pagos_dev(sim, "reverso", id_transfer, "--amount", "234", "--json")
    reverso = orjson.loads(salida)
    assert (rc, reverso["object"], reverso["amount"], reverso["metadata"]) == (0, "transfer_reversal", 234, {})
    rc, salida, _ = await _pagos_dev(sim, "reverso", id_transfer)  # the rest of it
    id_reverso = salida.split()[1]
    assert (rc, salida) == (0, f"reverso {id_reverso} de {id_transfer} 1000 usd")
    rc, _, errores = await _pagos_dev(sim, "reverso", id_transfer)
    assert (rc, errores) == (1, f"el simulador respondió 400: The transfer {id_transfer} is already fully reversed.")

    rc, salida, _ = await _pagos_dev(sim, "borrar", id_transfer)
    assert rc == 0
    assert salida == f"borrado {id_transfer} reversos=[{reverso['id']},{id_reverso}] claves=0 saldo acct_7 usd=0"
    assert (await pedir(sim, "GET", f"/v1/transfers/{id_transfer}"))[0] == 404
    rc, _, errores = await _pagos_dev(sim, "borrar", id_transfer)
    assert (rc, errores) == (1, f"el simulador respondió 404: no existe el transfer '{id_transfer}'")


async def test_sin_simulador_sale_con_2():
    async with simulador_en_marcha() as sim:
        url = sim.url
    rc, _, errores = await _pagos_dev(type("S", (), {"url": url})(), "borrar", "tr_x")
    assert rc == 2
    assert errores.startswith(f"no se pudo llegar al simulador en {url}")


def test_la_ayuda_de_deriva(capsys):
    for argv in (["deriva", "--help"], ["deriva", "transfer", "--help"], ["deriva", "reverso", "--help"],
                 ["deriva", "borrar", "--help"]):  # fmt: skip
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 0
    ayuda = capsys.readouterr().out
    for texto in ("DELETE /_simulador/transfers/{id}", "--transfer-group ID_PAGO", "--destination ACCT",
                  "--amount AMOUNT", "--json", "--url URL", "no metadata[id_reverso]", "TRANSFER"):  # fmt: skip
        assert texto in ayuda, texto
    assert cli.deriva.url_del_simulador(cli.Settings(), cli.DevSettings()).startswith("http://")
