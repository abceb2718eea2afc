"""Unknown outcomes are bounded and looked up: a retry asks the gateway first, a key the gateway
may have forgotten is renewed only after that lookup showed nothing, and a payment flagged for
attention is not retried automatically."""

from __future__ import annotations

from datetime import timedelta

from pagos_worker.application.handlers import Accion, ProcesarPagoHandler
from pagos_worker.application.ports.pasarela import ResultadoIndeterminadoError, ResultadoPago
from pagos_worker.domain import EstadoPago, PoliticaAtencion
from tests.fakes import INDETERMINADO, FakePagoRepository, FakePasarelaDePagos
from tests.unit.test_handlers import Reloj, comando

POLITICA = PoliticaAtencion(max_intentos=3, max_antiguedad=timedelta(hours=1), vida_clave=timedelta(hours=20))


def handler(repo, pasarela, reloj, owner="w1") -> ProcesarPagoHandler:
    return ProcesarPagoHandler(repo, pasarela, owner=owner, lease=timedelta(seconds=30), atencion=POLITICA, reloj=reloj)


async def desconocido(repo, pasarela, reloj, cmd, owner="w1"):
    pasarela.respuestas[cmd.id_pago] = INDETERMINADO
    return await handler(repo, pasarela, reloj, owner)(cmd)


async def test_un_reintento_consulta_y_el_pago_hallado_se_resuelve_sin_volver_a_pagar():
    reloj = Reloj()
    repo, pasarela, cmd = FakePagoRepository(reloj), FakePasarelaDePagos(), comando()
    await desconocido(repo, pasarela, reloj, cmd)
    pasarela.transferencias[cmd.id_pago] = "tr_hecho_la_primera_vez"
    desenlace = await handler(repo, pasarela, reloj, "w2")(cmd)
    assert (desenlace.accion, desenlace.estado) == (Accion.ACK, "EXITOSO")
    assert repo.pagos[cmd.id_pago].referencia_pago == "tr_hecho_la_primera_vez"
    assert pasarela.llamadas == [cmd.id_pago]  # no second payout call
    assert pasarela.consultas == [cmd.id_pago]


async def test_el_primer_intento_no_consulta():
    reloj = Reloj()
    repo, pasarela, cmd = FakePagoRepository(reloj), FakePasarelaDePagos(), comando()
    await handler(repo, pasarela, reloj)(cmd)
    assert pasarela.consultas == []


async def test_sin_transfer_y_con_la_clave_joven_se_reintenta_con_la_misma_clave():
    reloj = Reloj()
    repo, pasarela, cmd = FakePagoRepository(reloj), FakePasarelaDePagos(), comando()
    await desconocido(repo, pasarela, reloj, cmd)
    pasarela.respuestas.clear()
    reloj.ahora += timedelta(hours=19)
    await handler(repo, pasarela, reloj, "w2")(cmd)
    assert pasarela.claves == [(cmd.id_pago, 1), (cmd.id_pago, 1)]
    assert repo.pagos[cmd.id_pago].estado is EstadoPago.EXITOSO


async def test_sin_transfer_y_con_la_clave_vieja_se_usa_una_generacion_nueva_registrada_antes():
    reloj = Reloj()
    repo, pasarela, cmd = FakePagoRepository(reloj), FakePasarelaDePagos(), comando()
    await desconocido(repo, pasarela, reloj, cmd)
    reloj.ahora += timedelta(hours=21)
    registradas = []
    renovar = repo.renovar_clave

    async def renovar_y_anotar(pago, politica):
        registradas.append((pago.generacion_clave + 1, list(pasarela.claves)))
        return await renovar(pago, politica)

    repo.renovar_clave = renovar_y_anotar
    pasarela.respuestas.clear()
    await handler(repo, pasarela, reloj, "w2")(cmd)
    assert pasarela.claves == [(cmd.id_pago, 1), (cmd.id_pago, 2)]
    assert registradas == [(2, [(cmd.id_pago, 1)])]  # recorded before the call that uses it
    assert repo.pagos[cmd.id_pago].generacion_clave == 2
    assert repo.pagos[cmd.id_pago].clave_desde == reloj.ahora


async def test_si_otra_replica_se_lo_llevo_no_se_paga_con_la_clave_nueva():
    reloj = Reloj()
    repo, pasarela, cmd = FakePagoRepository(reloj), FakePasarelaDePagos(), comando()
    await desconocido(repo, pasarela, reloj, cmd)
    reloj.ahora += timedelta(hours=21)

    async def ya_no_es_mio(_pago, _politica):
        return None

    repo.renovar_clave = ya_no_es_mio
    pasarela.respuestas.clear()
    desenlace = await handler(repo, pasarela, reloj, "w2")(cmd)
    assert desenlace.accion is Accion.REINTENTAR
    assert pasarela.claves == [(cmd.id_pago, 1)]


async def test_si_la_consulta_no_responde_es_un_resultado_desconocido_mas():
    reloj = Reloj()
    repo, pasarela, cmd = FakePagoRepository(reloj), FakePasarelaDePagos(), comando()
    await desconocido(repo, pasarela, reloj, cmd)
    pasarela.respuestas.clear()
    pasarela.transferencias[cmd.id_pago] = ResultadoIndeterminadoError("la consulta no respondió")
    desenlace = await handler(repo, pasarela, reloj, "w2")(cmd)
    assert desenlace.accion is Accion.REINTENTAR
    assert pasarela.llamadas == [cmd.id_pago]
    assert repo.pagos[cmd.id_pago].ultimo_error == "la consulta no respondió"


async def test_agotados_los_reintentos_automaticos_solo_un_operador_lo_reanuda():
    reloj = Reloj()
    repo, pasarela, cmd = FakePagoRepository(reloj), FakePasarelaDePagos(), comando()
    for owner in ("w1", "w2"):
        assert (await desconocido(repo, pasarela, reloj, cmd, owner)).accion is Accion.REINTENTAR
    tercero = await desconocido(repo, pasarela, reloj, cmd, "w3")
    assert (tercero.accion, tercero.motivo) == (Accion.ACK, "requiere_atencion")  # the command is settled
    assert repo.pagos[cmd.id_pago].requiere_atencion
    pasarela.respuestas[cmd.id_pago] = ResultadoPago.exito("tr_x")
    llamadas = len(pasarela.llamadas)
    reloj.ahora += timedelta(minutes=5)
    otra = await handler(repo, pasarela, reloj, "w4")(cmd)  # a redelivery, or a duplicate command
    assert (otra.accion, otra.motivo) == (Accion.ACK, "requiere_atencion")
    assert len(pasarela.llamadas) == llamadas  # not retried automatically
    reloj.ahora += timedelta(hours=1)
    assert await repo.atascados(timedelta(0), 10) == []  # nor by the reconciler
    assert repo.pagos[cmd.id_pago].estado is EstadoPago.PROCESANDO


async def test_un_pago_anterior_a_las_generaciones_no_renueva_su_clave():
    """Stored before transfer_group existed, it may have been paid where the lookup cannot see:
    past the key's age it is left to an operator, never paid with a new key."""
    reloj = Reloj()
    repo, pasarela, cmd = FakePagoRepository(reloj), FakePasarelaDePagos(), comando()
    await desconocido(repo, pasarela, reloj, cmd)
    repo.pagos[cmd.id_pago].clave_desde = None  # as read back from a row stored before migration 0006
    reloj.ahora += timedelta(hours=21)
    pasarela.respuestas.clear()
    desenlace = await handler(repo, pasarela, reloj, "w2")(cmd)
    assert (desenlace.accion, desenlace.motivo) == (Accion.ACK, "requiere_atencion")  # 21 h old: flagged
    assert repo.pagos[cmd.id_pago].requiere_atencion
    assert pasarela.claves == [(cmd.id_pago, 1)]  # no second call, no new key
    assert "anterior a transfer_group" in repo.pagos[cmd.id_pago].ultimo_error
