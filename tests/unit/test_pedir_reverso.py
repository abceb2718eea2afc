"""`pagos reversar`'s use case: an operator's `ReversarPago`, published only after what can be
checked here holds (the payment was paid, the amount is not more than is left once what is already
in flight is counted); a retry with the same id_reverso never asks twice. The worker is still the
authority: these checks only spare an operator a reversal that could not succeed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pagos_worker.application.commands import ReversarPago
from pagos_worker.application.operador import OperacionRechazadaError
from pagos_worker.application.pedir_reverso import PedirReversoHandler
from pagos_worker.application.queries import PagoNoEncontradoError
from pagos_worker.domain import Dinero, EstadoPago, Lease, Moneda, Pago
from pagos_worker.domain.errors import DineroInvalidoError
from pagos_worker.domain.reverso import EstadoReverso, MotivoReverso, Reverso
from tests.fake_views import FakePagoViews
from tests.fakes import FakePagoRepository

DUPLICADO = MotivoReverso.DUPLICADO


class Comandos:
    def __init__(self, falla: Exception | None = None) -> None:
        self.publicados: list[object] = []
        self.falla = falla

    async def publicar(self, comandos) -> None:
        if self.falla is not None:
            raise self.falla
        self.publicados.extend(comandos)


class Caso:
    def __init__(self, falla: Exception | None = None) -> None:
        self.repo = FakePagoRepository()
        self.views = FakePagoViews(self.repo)
        self.comandos = Comandos(falla)
        self.pedir = PedirReversoHandler(self.views, self.comandos)

    def pago(self, monto: str = "100.00", estado: str = "EXITOSO", reversado: str = "0") -> Pago:
        ahora = datetime.now(UTC)
        pago = Pago.crear(id_pago=uuid.uuid4(), id_afiliado="af_1", importe=Dinero(Decimal(monto), Moneda.USD),
                          ahora=ahora)  # fmt: skip
        if estado != "PENDIENTE":
            pago.iniciar_procesamiento(Lease("w1", ahora + timedelta(seconds=30)), ahora)
        if estado in {"EXITOSO", "REVERSADO"}:
            pago.marcar_exitoso("tr_1", ahora)
        elif estado == "FALLIDO":
            pago.marcar_fallido("cuenta cerrada", ahora)
        pago.monto_reversado = Decimal(reversado)
        if estado == "REVERSADO":
            pago.estado, pago.monto_reversado = EstadoPago.REVERSADO, pago.importe.monto
        self.repo.pagos[pago.id_pago] = pago
        return pago

    def reverso(self, pago: Pago, monto: str | None, estado: EstadoReverso = EstadoReverso.PENDIENTE) -> Reverso:
        reverso = Reverso(id_reverso=uuid.uuid4(), id_pago=pago.id_pago, estado=estado,
                          monto_pedido=None if monto is None else Decimal(monto), motivo=DUPLICADO,
                          fecha_creacion=datetime.now(UTC))  # fmt: skip
        self.views.reversos[reverso.id_reverso] = reverso
        return reverso


async def test_publica_el_reversarpago_con_quien_lo_pide():
    caso = Caso()
    pago = caso.pago()
    id_reverso = uuid.uuid4()
    pedido = await caso.pedir(pago.id_pago, motivo=DUPLICADO, operador="ana", monto=Decimal(30),
                              descripcion="cobrado dos veces", id_reverso=id_reverso)  # fmt: skip
    esperado = ReversarPago(id_reverso, pago.id_pago, Decimal("30.00"), DUPLICADO, "cobrado dos veces", "ana")
    assert caso.comandos.publicados == [esperado]
    assert str(caso.comandos.publicados[0].monto) == "30.00"  # in the payment's currency's precision
    assert (pedido.comando, pedido.publicado, pedido.registrado) == (esperado, True, None)
    assert (pedido.moneda, pedido.queda) == ("USD", Decimal("100.00"))


async def test_sin_id_reverso_uno_nuevo_y_sin_monto_todo_lo_que_queda():
    caso = Caso()
    pago = caso.pago(reversado="40.00")
    primero = await caso.pedir(pago.id_pago, motivo=DUPLICADO, operador="ana")
    segundo = await caso.pedir(pago.id_pago, motivo=DUPLICADO, operador="ana")
    assert primero.comando.id_reverso != segundo.comando.id_reverso
    assert primero.comando.id_reverso.version == 4
    assert (primero.comando.monto, primero.queda) == (None, Decimal("60.00"))


@pytest.mark.parametrize(
    ("estado", "dice"),
    [
        ("PROCESANDO", "aún no está pagado"),
        ("PENDIENTE", "aún no está pagado"),
        ("FALLIDO", "no se pagó"),
        ("REVERSADO", "ya se reversó entero"),
    ],
)
async def test_solo_un_pago_pagado(estado, dice):
    caso = Caso()
    pago = caso.pago(estado=estado)
    with pytest.raises(OperacionRechazadaError, match=dice):
        await caso.pedir(pago.id_pago, motivo=DUPLICADO, operador="ana")
    assert caso.comandos.publicados == []


async def test_no_mas_de_lo_que_queda():
    caso = Caso()
    pago = caso.pago(reversado="80.00")
    with pytest.raises(OperacionRechazadaError, match=r"se pide reversar 30.00 USD y quedan 20.00 USD por reversar"):
        await caso.pedir(pago.id_pago, motivo=DUPLICADO, operador="ana", monto=Decimal("30.00"))
    pedido = await caso.pedir(pago.id_pago, motivo=DUPLICADO, operador="ana", monto=Decimal("20.00"))
    assert pedido.publicado


async def test_lo_que_esta_en_curso_cuenta_como_ya_pedido():
    caso = Caso()
    pago = caso.pago()
    en_curso = caso.reverso(pago, "50.00", EstadoReverso.PROCESANDO)
    caso.reverso(pago, "20.00", EstadoReverso.FALLIDO)  # over: it takes nothing
    with pytest.raises(OperacionRechazadaError, match=f"quedan 50.00 USD.*en curso: {en_curso.id_reverso}"):
        await caso.pedir(pago.id_pago, motivo=DUPLICADO, operador="ana", monto=Decimal("60.00"))
    assert (await caso.pedir(pago.id_pago, motivo=DUPLICADO, operador="ana", monto=Decimal("50.00"))).publicado
    caso = Caso()
    pago = caso.pago()
    todo = caso.reverso(pago, None)  # PENDIENTE, asking for everything not yet reversed
    with pytest.raises(OperacionRechazadaError, match=f"el reverso {todo.id_reverso} ya pide todo"):
        await caso.pedir(pago.id_pago, motivo=DUPLICADO, operador="ana", monto=Decimal("1.00"))
    assert caso.comandos.publicados == []


async def test_un_pago_desconocido_o_anulado_antes_de_llegar():
    caso = Caso()
    with pytest.raises(PagoNoEncontradoError, match="no existe el pago"):
        await caso.pedir(uuid.uuid4(), motivo=DUPLICADO, operador="ana")
    anulado, anulador = uuid.uuid4(), uuid.uuid4()
    caso.views.anulados[anulado] = anulador
    with pytest.raises(PagoNoEncontradoError, match=f"lo anuló el reverso {anulador}") as info:
        await caso.pedir(anulado, motivo=DUPLICADO, operador="ana")
    assert info.value.anulado_por == anulador
    assert caso.comandos.publicados == []


async def test_repetir_el_mismo_id_reverso_no_lo_pide_dos_veces():
    caso = Caso()
    pago = caso.pago()
    pedido = await caso.pedir(pago.id_pago, motivo=DUPLICADO, operador="ana", monto=Decimal("30.00"))
    # The worker recorded it and reversed it: the payment has less left than was asked for again.
    guardado = Reverso(id_reverso=pedido.comando.id_reverso, id_pago=pago.id_pago, monto_pedido=Decimal("30.00"),
                       motivo=DUPLICADO, estado=EstadoReverso.EXITOSO, fecha_creacion=datetime.now(UTC))  # fmt: skip
    caso.views.reversos[guardado.id_reverso] = guardado
    pago.monto_reversado = Decimal("80.00")
    otra_vez = await caso.pedir(pago.id_pago, motivo=DUPLICADO, operador="ana", monto=Decimal(30),
                                id_reverso=pedido.comando.id_reverso)  # fmt: skip
    assert (otra_vez.publicado, otra_vez.registrado.estado) == (False, "EXITOSO")
    assert len(caso.comandos.publicados) == 1
    for cambio in ({"monto": Decimal("31.00")}, {"motivo": MotivoReverso.FRAUDE}, {"descripcion": "otra"}):
        argumentos = {"motivo": DUPLICADO, "operador": "ana", "monto": Decimal("30.00"), **cambio}
        with pytest.raises(OperacionRechazadaError, match="ya existe con otros términos"):
            await caso.pedir(pago.id_pago, id_reverso=guardado.id_reverso, **argumentos)
    with pytest.raises(OperacionRechazadaError, match=f"es del pago {pago.id_pago}"):
        await caso.pedir(caso.pago().id_pago, motivo=DUPLICADO, operador="ana", monto=Decimal("30.00"),
                         id_reverso=guardado.id_reverso)  # fmt: skip
    assert len(caso.comandos.publicados) == 1


async def test_un_monto_que_la_moneda_no_admite():
    caso = Caso()
    pago = caso.pago()
    with pytest.raises(DineroInvalidoError, match="decimales"):
        await caso.pedir(pago.id_pago, motivo=DUPLICADO, operador="ana", monto=Decimal("1.005"))
    assert caso.comandos.publicados == []


async def test_si_no_se_puede_publicar_dice_con_que_id_reintentarlo():
    caso = Caso(falla=TimeoutError("el broker no contestó"))
    pago = caso.pago()
    id_reverso = uuid.uuid4()
    with pytest.raises(OperacionRechazadaError, match=f"--id-reverso {id_reverso}") as info:
        await caso.pedir(pago.id_pago, motivo=DUPLICADO, operador="ana", id_reverso=id_reverso)
    assert "el broker no contestó" in str(info.value)
