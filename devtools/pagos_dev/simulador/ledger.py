"""The simulator's ledger: transfers made and idempotent results, optionally kept in a JSON-lines
file so that they survive a restart (a crash test audits it afterwards)."""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

_IDS = random.Random(secrets.randbits(64))  # noqa: S311 - unique ids for a simulator, not secrets


def nuevo_id(prefijo: str) -> str:
    return f"{prefijo}_{_IDS.getrandbits(96):024x}"


@dataclass(frozen=True, slots=True)
class Transfer:
    id: str
    amount: int
    currency: str
    destination: str
    description: str | None
    metadata: dict[str, str]
    created: int

    def as_stripe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "transfer",
            "amount": self.amount,
            "amount_reversed": 0,
            "balance_transaction": "txn_" + self.id.removeprefix("tr_"),
            "created": self.created,
            "currency": self.currency,
            "description": self.description,
            "destination": self.destination,
            "livemode": False,
            "metadata": self.metadata,
            "reversals": {"object": "list", "data": [], "has_more": False},
            "reversed": False,
            "source_type": "card",
            "transfer_group": None,
        }


@dataclass(frozen=True, slots=True)
class ResultadoIdempotente:
    """The first response to a key: replayed for every later request with that key."""

    huella: str
    status: int
    body: bytes
    request_id: str


@dataclass
class Ledger:
    archivo: Path | None = None
    transfers: dict[str, Transfer] = field(default_factory=dict)  # creation order
    resultados: dict[str, ResultadoIdempotente] = field(default_factory=dict)
    _log: BinaryIO | None = None

    def __post_init__(self) -> None:
        if self.archivo is None:
            return
        if self.archivo.exists():
            for linea in self.archivo.read_bytes().splitlines():
                if linea.strip():
                    self._aplicar(orjson.loads(linea))
        self.archivo.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.archivo.open("ab")

    def crear_transfer(self, amount: int, currency: str, destination: str, description: str | None,
                       metadata: dict[str, str]) -> Transfer:  # fmt: skip
        transfer = Transfer(nuevo_id("tr"), amount, currency, destination, description, metadata, int(time.time()))
        self.transfers[transfer.id] = transfer
        if self._log is not None:
            self._escribir({"transfer": asdict(transfer)})
        return transfer

    def guardar_resultado(self, clave: str, resultado: ResultadoIdempotente) -> None:
        self.resultados[clave] = resultado
        if self._log is not None:
            registro = {"clave": clave, "huella": resultado.huella, "status": resultado.status,
                        "body": resultado.body.decode(), "request_id": resultado.request_id}  # fmt: skip
            self._escribir({"idempotency": registro})

    def listar(self, limit: int, starting_after: str | None) -> tuple[list[Transfer], bool]:
        """Newest first; `starting_after` is the id of the last transfer of the previous page."""
        ids = list(reversed(self.transfers))
        inicio = ids.index(starting_after) + 1 if starting_after else 0
        pagina = ids[inicio : inicio + limit]
        return [self.transfers[i] for i in pagina], inicio + limit < len(ids)

    def cerrar(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _escribir(self, registro: dict[str, Any]) -> None:
        if self._log is not None:
            self._log.write(orjson.dumps(registro) + b"\n")
            self._log.flush()

    def _aplicar(self, registro: dict[str, Any]) -> None:
        if "transfer" in registro:
            transfer = Transfer(**registro["transfer"])
            self.transfers[transfer.id] = transfer
        else:
            r = registro["idempotency"]
            self.resultados[r["clave"]] = ResultadoIdempotente(
                r["huella"], r["status"], r["body"].encode(), r.get("request_id", "")
            )
