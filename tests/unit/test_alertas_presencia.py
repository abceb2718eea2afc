"""The alerts on who is there, under promtool: every pod exports every metric (the API's gauges as
zeros), so with every worker gone the sums read "no work", not "no worker". WorkersAusentes reads
presence from `up` by role, and stays silent for workers KEDA scaled to zero only while the broker
reports their subscription empty; ComandosAcumulandose reads the broker alone. Then two environments
in one Prometheus, and whole systems: healthy, scaled to zero, and the defect of issue 27 (the API
healthy, every worker gone), with every alert of the rules file evaluated."""

from __future__ import annotations

from tests.reglas_helpers import JOB, NS, TOPIC, Caso, Escenario, backlog, promtool_test, rules, serie
from tests.unit.test_alertas import CASOS as CASOS_POR_ALERTA

STAGING = "pagos-staging"
TOPIC_STAGING = "persistent://staging/default/pagos-comandos"
AUSENTES = {**NS, "commands_topic": TOPIC}  # the labels WorkersAusentes carries
ACUMULANDOSE = {"cluster": "pulsar-prod", "topic": TOPIC}


def up(role: str, namespace: str = "pagos", **etiquetas: str) -> str:
    topic = TOPIC_STAGING if namespace == STAGING else TOPIC
    pod = f"pagos-worker-{role}-0" if role != "worker" else "pagos-worker-0"
    return serie("up", role, namespace, commands_topic=topic, pod=etiquetas.pop("pod", pod), **etiquetas)


API, RELAY, WORKER = up("api"), up("relay"), up("worker")
SIN_WORKERS = {API: "1x40", RELAY: "1x40"}  # the API and the relay answer; no worker pod exists
GONE_AT_10M = "1x9 stale"  # scraped until 9 min, deleted at 10 (Prometheus marks its series stale)

CASOS = [
    # The defect: workers deleted at 10 min, commands waiting. Pending from 10, firing at 15.
    Caso("WorkersAusentes", "14m", {**SIN_WORKERS, WORKER: GONE_AT_10M, backlog(): "0+5x40"}, []),
    Caso("WorkersAusentes", "15m", {**SIN_WORKERS, WORKER: GONE_AT_10M, backlog(): "0+5x40"}, [AUSENTES]),
    # Pending pods are no target at all; the broker's metrics not scraped: never taken for empty.
    Caso("WorkersAusentes", "10m", SIN_WORKERS, [AUSENTES]),
    # Crash-looping: their targets exist and answer nothing.
    Caso("WorkersAusentes", "10m", {**SIN_WORKERS, WORKER: "0x40", backlog(): "7x40"}, [AUSENTES]),
    # Scaled to zero with nothing to pay: KEDA's intent.
    Caso("WorkersAusentes", "30m", {**SIN_WORKERS, backlog(): "0x40"}, []),
    # Paused at zero (or under KEDA's activation threshold) while 50 commands wait: nobody consumes.
    Caso("WorkersAusentes", "10m", {**SIN_WORKERS, backlog(): "50x40"}, [AUSENTES]),
    # Commands arrive at 10 min; KEDA starts a worker at 12: the start is no alert.
    Caso("WorkersAusentes", "20m", {**SIN_WORKERS, backlog(): "0x9 30x2 0x30", WORKER: "_x11 1x30"}, []),
    Caso("WorkersAusentes", "20m", {**SIN_WORKERS, WORKER: "1x40", backlog(): "40x40"}, []),
    # Another environment's workers and empty backlog neither hide nor excuse this one's.
    Caso(
        "WorkersAusentes",
        "10m",
        {
            **SIN_WORKERS,
            backlog(): "12x40",
            up("api", STAGING): "1x40",
            up("worker", STAGING): "1x40",
            backlog(TOPIC_STAGING): "0x40",
        },
        [AUSENTES],
    ),
    Caso(
        "WorkersAusentes",
        "10m",
        {**SIN_WORKERS, backlog(): "0x40", up("api", STAGING): "1x40", backlog(TOPIC_STAGING): "3x40"},
        [{"namespace": STAGING, "commands_topic": TOPIC_STAGING}],
    ),
]

CASOS += [
    # Nobody consumes: the backlog grows with what arrives. Growing from 0; firing 15 min on.
    Caso("ComandosAcumulandose", "12m", {backlog(): "0+10x40"}, []),
    Caso("ComandosAcumulandose", "16m", {backlog(): "0+10x40"}, [ACUMULANDOSE]),
    # A trickle, one command every 3 minutes, never taken.
    Caso("ComandosAcumulandose", "30m", {backlog(): " ".join(str(i // 3) for i in range(60))}, [ACUMULANDOSE]),
    # Healthy: it goes up and down around what the workers hold in flight.
    Caso("ComandosAcumulandose", "40m", {backlog(): " ".join(["120 180 90 210 150 100 170"] * 7)}, []),
    Caso("ComandosAcumulandose", "40m", {backlog(): "0x50"}, []),  # empty (workers scaled to zero)
    # Load starts after a quiet night: the backlog steps up to what is in flight, once.
    *(Caso("ComandosAcumulandose", t, {backlog(): "0x10 150x40"}, []) for t in ("16m", "30m")),
    Caso("ComandosAcumulandose", "40m", {backlog(): "0+50x10 500x40"}, []),  # flat: WorkersAusentes' to say
    # A burst: 10 minutes above the budget, then drained at the account's pace.
    Caso("ComandosAcumulandose", "30m", {backlog(): "0+1000x10 9500-500x20"}, []),
    # Per topic: staging's growth is staging's alert.
    Caso(
        "ComandosAcumulandose",
        "20m",
        {backlog(): "5x40", backlog(TOPIC_STAGING, "pulsar-staging"): "0+3x40"},
        [{"cluster": "pulsar-staging", "topic": TOPIC_STAGING}],
    ),
]

CASOS += [
    Caso("RolSinReplicas", "15m", {API: "1x40", WORKER: "1x40", RELAY: GONE_AT_10M}, [{**NS, "role": "relay"}]),
    Caso("RolSinReplicas", "15m", {RELAY: "1x40", WORKER: "1x40", API: "1x9 0x30"}, [{**NS, "role": "api"}]),
    Caso("RolSinReplicas", "15m", {API: "1x40", WORKER: "1x40", RELAY: "1x40"}, []),
    Caso("RolSinReplicas", "15m", {API: "1x40", RELAY: "1x40"}, []),  # workers may be zero: not this alert
    Caso(
        "RolSinReplicas",
        "15m",
        {API: "1x40", RELAY: "1x40", up("api", STAGING): "1x40"},
        [{"namespace": STAGING, "role": "relay"}],
    ),
    Caso("MetricasSinEtiquetas", "15m", {f'up{{job="{JOB}", namespace="pagos", pod="p"}}': "1x40"}, [NS]),
    Caso("MetricasSinEtiquetas", "15m", {serie("up", "worker", commands_topic=""): "1x40"}, [NS]),
    Caso("MetricasSinEtiquetas", "15m", {serie("up", "migration"): "1x40"}, [NS]),
    Caso("MetricasSinEtiquetas", "15m", {API: "1x40", RELAY: "1x40", WORKER: "1x40"}, []),
]

# Two environments in one Prometheus: each alert is its environment's.
ETAPA = {"namespace": STAGING}
EN_CURSO = "pagos_en_curso"
DIF, ULTIMA = "conciliacion_diferencias", "conciliacion_ultima_exitosa_timestamp_segundos"
CASOS += [
    Caso(
        "OutboxEventoSinPublicar",
        "12m",
        {
            serie("outbox_pendiente_mas_antiguo_segundos", "relay"): "0.5x20",
            serie("outbox_pendiente_mas_antiguo_segundos", "relay", STAGING): "0+15x20",
        },
        [ETAPA],
    ),
    Caso(  # staging settles a lot; production holds 3 and settles none
        "PagosSinProgreso",
        "20m",
        {
            serie(EN_CURSO): "3x30",
            serie(EN_CURSO, namespace=STAGING): "5x30",
            serie("pagos_comandos_total", namespace=STAGING, motivo="procesado"): "0+500x30",
        },
        [NS],
    ),
    Caso(  # staging's fresher run found nothing: production's older run still counts for production
        "ConciliacionDiferenciaCritica",
        "20m",
        {
            serie(DIF, instance="w1", clase="transferencias_multiples"): "1x30",
            serie(ULTIMA, instance="w1"): "600x30",
            serie(DIF, namespace=STAGING, instance="s1", clase="transferencias_multiples"): "0x30",
            serie(ULTIMA, namespace=STAGING, instance="s1"): "1200x30",
        },
        [{**NS, "clase": "transferencias_multiples"}],
    ),
    Caso(
        "PagosRequierenAtencion",
        "15m",
        {serie("pagos_requieren_atencion", "api"): "0x20", serie("pagos_requieren_atencion", "api", STAGING): "4x20"},
        [ETAPA],
    ),
]


def _sistema(*, workers: bool, backlog_valores: str, hasta: int = 40) -> dict[str, str]:
    """A whole environment's series, one sample a minute for `hasta` minutes: the relay and the API
    always, the workers if `workers` (paying 50 commands a minute), the broker's backlog."""
    n = f"x{hasta}"
    series = {
        API: f"1{n}",
        RELAY: f"1{n}",
        backlog(): backlog_valores,
        serie("outbox_pendiente_mas_antiguo_segundos", "relay"): f"0.4{n}",
        serie("outbox_pendiente_mas_antiguo_segundos", "api"): f"0{n}",
        serie("pagos_requieren_atencion", "api"): f"0{n}",
        serie("pagos_reversos_requieren_atencion", "api"): f"0{n}",
        serie(EN_CURSO, "api"): f"0{n}",
        serie(ULTIMA, "relay", instance="r1"): f"0{n}",
        serie(ULTIMA, "api", instance="a1"): f"0{n}",
    }
    if workers:
        series |= {
            WORKER: f"1{n}",
            serie(EN_CURSO, instance="w1"): f"3{n}",
            serie("pagos_comandos_total", instance="w1", motivo="procesado"): f"0+50{n}",
            serie("pasarela_respuestas_total", instance="w1", status="200"): f"0+50{n}",
            serie("pasarela_circuito_abierto", instance="w1"): f"0{n}",
            serie(ULTIMA, instance="w1"): f"0+60{n}",  # a run a minute: always fresh
            serie(DIF, instance="w1", clase="coincide"): f"50{n}",
            serie("event_loop_retraso_segundos_bucket", pod="pagos-worker-0", le="0.01"): f"0+600{n}",
            serie("event_loop_retraso_segundos_bucket", pod="pagos-worker-0", le="+Inf"): f"0+600{n}",
        }
    return series


ESCENARIOS = [
    Escenario("healthy", "30m", _sistema(workers=True, backlog_valores=" ".join(["90 140 60 120 100"] * 8))),
    Escenario("scaled to zero, nothing to pay", "30m", _sistema(workers=False, backlog_valores="0x40")),
    Escenario(  # issue 27's defect 1: the API healthy, its zeros everywhere, every worker gone at 10 min
        "every worker gone, the API healthy",
        "15m",
        {
            **_sistema(workers=False, backlog_valores="0x9 40+40x30"),
            WORKER: GONE_AT_10M,
            serie(EN_CURSO, instance="w1"): "3x9 stale",
        },
        {"WorkersAusentes": [AUSENTES]},
    ),
    Escenario(  # 15 more minutes: the broker's own alert joins, whatever pagos-worker exports
        "every worker gone, 15 minutes later",
        "30m",
        {**_sistema(workers=False, backlog_valores="0x9 40+40x30"), WORKER: GONE_AT_10M},
        {"WorkersAusentes": [AUSENTES], "ComandosAcumulandose": [ACUMULANDOSE]},
    ),
]


def test_cada_alerta_probada_en_ambos_sentidos():
    todos = CASOS_POR_ALERTA + CASOS
    for rule in rules():
        resultados = [bool(c.dispara) for c in todos if c.alerta == rule["alert"]]
        assert True in resultados and False in resultados, rule["alert"]  # noqa: PT018


def test_promtool_quien_esta(tmp_path):
    promtool_test(CASOS, ESCENARIOS, tmp_path)
