"""The reconciliation's SQL: Stripe's side in this session's temporary tables, compared with the
service's books set by set. A transfer belongs to the payment its `transfer_group` names; amounts
are compared in minor units, never as floats. Each statement of `CLASIFICAR` names its parameters
among: the window (desde, hasta), the test-mode destination template (plantilla, NULL without
one), and the instant before which reversals are settled (asentado: the database's now less the
settle margin; a reversal made since, at Stripe or here, may still have its other side on its way)."""

from __future__ import annotations

from pagos_worker.domain.dinero import Moneda

_ESCALAS = " ".join(f"WHEN '{m.value}' THEN {10**m.decimales}" for m in Moneda)


def _menores(monto: str, moneda: str) -> str:
    """A Numeric amount of ours in the currency's minor units (exact: at most its decimals)."""
    return f"({monto} * CASE {moneda} {_ESCALAS} END)::bigint"


TEMPORALES = """
CREATE TEMP TABLE conc_transfers (referencia text NOT NULL, transfer_group text, id_pago uuid, amount bigint,
    currency text, destination text, created timestamptz, amount_reversed bigint, en_ventana boolean NOT NULL);
CREATE INDEX ON conc_transfers (id_pago);
CREATE INDEX ON conc_transfers (referencia);
CREATE TEMP TABLE conc_reversos (referencia text NOT NULL, transfer text NOT NULL, amount bigint, currency text,
    id_reverso_texto text, id_reverso uuid, created timestamptz);
CREATE INDEX ON conc_reversos (transfer);
CREATE TEMP TABLE conc_destinos (id_afiliado text PRIMARY KEY, destino text NOT NULL);
CREATE TEMP TABLE conc_buscados (id_pago uuid PRIMARY KEY);
CREATE TEMP TABLE conc_reversados (id_pago uuid PRIMARY KEY);
CREATE TEMP TABLE conc_dobles (id_pago uuid PRIMARY KEY);
CREATE TEMP TABLE conc_diferencias (clase text NOT NULL, id_pago uuid, id_reverso uuid, referencia text,
    servicio jsonb NOT NULL, pasarela jsonb NOT NULL);
"""
COLUMNAS_TRANSFERS = [
    "referencia", "transfer_group", "id_pago", "amount", "currency", "destination", "created", "amount_reversed",
    "en_ventana",
]  # fmt: skip
COLUMNAS_REVERSOS = ["referencia", "transfer", "amount", "currency", "id_reverso_texto", "id_reverso", "created"]

# Under the lock no other run is going on: one still EN_CURSO was cut short (a crash, a kill).
INTERRUMPIDAS = """
UPDATE conciliaciones SET estado = 'FALLIDA', terminada = now(),
    error = 'interrumpida: su proceso terminó antes de registrar el resultado'
WHERE estado = 'EN_CURSO'
"""
ULTIMA_PROGRAMADA = "SELECT max(iniciada) FROM conciliaciones WHERE origen = 'programada' AND estado = 'COMPLETA'"
INICIAR = """
INSERT INTO conciliaciones (desde, hasta, origen, estado, iniciada) VALUES ($1, $2, $3, 'EN_CURSO', now())
RETURNING id
"""
_PAGADO = "p.estado IN ('EXITOSO', 'REVERSADO')"
_EN_VENTANA = "p.fecha_procesamiento >= $1 AND p.fecha_procesamiento < $2"

# Payments to look up one by one (every transfer of theirs, whenever created): paid in the window
# with no transfer in it (one created before the window), with one that is not the transfer we
# recorded (a second one: the first may be outside the window), with a reversal of ours that
# ended in the window (its transfer is older), or with a reversal made at Stripe in the window
# (the dashboard's too: `conc_reversados`, from the balance transactions). Each is looked up once a run.
POR_BUSCAR = f"""
SELECT id_pago FROM (
    SELECT p.id_pago FROM pagos p
    WHERE {_PAGADO} AND {_EN_VENTANA} AND NOT EXISTS (SELECT 1 FROM conc_transfers t WHERE t.id_pago = p.id_pago)
    UNION
    SELECT t.id_pago FROM conc_transfers t JOIN pagos p ON p.id_pago = t.id_pago
    WHERE {_PAGADO} AND t.referencia IS DISTINCT FROM p.referencia_pago
    UNION
    SELECT v.id_pago FROM reversos v
    WHERE v.estado IN ('EXITOSO', 'FALLIDO') AND v.fecha_procesamiento >= $1 AND v.fecha_procesamiento < $2
        AND NOT EXISTS (SELECT 1 FROM conc_transfers t WHERE t.id_pago = v.id_pago)
    UNION
    SELECT r.id_pago FROM conc_reversados r
    WHERE NOT EXISTS (SELECT 1 FROM conc_transfers t WHERE t.id_pago = r.id_pago)
) x
WHERE NOT EXISTS (SELECT 1 FROM conc_buscados b WHERE b.id_pago = x.id_pago)
ORDER BY id_pago LIMIT $3
"""  # noqa: S608 - fixed fragments, no input
OLVIDAR_PAGO = """
WITH t AS (DELETE FROM conc_transfers WHERE id_pago = $1 RETURNING referencia)
DELETE FROM conc_reversos WHERE transfer IN (SELECT referencia FROM t)
"""

_PAGO = f"""jsonb_build_object('id_pago', p.id_pago, 'estado', p.estado, 'id_afiliado', p.id_afiliado,
    'unidades_menores', {_menores("p.monto", "p.moneda")}, 'moneda', p.moneda,
    'reversado_unidades_menores', {_menores("p.monto_reversado", "p.moneda")}, 'referencia_pago', p.referencia_pago,
    'fecha_procesamiento', p.fecha_procesamiento, 'anulado_por', p.anulado_por)"""
_TRANSFER = """jsonb_build_object('referencia', t.referencia, 'transfer_group', t.transfer_group,
    'unidades_menores', t.amount, 'moneda', t.currency, 'destino', t.destination, 'creada', t.created,
    'revertido_unidades_menores', t.amount_reversed, 'en_ventana', t.en_ventana)"""
_REVERSAL = """jsonb_build_object('referencia', r.referencia, 'transfer', r.transfer, 'unidades_menores', r.amount,
    'moneda', r.currency, 'id_reverso', r.id_reverso_texto)"""
_REVERSO = f"""jsonb_build_object('id_reverso', v.id_reverso, 'id_pago', v.id_pago, 'estado', v.estado,
    'unidades_menores', {_menores("v.monto", "v.moneda")}, 'moneda', v.moneda,
    'referencia_reverso', v.referencia_reverso, 'fecha_procesamiento', v.fecha_procesamiento)"""
# The payments Stripe shows more than one transfer of (few): computed once, by a hash aggregate
# over Stripe's side alone. A payment with one transfer is the only kind that can coincide.
DOBLES = """
TRUNCATE conc_dobles;
INSERT INTO conc_dobles
SELECT id_pago FROM conc_transfers WHERE id_pago IS NOT NULL GROUP BY id_pago HAVING count(*) > 1;
ANALYZE conc_dobles;
"""
_UNICAS = """(SELECT * FROM conc_transfers u WHERE u.id_pago IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM conc_dobles d WHERE d.id_pago = u.id_pago))"""
_INSERTAR = "INSERT INTO conc_diferencias (clase, id_pago, id_reverso, referencia, servicio, pasarela)"

TRANSFERENCIA_SIN_EXITO = f"""{_INSERTAR}
SELECT 'transferencia_sin_exito', t.id_pago, NULL, t.referencia,
    CASE WHEN p.id_pago IS NULL THEN '{{}}'::jsonb ELSE {_PAGO} END, {_TRANSFER}
FROM conc_transfers t LEFT JOIN pagos p ON p.id_pago = t.id_pago
WHERE (p.id_pago IS NULL OR NOT ({_PAGADO}))
    -- A payment a worker holds now, or gave back less than the settle margin ago, is in flight: its
    -- outcome may be on its way (one stuck, its lease long expired, is judged).
    AND NOT (p.estado IN ('PENDIENTE', 'PROCESANDO') AND p.lease_expira IS NOT NULL AND p.lease_expira >= $1)
"""  # noqa: S608
TRANSFERENCIAS_MULTIPLES = f"""{_INSERTAR}
SELECT 'transferencias_multiples', p.id_pago, NULL, NULL, {_PAGO},
    jsonb_build_object('transferencias', (SELECT jsonb_agg({_TRANSFER} ORDER BY t.created, t.referencia)
                                          FROM conc_transfers t WHERE t.id_pago = p.id_pago))
FROM conc_dobles d JOIN pagos p ON p.id_pago = d.id_pago
WHERE {_PAGADO}
"""  # noqa: S608
IMPORTE_DISTINTO = f"""{_INSERTAR}
SELECT 'importe_distinto', p.id_pago, NULL, t.referencia, {_PAGO}, {_TRANSFER}
FROM {_UNICAS} t JOIN pagos p ON p.id_pago = t.id_pago
WHERE {_PAGADO}
    AND (t.amount IS DISTINCT FROM {_menores("p.monto", "p.moneda")} OR t.currency IS DISTINCT FROM p.moneda)
"""  # noqa: S608
# The affiliate's account: the mapping file's, else the test-mode template's; none, no check.
DESTINO_DISTINTO = f"""{_INSERTAR}
SELECT 'destino_distinto', p.id_pago, NULL, t.referencia,
    {_PAGO} || jsonb_build_object('destino_esperado', e.destino), {_TRANSFER}
FROM {_UNICAS} t JOIN pagos p ON p.id_pago = t.id_pago
LEFT JOIN conc_destinos d ON d.id_afiliado = p.id_afiliado
CROSS JOIN LATERAL (SELECT coalesce(d.destino, replace($1::text, '{{id_afiliado}}', p.id_afiliado)) AS destino) e
WHERE {_PAGADO} AND e.destino IS NOT NULL AND t.destination IS DISTINCT FROM e.destino
"""  # noqa: S608
# A reversal at Stripe without our id, with one we never recorded, or with another payment's.
REVERSO_EXTERNO = f"""{_INSERTAR}
SELECT 'reverso_externo', t.id_pago, r.id_reverso, r.referencia,
    CASE WHEN v.id_reverso IS NULL THEN '{{}}'::jsonb ELSE {_REVERSO} END,
    {_REVERSAL} || jsonb_build_object('transfer', {_TRANSFER})
FROM conc_reversos r JOIN conc_transfers t ON t.referencia = r.transfer
LEFT JOIN reversos v ON v.id_reverso = r.id_reverso
WHERE (v.id_reverso IS NULL OR v.id_pago IS DISTINCT FROM t.id_pago) AND r.created < $1
"""  # noqa: S608
# Ours at Stripe that we do not hold as done, as that very reversal.
REVERSO_SIN_REGISTRO = f"""{_INSERTAR}
SELECT 'reverso_sin_registro', t.id_pago, v.id_reverso, r.referencia, {_REVERSO}, {_REVERSAL}
FROM conc_reversos r JOIN conc_transfers t ON t.referencia = r.transfer
JOIN reversos v ON v.id_reverso = r.id_reverso AND v.id_pago = t.id_pago
WHERE (v.estado <> 'EXITOSO' OR v.referencia_reverso IS DISTINCT FROM r.referencia) AND r.created < $1
"""  # noqa: S608
REVERSO_IMPORTE_DISTINTO = f"""{_INSERTAR}
SELECT 'importe_distinto', t.id_pago, v.id_reverso, r.referencia, {_REVERSO}, {_REVERSAL}
FROM conc_reversos r JOIN conc_transfers t ON t.referencia = r.transfer
JOIN reversos v ON v.id_reverso = r.id_reverso AND v.id_pago = t.id_pago
WHERE v.estado = 'EXITOSO' AND v.referencia_reverso = r.referencia
    AND (r.amount IS DISTINCT FROM {_menores("v.monto", "v.moneda")} OR r.currency IS DISTINCT FROM v.moneda)
"""  # noqa: S608
# Ours done, of a payment whose transfers were read, that none of them lists.
REVERSO_FALTANTE = f"""{_INSERTAR}
SELECT 'reverso_faltante', v.id_pago, v.id_reverso, v.referencia_reverso, {_REVERSO}, '{{}}'::jsonb
FROM reversos v
WHERE v.estado = 'EXITOSO' AND v.fecha_procesamiento < $1
    AND EXISTS (SELECT 1 FROM conc_transfers t WHERE t.id_pago = v.id_pago)
    AND NOT EXISTS (SELECT 1 FROM conc_reversos r JOIN conc_transfers t ON t.referencia = r.transfer
                    WHERE t.id_pago = v.id_pago AND r.referencia = v.referencia_reverso)
"""  # noqa: S608
# Paid in the window, and no transfer of it at all (every one of its transfers was looked up); or
# paid, and Stripe's one transfer of it is another than the one we recorded.
EXITOSO_SIN_TRANSFERENCIA = f"""{_INSERTAR}
SELECT 'exitoso_sin_transferencia', p.id_pago, NULL, p.referencia_pago, {_PAGO}, '{{}}'::jsonb
FROM pagos p
WHERE {_PAGADO} AND {_EN_VENTANA} AND NOT EXISTS (SELECT 1 FROM conc_transfers t WHERE t.id_pago = p.id_pago)
UNION ALL
-- Or its one transfer at Stripe is not the one we recorded: what we reported does not exist there.
SELECT 'exitoso_sin_transferencia', p.id_pago, NULL::uuid, p.referencia_pago, {_PAGO}, {_TRANSFER}
FROM {_UNICAS} t JOIN pagos p ON p.id_pago = t.id_pago
WHERE {_PAGADO} AND t.referencia IS DISTINCT FROM p.referencia_pago
"""  # noqa: S608

# (statement, its parameters among desde, hasta, plantilla)
CLASIFICAR: list[tuple[str, tuple[str, ...]]] = [
    (TRANSFERENCIA_SIN_EXITO, ("asentado",)),
    (TRANSFERENCIAS_MULTIPLES, ()),
    (IMPORTE_DISTINTO, ()),
    (DESTINO_DISTINTO, ("plantilla",)),
    (REVERSO_EXTERNO, ("asentado",)),
    (REVERSO_SIN_REGISTRO, ("asentado",)),
    (REVERSO_IMPORTE_DISTINTO, ()),
    (REVERSO_FALTANTE, ("asentado",)),
    (EXITOSO_SIN_TRANSFERENCIA, ("desde", "hasta")),
]
COINCIDEN = f"""
SELECT count(*) FROM {_UNICAS} t
JOIN pagos p ON p.id_pago = t.id_pago AND {_PAGADO}
WHERE NOT EXISTS (SELECT 1 FROM conc_diferencias d WHERE d.id_pago = t.id_pago)
"""  # noqa: S608
DIFERENCIAS = """
SELECT clase, id_pago, id_reverso, referencia, servicio::text AS servicio, pasarela::text AS pasarela
FROM conc_diferencias ORDER BY clase, id_pago NULLS FIRST, referencia LIMIT $1
"""
# The same difference still unresolved from an earlier run is not recorded again.
REGISTRAR_DIFERENCIAS = """
INSERT INTO diferencias (conciliacion, clase, id_pago, id_reverso, referencia, servicio, pasarela, creada)
SELECT $1, d.clase, d.id_pago, d.id_reverso, d.referencia, d.servicio, d.pasarela, now()
FROM conc_diferencias d
WHERE NOT EXISTS (
    SELECT 1 FROM diferencias x
    WHERE x.resuelta_en IS NULL AND x.clase = d.clase AND x.id_pago IS NOT DISTINCT FROM d.id_pago
        AND x.id_reverso IS NOT DISTINCT FROM d.id_reverso AND x.referencia IS NOT DISTINCT FROM d.referencia)
"""
COMPLETAR = """
UPDATE conciliaciones SET estado = 'COMPLETA', terminada = now(), peticiones = $2, conteos = $3::jsonb
WHERE id = $1 AND estado = 'EN_CURSO' RETURNING estado
"""
FALLAR = """
UPDATE conciliaciones SET estado = 'FALLIDA', terminada = now(), error = $2, peticiones = $3
WHERE id = $1 AND estado = 'EN_CURSO'
"""
