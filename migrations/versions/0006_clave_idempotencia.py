"""the gateway's idempotency key generation of each payment, and since when it is used

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Stripe forgets a key after at least 24 h: a retry past that would pay again under the same
    # key. A payment's key is renewed (generation n+1, recorded before it is sent) only after a
    # lookup at the gateway showed no transfer; `clave_desde` says when the generation began (NULL
    # for payments stored before this column: their creation time stands in).
    op.add_column("pagos", sa.Column("clave_generacion", sa.SmallInteger(), nullable=False, server_default="1"))
    op.add_column("pagos", sa.Column("clave_desde", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("pagos", "clave_desde")
    op.drop_column("pagos", "clave_generacion")
