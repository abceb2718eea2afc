"""Go tools the project's checks use, pinned here and nowhere else, built with `go install` from the
Go module proxy: kustomize renders deploy/kubernetes in the tests; stripe-mock, Stripe's own mock,
answers the Stripe adapter's requests (`pagos-dev herramientas`, `make herramientas`).

Each is built once into `<dir>/<module>@<version>/` (`.cache/go-tools/` unless `PAGOS_GO_TOOLS_DIR`
says otherwise) and reused from there while it exists; a new pin builds beside the old one. The Go
module proxy and its checksum database vouch for the module, as for any `go install`; the binary's
module hash is then checked against the `h1:` pinned here, so other bytes under the same version
fail the build. The build uses this machine's Go as it is (`GOTOOLCHAIN=local`: a Go older than a
module asks for is go's own error, naming the version), without cgo (no C compiler needed), with the
user's module and build caches (a second clone builds in seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pagos_dev.settings import DevSettings

_GO_INSTALL_TIMEOUT_S = 900


@dataclass(frozen=True)
class HerramientaGo:
    nombre: str  # the binary `go install` makes
    modulo: str  # the module, which is also the package built
    version: str
    h1: str  # the module's hash, as in a go.sum
    go_minimo: str  # what the module's go.mod asks for
    para: str

    @property
    def fijada(self) -> str:
        return f"{self.modulo}@{self.version}"


HERRAMIENTAS = {
    h.nombre: h
    for h in (
        # v5.8.2 is the newest whose go.mod a Go 1.26 builds (v5.8.3, kustomize/api v0.21.3, asks for 1.27).
        HerramientaGo(
            "kustomize", "sigs.k8s.io/kustomize/kustomize/v5", "v5.8.2",
            "h1:sSNeWwgkdSMGCIavtY63JQMgBJkGv3IwOltWVZy+LFQ=", "1.26", "renders deploy/kubernetes in the tests",
        ),
        HerramientaGo(
            "stripe-mock", "github.com/stripe/stripe-mock", "v0.203.0",
            "h1:EzW7nb/fphqcAkgVRHAaC88OaAZo6SBWSl54cflDTio=", "1.22", "Stripe's own mock: the stripe-mock suite",
        ),
    )
}  # fmt: skip


class HerramientaNoDisponibleError(RuntimeError):
    """A pinned tool is not built and cannot be: Go is absent, or `go install` failed."""


def directorio_por_defecto() -> Path:
    return DevSettings().go_tools_dir


def binario(nombre: str, directorio: Path | None = None) -> Path:
    """The pinned tool's binary, built first if it is not there yet (once: other processes wait)."""
    herramienta = HERRAMIENTAS[nombre]
    destino = (directorio or directorio_por_defecto()).resolve() / herramienta.fijada
    ejecutable = destino / herramienta.nombre
    if _ejecutable(ejecutable):
        return ejecutable
    go = shutil.which("go")
    if go is None:
        raise HerramientaNoDisponibleError(
            f"Go is not on PATH: {herramienta.nombre} {herramienta.version} ({herramienta.para}) is built with "
            f"`go install {herramienta.fijada}`, which needs Go {herramienta.go_minimo} or newer"
        )
    destino.parent.mkdir(parents=True, exist_ok=True)
    with _cerrojo(destino.parent / f".{herramienta.nombre}.lock"):
        if not _ejecutable(ejecutable):  # another process may have built it meanwhile
            _construir(go, herramienta, destino)
    return ejecutable


def _ejecutable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@contextlib.contextmanager
def _cerrojo(path: Path) -> Iterator[None]:
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _construir(go: str, herramienta: HerramientaGo, destino: Path) -> None:
    print(f"building {herramienta.nombre} {herramienta.version} with go install (once; kept in {destino})",
          file=sys.stderr, flush=True)  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix=f".{herramienta.nombre}-", dir=destino.parent))
    try:
        entorno = {**os.environ, "GOBIN": str(tmp), "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
        salida = _go(go, ["install", herramienta.fijada], entorno)
        construido = tmp / herramienta.nombre
        if not _ejecutable(construido):
            raise HerramientaNoDisponibleError(
                f"`go install {herramienta.fijada}` made no {herramienta.nombre}\n{salida}"
            )
        _comprobar_modulo(go, herramienta, construido)
        shutil.rmtree(destino, ignore_errors=True)
        tmp.rename(destino)  # whole or not at all: a build cut short leaves nothing to reuse
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _go(go: str, args: list[str], entorno: dict[str, str]) -> str:
    try:
        hecho = subprocess.run(  # noqa: S603 - go from PATH, fixed arguments
            [go, *args], env=entorno, capture_output=True, text=True, timeout=_GO_INSTALL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise HerramientaNoDisponibleError(f"`go {' '.join(args)}` took over {_GO_INSTALL_TIMEOUT_S} s") from None
    salida = (hecho.stdout + hecho.stderr).strip()
    if hecho.returncode != 0:
        raise HerramientaNoDisponibleError(f"`go {' '.join(args)}` failed ({hecho.returncode}):\n{salida}")
    return salida


def _comprobar_modulo(go: str, herramienta: HerramientaGo, construido: Path) -> None:
    """The binary's own record of the module it was built from (`go version -m`) names the pin."""
    esperado = ["mod", herramienta.modulo, herramienta.version, herramienta.h1]
    lineas = [ln.split() for ln in _go(go, ["version", "-m", str(construido)], dict(os.environ)).splitlines()]
    if esperado not in lineas:
        visto = next((" ".join(ln) for ln in lineas if ln[:1] == ["mod"]), "no module line")
        raise HerramientaNoDisponibleError(
            f"{herramienta.nombre}: built from {visto}, not {' '.join(esperado[1:])}: the module's hash differs from "
            "the pin in pagos_dev/herramientas.py"
        )


def registrar(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    herramientas = sub.add_parser(
        "herramientas", help="build the pinned Go tools (kustomize, stripe-mock) with go install, once",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    herramientas.add_argument(
        "nombres", nargs="*", metavar="NOMBRE", help=f"some of {', '.join(HERRAMIENTAS)} (default: all)"
    )
    herramientas.set_defaults(func=_cmd_herramientas, sync=True)
    mock = sub.add_parser("stripe-mock", help="run Stripe's own mock (built first if need be) until Ctrl-C")
    mock.add_argument("--port", type=int, default=0, help="default: a free one")
    mock.set_defaults(func=_cmd_stripe_mock)


def _cmd_herramientas(_: object, dev: DevSettings, args: argparse.Namespace) -> int:
    if desconocidos := sorted(set(args.nombres) - set(HERRAMIENTAS)):
        print(f"unknown tools: {', '.join(desconocidos)} (pinned: {', '.join(HERRAMIENTAS)})", file=sys.stderr)
        return 2
    for nombre in args.nombres or HERRAMIENTAS:
        try:
            ruta = binario(nombre, dev.go_tools_dir)
        except HerramientaNoDisponibleError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"{nombre} {HERRAMIENTAS[nombre].version} {ruta}", flush=True)
    return 0


async def _cmd_stripe_mock(_: object, dev: DevSettings, args: argparse.Namespace) -> int:
    from pagos_dev.embedded.stripe_mock import EmbeddedStripeMock  # noqa: PLC0415 - only when asked for

    try:
        ruta = await asyncio.to_thread(binario, "stripe-mock", dev.go_tools_dir)
    except HerramientaNoDisponibleError as exc:
        print(exc, file=sys.stderr)
        return 1
    mock = EmbeddedStripeMock(ruta, dev.data_dir / "stripe-mock", port=args.port)
    await mock.start()
    try:
        version = HERRAMIENTAS["stripe-mock"].version
        print(f"stripe-mock {version} on {mock.url} (keys like sk_test_123; it keeps nothing; log: {mock.log_path})",
              flush=True)  # fmt: skip
        parar = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, parar.set)
        await parar.wait()
    finally:
        await mock.stop()
    return 0
