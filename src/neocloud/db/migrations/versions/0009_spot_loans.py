"""spot leases on idle nodes of lendable contracts (loans)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 17:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("spot_leases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lent_by_contract_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_spot_leases_lent_by_contract_id"), ["lent_by_contract_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_spot_leases_lent_by_contract_id_contracts"),
            "contracts",
            ["lent_by_contract_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("spot_leases", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_spot_leases_lent_by_contract_id_contracts"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_spot_leases_lent_by_contract_id"))
        batch_op.drop_column("lent_by_contract_id")
