"""The payments domain: no I/O, no frameworks."""

from pagos_worker.domain.dinero import Dinero, Moneda
from pagos_worker.domain.errors import (
    DineroInvalidoError,
    DominioError,
    MonedaNoSoportadaError,
    PagoEnCursoError,
    PagoYaProcesadoError,
    TransicionInvalidaError,
)
from pagos_worker.domain.events import EventoPago, PagoExitoso, PagoFallido
from pagos_worker.domain.pago import EstadoPago, Lease, Pago, PoliticaAtencion

__all__ = [
    "Dinero",
    "DineroInvalidoError",
    "DominioError",
    "EstadoPago",
    "EventoPago",
    "Lease",
    "Moneda",
    "MonedaNoSoportadaError",
    "Pago",
    "PagoEnCursoError",
    "PagoExitoso",
    "PagoFallido",
    "PagoYaProcesadoError",
    "PoliticaAtencion",
    "TransicionInvalidaError",
]
