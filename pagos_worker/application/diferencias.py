"""An operator closes a difference a reconciliation recorded, once handled (`pagos-worker
conciliacion resolver`): who, why, and when by the database's clock. Closing it changes nothing
else: no payment, no money; it only leaves the attention list."""

from __future__ import annotations

from typing import Protocol

import structlog

from pagos_worker.application.operador import OperacionRechazadaError
from pagos_worker.application.queries import VistaDiferencia

log = structlog.get_logger(__name__)


class DiferenciaRepository(Protocol):
    """The recorded differences as operators close them."""

    async def resolver(self, id_diferencia: int, *, operador: str, nota: str) -> VistaDiferencia | None:
        """Record it resolved now (the store's clock), by `operador`, with `nota`; only if it is
        still unresolved (else nothing is written and None)."""
        ...

    async def obtener(self, id_diferencia: int) -> VistaDiferencia | None: ...


class ResolverDiferenciaHandler:
    def __init__(self, diferencias: DiferenciaRepository) -> None:
        self._diferencias = diferencias

    async def __call__(self, id_diferencia: int, *, operador: str, nota: str) -> VistaDiferencia:
        """The difference as closed; `OperacionRechazadaError` (nothing written) if there is no such
        difference or someone resolved it first."""
        if (resuelta := await self._diferencias.resolver(id_diferencia, operador=operador, nota=nota)) is not None:
            log.warning(
                "operador.diferencia_resuelta", id_diferencia=id_diferencia, clase=resuelta.clase,
                id_pago=str(resuelta.id_pago) if resuelta.id_pago else None, operador=operador,
            )  # fmt: skip
            return resuelta
        if (previa := await self._diferencias.obtener(id_diferencia)) is None:
            raise OperacionRechazadaError(f"no existe la diferencia {id_diferencia}")
        cuando = previa.resuelta_en.isoformat() if previa.resuelta_en else "?"
        raise OperacionRechazadaError(
            f"la diferencia {id_diferencia} ya estaba resuelta ({previa.resuelta_por or '?'}, {cuando}: "
            f"{previa.nota or '-'}): nada se escribió"
        )
