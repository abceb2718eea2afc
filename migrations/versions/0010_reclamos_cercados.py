"""fenced claims: a claim number per payment, and by when its gateway calls had ended

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # `reclamo`: the fencing token, one more at every claim or operator's take; every write that
    # belongs to a claim is conditioned on it, so a holder that outlived its lease changes nothing.
    # `fin_llamadas`: the latest instant (the database's clock) at which a payout call made so far
    # could still be in flight on our side; `fin_llamadas_previas`: the same before the current
    # claim. A new key generation, and `resolver --fallido`, wait a settle margin past it.
    # `clave_agotada`: the current key's answer cannot change (Stripe replays a saved 500): the
    # next generation is due once a lookup after the settle margin finds nothing.
    # Each is a column with a constant default or none: no table rewrite. Its locks are waited for
    # only briefly (env.py's lock timeout): a migration queued behind a long transaction must not
    # stall the running release.
    op.add_column("pagos", sa.Column("reclamo", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("pagos", sa.Column("fin_llamadas", sa.DateTime(timezone=True), nullable=True))
    op.add_column("pagos", sa.Column("fin_llamadas_previas", sa.DateTime(timezone=True), nullable=True))
    op.add_column("pagos", sa.Column("clave_agotada", sa.Boolean(), nullable=False, server_default="false"))
    # A payment in flight during the upgrade: its calls end with its lease at the latest.
    # (By the lease index: no scan of every payment while the table is locked.)
    op.execute("UPDATE pagos SET fin_llamadas = lease_expira WHERE lease_expira IS NOT NULL AND estado = 'PROCESANDO'")


def downgrade() -> None:
    op.drop_column("pagos", "clave_agotada")
    op.drop_column("pagos", "fin_llamadas_previas")
    op.drop_column("pagos", "fin_llamadas")
    op.drop_column("pagos", "reclamo")
