"""Domain errors: Spanish noun + Error, one per broken rule."""


class DominioError(Exception):
    """A business rule of the payments domain was broken."""


class DineroInvalidoError(DominioError):
    """An amount that the domain cannot accept (not positive, too precise, too large)."""

    def __init__(self, codigo: str, mensaje: str) -> None:
        super().__init__(mensaje)
        self.codigo = codigo


class MonedaNoSoportadaError(DominioError):
    """A currency other than USD, EUR or COP."""


class TransicionInvalidaError(DominioError):
    """A state change that the payment's life cycle does not allow."""


class PagoYaProcesadoError(TransicionInvalidaError):
    """The payment already reached a final state (EXITOSO or FALLIDO)."""


class PagoEnCursoError(TransicionInvalidaError):
    """Another worker holds a live lease on the payment."""


class PagoRequiereAtencionError(TransicionInvalidaError):
    """Its automatic retries are over (flagged for attention): only an operator resumes it."""
