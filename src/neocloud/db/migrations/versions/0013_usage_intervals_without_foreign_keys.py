"""usage_intervals: no foreign keys on tenant, contract and node (checked in bulk at ingest)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 22:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEYS = (
    ("fk_usage_intervals_tenant_id_tenants", "tenants", "tenant_id"),
    ("fk_usage_intervals_contract_id_contracts", "contracts", "contract_id"),
    ("fk_usage_intervals_node_id_nodes", "nodes", "node_id"),
)


def upgrade() -> None:
    with op.batch_alter_table("usage_intervals") as batch:
        for name, _table, _column in FOREIGN_KEYS:
            batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("usage_intervals") as batch:
        for name, table, column in FOREIGN_KEYS:
            batch.create_foreign_key(name, table, [column], ["id"], ondelete="CASCADE")
