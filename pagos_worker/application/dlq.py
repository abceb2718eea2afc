"""Dead letters for operators: list them, and re-drive them to the commands topic.

The dead-letter topic is read, never consumed (`DeadLetterReader`): what an operator re-drives is
recorded with the payments (`RedriveLog`), by the letter's origin — the first dead letter of its
command; one that comes back after a re-drive carries it (property `reenvio_de`). Hence, in one run,
each origin is sent at most once, and the topic is read to its end before anything is sent, so an
echo of this very run is never read in it; a later run skips origins re-driven before unless told
otherwise (`otra_vez`). One run at a time (`RedriveLog.exclusivo`).

A re-driven command is the dead letter's own bytes and key, with its own properties minus the
dead-letter ones, plus `reenvio_de`, `reenvio_lote` and `reenviado_por`. The worker treats it like
any command: processed if it can be now (an outage, a since-fixed bug), dead-lettered again with its
reason otherwise. Commands are idempotent by `id_pago`, so a re-drive never pays twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pagos_worker.application.operador import OperacionRechazadaError
from pagos_worker.application.ports.operador import CartaMuerta, DeadLetterReader, RedriveLog, Reenvio
from pagos_worker.application.ports.outbox import EventPublisher, PlainMessage
from pagos_worker.clock import utcnow

PROPIEDADES_DLQ = frozenset({"motivo", "detalle", "topic_origen", "message_id_origen"})
REENVIO_DE, REENVIO_LOTE, REENVIADO_POR = "reenvio_de", "reenvio_lote", "reenviado_por"
LOTE_ENVIO = 100


class Progreso(Protocol):
    """Told how a run goes (a progress bar): letters read, how many will be sent, sent."""

    def leidas(self, n: int) -> None: ...
    def a_enviar(self, total: int) -> None: ...
    def enviadas(self, n: int) -> None: ...


@dataclass(frozen=True, slots=True)
class FiltroCartas:
    motivo: str | None = None
    id_pago: uuid.UUID | None = None
    desde: datetime | None = None

    def admite(self, carta: VistaCarta) -> bool:
        return (
            (self.motivo is None or carta.motivo == self.motivo)
            and (self.id_pago is None or carta.id_pago == self.id_pago)
            and (self.desde is None or carta.carta.publicada >= self.desde)
        )


@dataclass(frozen=True, slots=True)
class VistaCarta:
    carta: CartaMuerta
    reenvio: Reenvio | None = None  # its origin's last re-drive, if any

    @property
    def origen(self) -> str:
        return self.carta.properties.get(REENVIO_DE) or self.carta.message_id

    @property
    def motivo(self) -> str:
        return self.carta.properties.get("motivo", "")

    @property
    def detalle(self) -> str:
        return self.carta.properties.get("detalle", "")

    @property
    def id_pago(self) -> uuid.UUID | None:
        """The command's id_pago when its payload says it, else its key if that is one."""
        for candidato in (_id_en_el_payload(self.carta.payload), self.carta.key):
            try:
                return uuid.UUID(candidato) if candidato else None
            except ValueError:
                continue
        return None


@dataclass(frozen=True, slots=True)
class ResultadoReenvio:
    lote: uuid.UUID
    a_enviar: list[VistaCarta]  # what matched, one per origin, less what was re-driven before
    omitidas: list[VistaCarta] = field(default_factory=list)  # re-driven before (see `otra_vez`)
    reenviadas: int = 0
    dry_run: bool = False


class ListarCartasMuertasHandler:
    def __init__(self, lector: DeadLetterReader, registro: RedriveLog) -> None:
        self._lector = lector
        self._registro = registro

    async def __call__(self, filtro: FiltroCartas, *, progreso: Progreso | None = None) -> list[VistaCarta]:
        cartas = [c async for c in _leer(self._lector, filtro, progreso) if filtro.admite(c)]
        previos = await self._registro.reenviados(sorted({c.origen for c in cartas}))
        return [VistaCarta(c.carta, previos.get(c.origen)) for c in cartas]


class ReenviarCartasMuertasHandler:
    def __init__(
        self,
        lector: DeadLetterReader,
        registro: RedriveLog,
        comandos: EventPublisher,
        *,
        reloj: Callable[[], datetime] = utcnow,
    ) -> None:
        self._lector = lector
        self._registro = registro
        self._comandos = comandos
        self._reloj = reloj

    async def __call__(
        self,
        filtro: FiltroCartas,
        *,
        operador: str,
        dry_run: bool = False,
        otra_vez: bool = False,
        progreso: Progreso | None = None,
    ) -> ResultadoReenvio:
        async with self._registro.exclusivo() as mio:
            if not mio:
                raise OperacionRechazadaError("otro `dlq reenviar` está en marcha; espere a que termine")
            lote = uuid.uuid4()
            por_origen: dict[str, VistaCarta] = {}
            async for carta in _leer(self._lector, filtro, progreso):
                if filtro.admite(carta):
                    por_origen[carta.origen] = carta  # the newest letter of each origin
            previos = await self._registro.reenviados(sorted(por_origen))
            seleccionadas = [VistaCarta(c.carta, previos.get(o)) for o, c in por_origen.items()]
            omitidas = [] if otra_vez else [c for c in seleccionadas if c.reenvio is not None]
            enviar = [c for c in seleccionadas if otra_vez or c.reenvio is None]
            if dry_run:
                return ResultadoReenvio(lote, enviar, omitidas, dry_run=True)
            if progreso is not None:
                progreso.a_enviar(len(enviar))
            for inicio in range(0, len(enviar), LOTE_ENVIO):
                parte = enviar[inicio : inicio + LOTE_ENVIO]
                await self._comandos.publicar([_comando(c, lote, operador) for c in parte])
                ahora = self._reloj()
                await self._registro.registrar(
                    [Reenvio(c.origen, c.carta.message_id, c.id_pago, c.motivo, operador, ahora, lote) for c in parte]
                )
                if progreso is not None:
                    progreso.enviadas(len(parte))
            return ResultadoReenvio(lote, enviar, omitidas, reenviadas=len(enviar))


async def _leer(lector: DeadLetterReader, filtro: FiltroCartas, progreso: Progreso | None) -> AsyncIterator[VistaCarta]:
    async for carta in lector.leer(filtro.desde):
        if progreso is not None:
            progreso.leidas(1)
        yield VistaCarta(carta)


def _comando(carta: VistaCarta, lote: uuid.UUID, operador: str) -> PlainMessage:
    propias = {k: v for k, v in carta.carta.properties.items() if k not in PROPIEDADES_DLQ}
    propias.update({REENVIO_DE: carta.origen, REENVIO_LOTE: str(lote), REENVIADO_POR: operador})
    return PlainMessage(payload=carta.carta.payload, key=carta.carta.key, properties=propias)


def _id_en_el_payload(payload: bytes) -> str | None:
    try:
        valor = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        return None
    return valor.get("id_pago") if isinstance(valor, dict) and isinstance(valor.get("id_pago"), str) else None
