"""The gateway port with a client span around each call to the gateway, the child of the command's
span (the current one)."""

from __future__ import annotations

from contextlib import AbstractContextManager

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from pagos_worker.application.ports.pasarela import PasarelaDePagos, ResultadoPago
from pagos_worker.domain.pago import Pago
from pagos_worker.domain.reverso import Reverso


class TracingPasarelaDePagos:
    """Spans `PasarelaDePagos.procesar_pago` (the payout, with its retries inside) and
    `buscar_transferencia` (the lookup), and a reversal's `revertir` and `buscar_reverso`;
    `esperar_disponible` is no call to the gateway."""

    def __init__(self, pasarela: PasarelaDePagos, tracer: trace.Tracer, *, sistema: str = "stripe") -> None:
        self._pasarela = pasarela
        self._tracer = tracer
        self._sistema = sistema

    async def procesar_pago(self, pago: Pago) -> ResultadoPago:
        with self._span("pasarela transferir", pago) as span:
            resultado = await self._pasarela.procesar_pago(pago)
            span.set_attribute("pagos.exitoso", resultado.exitoso)
            if resultado.referencia_pago:
                span.set_attribute("pagos.referencia_pago", resultado.referencia_pago)
            return resultado  # a refusal is an outcome, not an error of the call

    async def buscar_transferencia(self, pago: Pago) -> str | None:
        with self._span("pasarela buscar_transferencia", pago) as span:
            referencia = await self._pasarela.buscar_transferencia(pago)
            span.set_attribute("pagos.hallada", referencia is not None)
            return referencia

    async def revertir(self, reverso: Reverso) -> ResultadoPago:
        with self._span("pasarela revertir", reverso) as span:
            resultado = await self._pasarela.revertir(reverso)
            span.set_attribute("pagos.exitoso", resultado.exitoso)
            if resultado.referencia_pago:
                span.set_attribute("pagos.referencia_reverso", resultado.referencia_pago)
            return resultado

    async def buscar_reverso(self, reverso: Reverso) -> str | None:
        with self._span("pasarela buscar_reverso", reverso) as span:
            referencia = await self._pasarela.buscar_reverso(reverso)
            span.set_attribute("pagos.hallada", referencia is not None)
            return referencia

    async def esperar_disponible(self) -> None:
        await self._pasarela.esperar_disponible()

    def _span(self, nombre: str, item: Pago | Reverso) -> AbstractContextManager[trace.Span]:
        atributos: dict[str, str | int] = {
            "pagos.pasarela": self._sistema,
            "pagos.id_pago": str(item.id_pago),
            "pagos.generacion_clave": item.generacion_clave,
        }
        if isinstance(item, Reverso):
            atributos["pagos.id_reverso"] = str(item.id_reverso)
        return self._tracer.start_as_current_span(nombre, kind=SpanKind.CLIENT, attributes=atributos)
