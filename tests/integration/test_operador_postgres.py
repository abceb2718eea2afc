"""The operators' writes against PostgreSQL and a worker at the same time: an operator never takes
a payment a worker holds, a worker never takes one the operator holds, and a resolution whose lease
was lost writes nothing. The gateway is a fake here: what it shows is the test's choice."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from pagos_worker.adapters.postgres.operador import PostgresOperadorRepository
from pagos_worker.adapters.postgres.reenvios import PostgresRedriveLog
from pagos_worker.application.operador import OperacionRechazadaError, ReanudarPagoHandler, ResolverPagoHandler
from pagos_worker.application.ports.operador import Resolucion
from pagos_worker.application.ports.pasarela import TransferenciaHallada
from pagos_worker.application.ports.repository import Liberacion
from pagos_worker.domain import Dinero, EstadoPago, Lease, Moneda, Pago, PoliticaAtencion

pytestmark = pytest.mark.integration
SIN_MARGEN = timedelta(0)  # FALLIDO allowed right after the last gateway call (that rule has a test of its own)


class Pasarela:
    """Shows `transferencias`; `durante` runs while the operator waits for the gateway's answer."""

    def __init__(
        self, transferencias: list[TransferenciaHallada], durante: Callable[[], Awaitable[None]] | None = None
    ):
        self._transferencias = transferencias
        self._durante = durante

    def destino(self, pago: Pago) -> str | None:
        return f"acct_{pago.id_afiliado}"

    async def transferencias(self, pago: Pago) -> list[TransferenciaHallada]:
        if self._durante is not None:
            await self._durante()
        return self._transferencias


def comando(id_pago: uuid.UUID, ahora: datetime, owner: str = "w1") -> Pago:
    pago = Pago.crear(id_pago=id_pago, id_afiliado="af_1", importe=Dinero(Decimal("25.00"), Moneda.USD), ahora=ahora)
    pago.iniciar_procesamiento(Lease(owner, ahora + timedelta(seconds=60)), ahora)
    return pago


async def marcado(repo) -> Pago:
    """A payment whose outcome stayed unknown: flagged, its lease ended."""
    ahora = datetime.now(UTC)
    pago = (await repo.reclamar(comando(uuid.uuid4(), ahora))).pago
    politica = PoliticaAtencion(max_intentos=1)
    pago.resultado_desconocido("Stripe 500", ahora, politica)
    await repo.liberar(pago, Liberacion.LLAMO, politica)
    return pago


async def calls_ended_ago(engine, id_pago, hace: timedelta) -> None:
    """As if the payment's last gateway call had ended `hace` ago (the store's clock)."""
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE pagos SET fin_llamadas = clock_timestamp() - CAST(:h AS interval) WHERE id_pago = :i"),
            {"h": hace, "i": id_pago},
        )


TRANSFER = TransferenciaHallada("tr_1", 2500, "USD", datetime.now(UTC), "acct_af_1")


async def test_el_operador_no_toma_un_pago_que_un_worker_tiene(postgres):
    repo = postgres.repo()
    pago = (await repo.reclamar(comando(uuid.uuid4(), datetime.now(UTC)))).pago  # a live lease: w1 is paying
    resolver = ResolverPagoHandler(
        PostgresOperadorRepository(postgres.engine), Pasarela([]), lease=timedelta(60), margen_fallido=SIN_MARGEN
    )
    with pytest.raises(OperacionRechazadaError, match="en curso en w1"):
        await resolver(pago.id_pago, operador="ana", fallido="no")
    guardado = await repo.obtener(pago.id_pago)
    assert (guardado.estado, guardado.lease.owner) == (EstadoPago.PROCESANDO, "w1")


async def test_mientras_el_operador_lo_tiene_ningun_worker_lo_toma(postgres):
    repo = postgres.repo()
    pago = await marcado(repo)
    # Not even unflagged (a payment only old, its command redelivered, the reconciler passing by):
    # the operator's lease holds it.
    async with postgres.engine.begin() as conn:
        await conn.execute(text("UPDATE pagos SET requiere_atencion = false WHERE id_pago = :i"), {"i": pago.id_pago})
    vistos = []

    async def un_worker_lo_intenta() -> None:
        ahora = datetime.now(UTC)
        reclamo = await repo.reclamar(comando(pago.id_pago, ahora, owner="w2"))
        vistos.append(reclamo.reclamado)
        vistos.append(pago.id_pago in {p.id_pago for p in await repo.atascados(timedelta(0), 10)})

    pasarela = Pasarela([TRANSFER], durante=un_worker_lo_intenta)
    resuelto = await ResolverPagoHandler(PostgresOperadorRepository(postgres.engine), pasarela,
                                         lease=timedelta(seconds=60))(pago.id_pago, operador="ana")  # fmt: skip
    assert vistos == [False, False]  # neither the claim nor the reconciler got it
    assert (resuelto.pago.estado, resuelto.pago.referencia_pago, resuelto.eventos) == (EstadoPago.EXITOSO, "tr_1", 1)
    guardado = await repo.obtener(pago.id_pago)
    assert (guardado.estado, guardado.lease, guardado.intentos) == (EstadoPago.EXITOSO, None, 1)  # no attempt counted


async def test_si_el_operador_pierde_el_lease_no_escribe_nada(postgres):
    repo = postgres.repo()
    pago = await marcado(repo)

    async def un_worker_lo_toma() -> None:  # the operator's lease ran out and a worker claimed it
        async with postgres.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE pagos SET lease_owner = 'w2', lease_expira = now() + interval '1 minute', "
                    "reclamo = reclamo + 1 WHERE id_pago = :i"
                ),
                {"i": pago.id_pago},
            )

    pasarela = Pasarela([TRANSFER], durante=un_worker_lo_toma)
    resolver = ResolverPagoHandler(PostgresOperadorRepository(postgres.engine), pasarela, lease=timedelta(seconds=60))
    with pytest.raises(OperacionRechazadaError, match="dejó de estar en manos del operador"):
        await resolver(pago.id_pago, operador="ana")
    guardado = await repo.obtener(pago.id_pago)
    assert (guardado.estado, guardado.lease.owner) == (EstadoPago.PROCESANDO, "w2")  # the worker's, untouched
    async with postgres.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 0
        assert await conn.scalar(text("SELECT count(*) FROM resoluciones")) == 0


async def test_un_rechazo_devuelve_el_pago_al_momento(postgres):
    repo = postgres.repo()
    pago = await marcado(repo)
    operador = PostgresOperadorRepository(postgres.engine)
    otro = TransferenciaHallada("tr_2", 2500, "USD")
    for pasarela, motivo in (
        (Pasarela([TRANSFER, otro]), "pagado más de una vez"),
        (Pasarela([TransferenciaHallada("tr_3", 999, "USD")]), "revíselo en Stripe"),
        (Pasarela([TransferenciaHallada("tr_5", 2500, "USD", destino="acct_otro")]), "va a acct_otro"),
        (Pasarela([TransferenciaHallada("tr_4", 2500, "USD", revertido=2500)]), "fue revertido en Stripe"),
        (Pasarela([]), "no tiene ningún transfer"),
    ):
        with pytest.raises(OperacionRechazadaError, match=motivo):
            await ResolverPagoHandler(operador, pasarela, lease=timedelta(seconds=60))(pago.id_pago, operador="ana")
        guardado = await repo.obtener(pago.id_pago)
        assert guardado.estado is EstadoPago.PROCESANDO
        assert not guardado.lease.vigente(datetime.now(UTC))  # given back, not held for a minute
        assert guardado.requiere_atencion


async def test_un_transfer_revertido_solo_queda_fallido_si_se_revirtio_entero(postgres):
    """Paid, then reversed in Stripe: wholly, the affiliate was not paid (FALLIDO, if the operator
    says why); partly, neither state says it, and nothing is resolved by hand."""
    repo = postgres.repo()
    operador = PostgresOperadorRepository(postgres.engine)
    pago = await marcado(repo)
    parcial = TransferenciaHallada("tr_p", 2500, "USD", revertido=1000)
    entero = TransferenciaHallada("tr_e", 2500, "USD", revertido=2500)
    for transfer, fallido, dice in (
        (parcial, None, "1000 de 2500 USD.*ningún estado lo dice"),
        (parcial, "revertido", "ningún estado lo dice"),
        (entero, None, 'para dejarlo FALLIDO, --fallido "motivo"'),
    ):
        resolver = ResolverPagoHandler(operador, Pasarela([transfer]), lease=timedelta(60), margen_fallido=SIN_MARGEN)
        with pytest.raises(OperacionRechazadaError, match=dice):
            await resolver(pago.id_pago, operador="ana", fallido=fallido)
        assert (await repo.obtener(pago.id_pago)).estado is EstadoPago.PROCESANDO

    resolver = ResolverPagoHandler(operador, Pasarela([entero]), lease=timedelta(60), margen_fallido=SIN_MARGEN)
    resuelto = await resolver(pago.id_pago, operador="ana", fallido="transfer revertido por soporte")
    guardado = await repo.obtener(pago.id_pago)
    assert (guardado.estado, guardado.mensaje_error) == (EstadoPago.FALLIDO, "transfer revertido por soporte")
    assert resuelto.resolucion.transferencias == (entero,)  # what Stripe showed is recorded with it


async def test_sin_transfer_group_no_se_deja_fallido(postgres):
    """A payment stored before transfers carried transfer_group: no transfer listed proves nothing."""
    repo = postgres.repo()
    pago = await marcado(repo)
    async with postgres.engine.begin() as conn:
        await conn.execute(text("UPDATE pagos SET clave_desde = NULL WHERE id_pago = :i"), {"i": pago.id_pago})
    resolver = ResolverPagoHandler(
        PostgresOperadorRepository(postgres.engine), Pasarela([]), lease=timedelta(60), margen_fallido=SIN_MARGEN
    )
    with pytest.raises(OperacionRechazadaError, match="anterior a transfer_group"):
        await resolver(pago.id_pago, operador="ana", fallido="cuenta cerrada")
    assert (await repo.obtener(pago.id_pago)).estado is EstadoPago.PROCESANDO


async def test_reanudar_solo_un_pago_marcado(postgres):
    repo = postgres.repo()
    comandos = _Comandos()
    reanudar = ReanudarPagoHandler(PostgresOperadorRepository(postgres.engine), comandos)
    en_curso = (await repo.reclamar(comando(uuid.uuid4(), datetime.now(UTC)))).pago
    with pytest.raises(OperacionRechazadaError, match="no está marcado"):
        await reanudar(en_curso.id_pago)
    pago = await marcado(repo)
    reanudado = await reanudar(pago.id_pago)
    assert reanudado.comando_publicado
    assert not (await repo.obtener(pago.id_pago)).requiere_atencion
    assert [c.id_pago for c in comandos.publicados] == [pago.id_pago]
    with pytest.raises(OperacionRechazadaError, match="no está marcado"):
        await reanudar(pago.id_pago)


class _Comandos:
    def __init__(self) -> None:
        self.publicados = []

    async def publicar(self, comandos) -> None:
        self.publicados.extend(comandos)


async def test_un_solo_reenvio_de_la_dlq_a_la_vez(postgres):
    registro = PostgresRedriveLog(postgres.engine)
    async with registro.exclusivo() as primero, PostgresRedriveLog(postgres.engine).exclusivo() as segundo:
        assert (primero, segundo) == (True, False)
    async with registro.exclusivo() as despues:
        assert despues


async def test_fallido_no_justo_despues_de_la_ultima_llamada(postgres):
    """Flagged a moment ago after a timeout: the transfer may still be landing at Stripe, unlisted."""
    repo = postgres.repo()
    pago = await marcado(repo)
    resolver = ResolverPagoHandler(
        PostgresOperadorRepository(postgres.engine),
        Pasarela([]),
        lease=timedelta(60),
        margen_fallido=timedelta(minutes=5),
    )
    with pytest.raises(OperacionRechazadaError, match="PAGOS_SETTLE_MARGIN_SECONDS"):
        await resolver(pago.id_pago, operador="ana", fallido="cuenta cerrada")
    guardado = await repo.obtener(pago.id_pago)
    assert (guardado.estado, guardado.requiere_atencion) == (EstadoPago.PROCESANDO, True)
    assert not guardado.lease.vigente(datetime.now(UTC))  # nothing taken: a worker or operator may go on


async def test_un_resolver_rechazado_no_reinicia_la_espera_del_fallido(postgres):
    """The runbook's order (try `resolver`, then `--fallido`) costs no new wait: an operator's
    lookup pays nothing, so only the workers' calls start the settle margin."""
    repo = postgres.repo()
    pago = await marcado(repo)
    await calls_ended_ago(postgres.engine, pago.id_pago, timedelta(minutes=6))
    operador = PostgresOperadorRepository(postgres.engine)
    resolver = ResolverPagoHandler(operador, Pasarela([]), lease=timedelta(60), margen_fallido=timedelta(minutes=5))
    with pytest.raises(OperacionRechazadaError, match="no tiene ningún transfer"):
        await resolver(pago.id_pago, operador="ana")
    resuelto = await resolver(pago.id_pago, operador="ana", fallido="cuenta cerrada")
    assert resuelto.pago.estado is EstadoPago.FALLIDO


async def test_el_margen_del_fallido_es_del_reloj_de_la_base(postgres):
    """The margin is compared in the database: a call that ended 4 min ago (its clock) is refused,
    one that ended 6 min ago is not, whatever the operator's host says."""
    repo = postgres.repo()
    pago = await marcado(repo)
    resolver = ResolverPagoHandler(
        PostgresOperadorRepository(postgres.engine),
        Pasarela([]),
        lease=timedelta(60),
        margen_fallido=timedelta(minutes=5),
    )
    await calls_ended_ago(postgres.engine, pago.id_pago, timedelta(minutes=4))
    with pytest.raises(OperacionRechazadaError, match=r"Vuelva a intentarlo en ([0-9]|[1-5][0-9]|60) s"):
        await resolver(pago.id_pago, operador="ana", fallido="cuenta cerrada")
    await calls_ended_ago(postgres.engine, pago.id_pago, timedelta(minutes=6))
    assert (await resolver(pago.id_pago, operador="ana", fallido="cuenta cerrada")).pago.estado is EstadoPago.FALLIDO


async def test_un_resultado_del_operador_con_un_reclamo_viejo_no_se_escribe(postgres):
    """The operator's claim number fences its resolution like a worker's: a worker that claimed the
    payment after the operator's lease ran out keeps it, even with the same owner name."""
    repo = postgres.repo()
    pago = await marcado(repo)
    operador = PostgresOperadorRepository(postgres.engine)
    leido = await operador.obtener(pago.id_pago)
    tomado = Pago(**{**leido.pago.__dict__, "eventos": []})
    tomado.tomar_a_mano(Lease("operador:ana", leido.ahora + timedelta(seconds=60)), leido.ahora)
    tomado.reclamo = await operador.tomar(tomado, leido, timedelta(seconds=60), None)
    assert tomado.reclamo == leido.pago.reclamo + 1
    async with postgres.engine.begin() as conn:  # its lease ran out, and a worker claimed it
        await conn.execute(text("UPDATE pagos SET reclamo = reclamo + 1 WHERE id_pago = :i"), {"i": pago.id_pago})
    tomado.marcar_exitoso("tr_1", leido.ahora)
    resolucion = Resolucion("ana", leido.ahora, "hallado", EstadoPago.EXITOSO, ())
    assert await operador.guardar_resolucion(tomado, resolucion) is None
    assert (await repo.obtener(pago.id_pago)).estado is EstadoPago.PROCESANDO
