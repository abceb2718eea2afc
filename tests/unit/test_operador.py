"""The operators' use cases on fakes: the aggregate's hand-taking, and the dead-letter re-drive's
rules (one send per origin in a run, re-runs skip what was re-driven, dry runs send nothing)."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pagos_worker.application.commands import ReversarPago
from pagos_worker.application.dlq import FiltroCartas, ListarCartasMuertasHandler, ReenviarCartasMuertasHandler
from pagos_worker.application.operador import OperacionRechazadaError
from pagos_worker.application.ports.operador import CartaMuerta
from pagos_worker.domain import Dinero, EstadoPago, Lease, Moneda, Pago, PagoEnCursoError, PagoYaProcesadoError
from pagos_worker.entrypoints.worker import decodificar
from tests.fakes import FakePublisher

AHORA = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def en_proceso(expira: datetime) -> Pago:
    pago = Pago.crear(id_pago=uuid.uuid4(), id_afiliado="a", importe=Dinero(Decimal("1.00"), Moneda.USD), ahora=AHORA)
    pago.iniciar_procesamiento(Lease("w1", expira), AHORA)
    return pago


def test_el_operador_toma_un_pago_sin_lease_vivo_y_sin_contar_un_intento():
    pago = en_proceso(AHORA)
    pago.requiere_atencion = True
    pago.tomar_a_mano(Lease("operador:ana", AHORA + timedelta(minutes=1)), AHORA)
    assert (pago.estado, pago.lease.owner, pago.intentos, pago.requiere_atencion) == (
        EstadoPago.PROCESANDO, "operador:ana", 1, True,
    )  # fmt: skip
    pago.soltar(AHORA)
    assert not pago.lease.vigente(AHORA)


def test_el_operador_no_toma_un_pago_vivo_ni_uno_final():
    with pytest.raises(PagoEnCursoError, match="w1"):
        en_proceso(AHORA + timedelta(seconds=5)).tomar_a_mano(Lease("op", AHORA), AHORA)
    final = en_proceso(AHORA)
    final.marcar_exitoso("tr_1", AHORA)
    with pytest.raises(PagoYaProcesadoError):
        final.tomar_a_mano(Lease("op", AHORA), AHORA)


class Lector:
    def __init__(self, cartas: list[CartaMuerta]) -> None:
        self.cartas = cartas

    async def leer(self, desde=None):
        for carta in self.cartas:
            yield carta


class Registro:
    def __init__(self) -> None:
        self.hechos = {}
        self.ocupado = False

    async def reenviados(self, origenes):
        return {o: self.hechos[o] for o in origenes if o in self.hechos}

    async def registrar(self, reenvios):
        for r in reenvios:
            self.hechos[r.origen] = r

    @contextlib.asynccontextmanager
    async def exclusivo(self):
        yield not self.ocupado


def carta(n: int, motivo: str = "json_invalido", payload: bytes = b"x", **props: str) -> CartaMuerta:
    return CartaMuerta(f"(0,{n},-1,-1)", payload, "", {"motivo": motivo, "detalle": "d", **props}, AHORA)


async def test_reenviar_una_vez_por_origen_y_no_otra_vez_sin_pedirlo():
    id_pago = uuid.uuid4()
    bueno = json.dumps({"id_pago": str(id_pago)}).encode()
    # A letter, its echo after an earlier re-drive (same origin), and another command.
    cartas = [carta(1), carta(2, reenvio_de="(0,1,-1,-1)"), carta(3, "error_repetido", bueno, propia="p")]
    registro, comandos = Registro(), FakePublisher()
    reenviar = ReenviarCartasMuertasHandler(Lector(cartas), registro, comandos)

    ensayo = await reenviar(FiltroCartas(), operador="ana", dry_run=True)
    assert ([c.origen for c in ensayo.a_enviar], ensayo.reenviadas, comandos.mensajes) == (
        ["(0,1,-1,-1)", "(0,3,-1,-1)"], 0, [],
    )  # fmt: skip

    hecho = await reenviar(FiltroCartas(), operador="ana")
    assert hecho.reenviadas == 2
    enviado = comandos.mensajes[1]
    assert enviado.payload == bueno
    assert dict(enviado.properties) == {
        "propia": "p", "reenvio_de": "(0,3,-1,-1)", "reenvio_lote": str(hecho.lote), "reenviado_por": "ana",
    }  # fmt: skip
    assert registro.hechos["(0,3,-1,-1)"].id_pago == id_pago

    otra = await reenviar(FiltroCartas(), operador="ana")
    assert (otra.reenviadas, len(otra.omitidas)) == (0, 2)
    solo = await reenviar(FiltroCartas(motivo="error_repetido"), operador="ana", otra_vez=True)
    assert solo.reenviadas == 1
    assert len(comandos.mensajes) == 3

    listadas = await ListarCartasMuertasHandler(Lector(cartas), registro)(FiltroCartas(id_pago=id_pago))
    assert [(c.carta.message_id, c.reenvio is not None) for c in listadas] == [("(0,3,-1,-1)", True)]


async def test_un_segundo_reenvio_a_la_vez_se_rechaza():
    registro = Registro()
    registro.ocupado = True
    with pytest.raises(OperacionRechazadaError, match="en marcha"):
        await ReenviarCartasMuertasHandler(Lector([]), registro, FakePublisher())(FiltroCartas(), operador="ana")


async def test_un_reversarpago_reenviado_sigue_siendo_un_reversarpago():
    """A dead-lettered ReversarPago (a conflict, or sent by old workers that did not know it) goes
    back with its own property `tipo_comando`: the worker reads it as the reversal it is, and the
    record names its payment."""
    id_pago = uuid.uuid4()
    cuerpo = json.dumps({"id_reverso": str(uuid.uuid4()), "id_pago": str(id_pago), "motivo": "fraude"}).encode()
    cartas = [carta(1, "campo_faltante", cuerpo, tipo_comando="ReversarPago", operador="ana")]
    registro, comandos = Registro(), FakePublisher()
    hecho = await ReenviarCartasMuertasHandler(Lector(cartas), registro, comandos)(FiltroCartas(), operador="luis")
    [enviado] = comandos.mensajes
    assert (enviado.properties["tipo_comando"], enviado.properties["operador"]) == ("ReversarPago", "ana")
    assert "motivo" not in enviado.properties
    assert isinstance(decodificar(enviado.payload, dict(enviado.properties)), ReversarPago)
    assert registro.hechos["(0,1,-1,-1)"].id_pago == id_pago
    assert hecho.reenviadas == 1
