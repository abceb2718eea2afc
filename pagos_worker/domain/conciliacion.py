"""Reconciliation's vocabulary: how an item of the service's books compares with Stripe's."""

from __future__ import annotations

from enum import StrEnum


class ClaseDiferencia(StrEnum):
    """What a reconciliation found for one item. `COINCIDE` is counted, never recorded."""

    COINCIDE = "coincide"
    EXITOSO_SIN_TRANSFERENCIA = "exitoso_sin_transferencia"
    TRANSFERENCIA_SIN_EXITO = "transferencia_sin_exito"
    TRANSFERENCIAS_MULTIPLES = "transferencias_multiples"
    IMPORTE_DISTINTO = "importe_distinto"
    DESTINO_DISTINTO = "destino_distinto"
    REVERSO_EXTERNO = "reverso_externo"
    REVERSO_SIN_REGISTRO = "reverso_sin_registro"
    REVERSO_FALTANTE = "reverso_faltante"

    @property
    def critica(self) -> bool:
        """Money moved that the service did not report, or reported money that did not move."""
        return self in _CRITICAS


_CRITICAS = frozenset(
    {
        ClaseDiferencia.EXITOSO_SIN_TRANSFERENCIA,
        ClaseDiferencia.TRANSFERENCIA_SIN_EXITO,
        ClaseDiferencia.TRANSFERENCIAS_MULTIPLES,
    }
)
DIFERENCIAS = tuple(c for c in ClaseDiferencia if c is not ClaseDiferencia.COINCIDE)


class EstadoConciliacion(StrEnum):
    EN_CURSO = "EN_CURSO"
    COMPLETA = "COMPLETA"
    FALLIDA = "FALLIDA"
