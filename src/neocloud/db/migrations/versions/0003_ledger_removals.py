"""capacity ledgers count removals

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 11:00:00

A cached calendar book used to learn whether claims of a site were deleted by counting the
site's claims on every refresh; the ledger now counts removals instead.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("capacity_ledgers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("removals", sa.BigInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("capacity_ledgers", schema=None) as batch_op:
        batch_op.drop_column("removals")
