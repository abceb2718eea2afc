"""`pagos-dev deriva`: drift between the service and the Stripe simulator, planted on purpose for
the reconciliation's tests and demonstrations (issue 26), against a running simulator (`make run`'s
by default, found as `pagos-dev env` finds it) with the simulator's own test key: never the
environment's `PAGOS_STRIPE_SECRET_KEY`, which may be a real one.

    transfer   a transfer made at "Stripe" directly, not through the service (`POST /v1/transfers`)
    reverso    a reversal "from the dashboard": no `metadata[id_reverso]` (`POST …/reversals`)
    borrar     a transfer (and its reversals) gone from the simulator's ledger, as if never made
               (`DELETE /_simulador/transfers/{id}`, the simulator's tooling, not Stripe's API)

Each prints what it did in one line (`--json`: the simulator's answer). Exit status: 0 done, 1 the
simulator refused (its error printed), 2 it could not be reached.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from pagos_dev.embedded.simulador import EmbeddedSimulador
from pagos_dev.settings import SIMULADOR_SECRET_KEY, DevSettings
from pagos_worker.config import Settings

_TIEMPO_S = 30


def registrar(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deriva = sub.add_parser(
        "deriva", help="plant drift between the service and the Stripe simulator (reconciliation tests)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    comunes = argparse.ArgumentParser(add_help=False)
    comunes.add_argument("--url", help="the simulator (default: PAGOS_STRIPE_API_BASE, else make run's)")
    comunes.add_argument("--json", action="store_true", help="print the simulator's answer as JSON")
    comandos = deriva.add_subparsers(required=True, metavar="DERIVA")

    def comando(nombre: str, ayuda: str) -> argparse.ArgumentParser:
        return comandos.add_parser(nombre, help=ayuda, description=ayuda, parents=[comunes])

    transfer = comando("transfer", "a transfer made directly, under a transfer_group (not through the service)")
    transfer.add_argument("--transfer-group", required=True, metavar="ID_PAGO", help="the id_pago it claims")
    transfer.add_argument("--amount", required=True, type=int, help="in minor units (cents)")
    transfer.add_argument("--currency", default="usd")
    transfer.add_argument("--destination", required=True, metavar="ACCT", help="the connected account, acct_…")
    transfer.add_argument("--metadata", action="append", default=[], metavar="CLAVE=VALOR", help="repeatable")
    transfer.set_defaults(func=_transfer)
    reverso = comando("reverso", "a reversal 'from the dashboard' (no metadata[id_reverso])")
    reverso.add_argument("transfer", metavar="TRANSFER", help="tr_…")
    reverso.add_argument("--amount", type=int, help="in minor units (default: what is left of it)")
    reverso.set_defaults(func=_reverso)
    borrar = comando("borrar", "delete a transfer and its reversals from the simulator's ledger")
    borrar.add_argument("transfer", metavar="TRANSFER", help="tr_…")
    borrar.set_defaults(func=_borrar)


def url_del_simulador(settings: Settings, dev: DevSettings) -> str:
    """What `pagos-dev env` exports as PAGOS_STRIPE_API_BASE: the environment's, else make run's."""
    if settings.stripe_api_base is not None:
        return settings.stripe_api_base.rstrip("/")
    return EmbeddedSimulador(dev.data_dir / "simulador", host=dev.simulador_host, port=dev.simulador_port).url


def _url(settings: Settings, dev: DevSettings, args: argparse.Namespace) -> str:
    return str(args.url or url_del_simulador(settings, dev))


async def _transfer(settings: Settings, dev: DevSettings, args: argparse.Namespace) -> int:
    datos = {"amount": str(args.amount), "currency": args.currency, "destination": args.destination,
             "transfer_group": args.transfer_group}  # fmt: skip
    for par in args.metadata:
        clave, igual, valor = par.partition("=")
        if not igual or not clave:
            print(f"--metadata toma CLAVE=VALOR, no {par!r}", file=sys.stderr)
            return 2
        datos[f"metadata[{clave}]"] = valor
    hecho = await _pedir(_url(settings, dev, args), "POST", "/v1/transfers", datos)
    return _informar(hecho, args, lambda t: (
        f"transfer {t['id']} transfer_group={t['transfer_group']} {t['amount']} {t['currency']} -> {t['destination']}"
    ))  # fmt: skip


async def _reverso(settings: Settings, dev: DevSettings, args: argparse.Namespace) -> int:
    datos = {} if args.amount is None else {"amount": str(args.amount)}
    hecho = await _pedir(
        args.url or url_del_simulador(settings, dev), "POST", f"/v1/transfers/{args.transfer}/reversals", datos
    )
    return _informar(hecho, args, lambda r: f"reverso {r['id']} de {r['transfer']} {r['amount']} {r['currency']}")


async def _borrar(settings: Settings, dev: DevSettings, args: argparse.Namespace) -> int:
    hecho = await _pedir(
        args.url or url_del_simulador(settings, dev), "DELETE", f"/_simulador/transfers/{args.transfer}"
    )

    def linea(b: dict[str, Any]) -> str:
        s = b["saldo"]
        return (f"borrado {b['id']} reversos=[{','.join(b['reversos'])}] claves={b['claves']}"
                f" saldo {s['cuenta']} {s['moneda']}={s['saldo']}")  # fmt: skip

    return _informar(hecho, args, linea)


async def _pedir(url: str, metodo: str, ruta: str, datos: dict[str, str] | None = None) -> tuple[int, Any] | None:
    """The simulator's status and answer; None (said on stderr) when it could not be reached."""
    url = url.rstrip("/")
    cabeceras = {"Authorization": f"Bearer {SIMULADOR_SECRET_KEY}"}  # the simulator's: any sk_test_ key is its
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_TIEMPO_S)) as http,
            http.request(metodo, url + ruta, data=datos, headers=cabeceras) as resp,
        ):
            cuerpo = await resp.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"no se pudo llegar al simulador en {url}: {exc or type(exc).__name__}", file=sys.stderr)
        return None
    try:
        return resp.status, orjson.loads(cuerpo)
    except orjson.JSONDecodeError:
        print(f"{url} no respondió JSON ({resp.status}): ¿es el simulador?", file=sys.stderr)
        return None


def _informar(hecho: tuple[int, Any] | None, args: argparse.Namespace, linea: Callable[[Any], str]) -> int:
    if hecho is None:
        return 2
    status, cuerpo = hecho
    if status != 200:  # noqa: PLR2004
        error = cuerpo.get("error") if isinstance(cuerpo, dict) else cuerpo
        mensaje = error.get("message", error) if isinstance(error, dict) else error
        print(f"el simulador respondió {status}: {mensaje}", file=sys.stderr)
        return 1
    print(orjson.dumps(cuerpo).decode() if args.json else linea(cuerpo), flush=True)
    return 0
