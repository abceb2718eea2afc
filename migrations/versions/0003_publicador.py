"""outbox rows published by the process that committed them: who that is, and a NOTIFY only for the rest

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The replica that publishes this event itself right after its commit; NULL: the relays' own.
    op.add_column("outbox", sa.Column("publicador", sa.String(length=128), nullable=True))
    # Relays are woken only by events no process publishes itself: the others are theirs only if
    # that process has not published them within the grace period (their periodic look).
    op.execute(
        """
        CREATE OR REPLACE FUNCTION notificar_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM nuevos WHERE publicador IS NULL) THEN
                PERFORM pg_notify('outbox_pagos', '');
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute("DROP TRIGGER outbox_notificar ON outbox")
    op.execute(
        "CREATE TRIGGER outbox_notificar AFTER INSERT ON outbox REFERENCING NEW TABLE AS nuevos "
        "FOR EACH STATEMENT EXECUTE FUNCTION notificar_outbox()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_notificar ON outbox")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION notificar_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('outbox_pagos', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notificar AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION notificar_outbox()"
    )
    op.drop_column("outbox", "publicador")
