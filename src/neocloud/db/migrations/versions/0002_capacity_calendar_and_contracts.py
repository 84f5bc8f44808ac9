"""capacity calendar and contracts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 17:54:16.819774
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import neocloud.db.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "capacity_ledgers",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_capacity_ledgers_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("site_id", name=op.f("pk_capacity_ledgers")),
    )
    op.create_table(
        "quotes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=True),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("created_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_quotes_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quotes")),
    )
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quotes_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "contracts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "reserved",
                "dedicated-site",
                "on-demand",
                "spot",
                "internal",
                name="contracttype",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "quoted",
                "booked",
                "active",
                "ended",
                "cancelled",
                name="contractstate",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("accelerator_id", sa.Integer(), nullable=True),
        sa.Column("gpus", sa.Integer(), nullable=True),
        sa.Column("mw", sa.Numeric(precision=10, scale=3), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("sites", sa.JSON(), nullable=True),
        sa.Column("same_fabric", sa.Boolean(), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("start_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "price_model",
            sa.Enum(
                "per-gpu-hour",
                "monthly-fee",
                "per-mw-month",
                name="pricemodel",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("price", sa.Numeric(precision=20, scale=6), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("commitment", sa.Numeric(precision=20, scale=6), nullable=True),
        sa.Column("take_or_pay", sa.Boolean(), nullable=False),
        sa.Column("prepayment_pct", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("sla_tier", sa.String(length=32), nullable=False),
        sa.Column("lendable", sa.Boolean(), nullable=False),
        sa.Column("notice_minutes", sa.Integer(), nullable=True),
        sa.Column("floors", sa.JSON(), nullable=True),
        sa.Column("quote_id", sa.Integer(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("booked_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("notes", sa.String(length=2000), nullable=True),
        sa.Column("created_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["accelerator_id"],
            ["accelerators.id"],
            name=op.f("fk_contracts_accelerator_id_accelerators"),
        ),
        sa.ForeignKeyConstraint(
            ["quote_id"], ["quotes.id"], name=op.f("fk_contracts_quote_id_quotes")
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_contracts_site_id_sites")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_contracts_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contracts")),
        sa.UniqueConstraint("name", name=op.f("uq_contracts_name")),
    )
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contracts_site_id"), ["site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contracts_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_contracts_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "capacity_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("accelerator_id", sa.Integer(), nullable=False),
        sa.Column("fabric", sa.String(length=63), nullable=False),
        sa.Column("start_h", sa.Integer(), nullable=False),
        sa.Column("end_h", sa.Integer(), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("internal", sa.Boolean(), nullable=False),
        sa.Column("exclusive", sa.Boolean(), nullable=False),
        sa.CheckConstraint("end_h > start_h", name=op.f("ck_capacity_claims_ends_after_start")),
        sa.CheckConstraint("gpus > 0", name=op.f("ck_capacity_claims_gpus_positive")),
        sa.ForeignKeyConstraint(
            ["accelerator_id"],
            ["accelerators.id"],
            name=op.f("fk_capacity_claims_accelerator_id_accelerators"),
        ),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_capacity_claims_contract_id_contracts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_capacity_claims_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capacity_claims")),
    )
    with op.batch_alter_table("capacity_claims", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_capacity_claims_contract_id"), ["contract_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_capacity_claims_site_id"), ["site_id"], unique=False)

    op.create_table(
        "capacity_floors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("accelerator_id", sa.Integer(), nullable=False),
        sa.Column("start_h", sa.Integer(), nullable=False),
        sa.Column("end_h", sa.Integer(), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=True),
        sa.Column("share", sa.Numeric(precision=5, scale=4), nullable=True),
        sa.ForeignKeyConstraint(
            ["accelerator_id"],
            ["accelerators.id"],
            name=op.f("fk_capacity_floors_accelerator_id_accelerators"),
        ),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_capacity_floors_contract_id_contracts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_capacity_floors_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capacity_floors")),
    )
    with op.batch_alter_table("capacity_floors", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_capacity_floors_contract_id"), ["contract_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_capacity_floors_site_id"), ["site_id"], unique=False)

    op.create_table(
        "contract_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_contract_revisions_contract_id_contracts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_revisions")),
        sa.UniqueConstraint(
            "contract_id", "revision", name=op.f("uq_contract_revisions_contract_id_revision")
        ),
    )
    with op.batch_alter_table("contract_revisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contract_revisions_contract_id"), ["contract_id"], unique=False
        )

    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("supply_generation", sa.BigInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:

    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("supply_generation")

    with op.batch_alter_table("contract_revisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contract_revisions_contract_id"))

    op.drop_table("contract_revisions")
    with op.batch_alter_table("capacity_floors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_capacity_floors_site_id"))
        batch_op.drop_index(batch_op.f("ix_capacity_floors_contract_id"))

    op.drop_table("capacity_floors")
    with op.batch_alter_table("capacity_claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_capacity_claims_site_id"))
        batch_op.drop_index(batch_op.f("ix_capacity_claims_contract_id"))

    op.drop_table("capacity_claims")
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contracts_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_contracts_state"))
        batch_op.drop_index(batch_op.f("ix_contracts_site_id"))

    op.drop_table("contracts")
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quotes_tenant_id"))

    op.drop_table("quotes")
    op.drop_table("capacity_ledgers")
