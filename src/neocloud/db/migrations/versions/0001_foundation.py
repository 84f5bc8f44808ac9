"""foundation: tenants, tokens, audit, fleet

Revision ID: 0001
Revises:
Create Date: 2026-11-23 19:40:56.021538
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import neocloud.db.base

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accelerators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("vendor", sa.String(length=63), nullable=False),
        sa.Column("memory_gb", sa.Numeric(precision=14, scale=3), nullable=False),
        sa.Column("tdp_w", sa.Integer(), nullable=False),
        sa.Column("bf16_tflops", sa.Numeric(precision=14, scale=3), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("created_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accelerators")),
        sa.UniqueConstraint("name", name=op.f("uq_accelerators_name")),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("actor_token_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(length=32), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=64), nullable=False),
        sa.Column("object_id", sa.String(length=200), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "idempotency_records",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", "key", name=op.f("pk_idempotency_records")),
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("location", sa.String(length=200), nullable=False),
        sa.Column("power_mw", sa.Numeric(precision=14, scale=3), nullable=False),
        sa.Column("pue", sa.Numeric(precision=5, scale=3), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "planned",
                "building",
                "live",
                "draining",
                "retired",
                name="sitestate",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("planned_on", sa.Date(), nullable=True),
        sa.Column("building_on", sa.Date(), nullable=True),
        sa.Column("live_on", sa.Date(), nullable=True),
        sa.Column("draining_on", sa.Date(), nullable=True),
        sa.Column("retired_on", sa.Date(), nullable=True),
        sa.Column("created_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("name", name=op.f("uq_sites_name")),
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "internal",
                "customer",
                name="tenantkind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("contact_email", sa.String(length=320), nullable=True),
        sa.Column("created_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("name", name=op.f("uq_tenants_name")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "ops",
                "sales",
                "finance",
                "tenant-admin",
                "tenant-viewer",
                name="role",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["api_tokens.id"],
            name=op.f("fk_api_tokens_created_by_id_api_tokens"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_api_tokens_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("fabric", sa.String(length=63), nullable=True),
        sa.Column("accelerator_id", sa.Integer(), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.Column("gpus_per_node", sa.Integer(), nullable=False),
        sa.Column("power_kw_per_node", sa.Numeric(precision=14, scale=3), nullable=False),
        sa.Column("expected_on", sa.Date(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "scheduled",
                "delivered",
                "cancelled",
                name="deliverystate",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("supplier", sa.String(length=120), nullable=True),
        sa.Column("created_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["accelerator_id"],
            ["accelerators.id"],
            name=op.f("fk_deliveries_accelerator_id_accelerators"),
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_deliveries_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("name", name=op.f("uq_deliveries_name")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deliveries_site_id"), ["site_id"], unique=False)

    op.create_table(
        "fabrics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("created_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_fabrics_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fabrics")),
        sa.UniqueConstraint("site_id", "name", name=op.f("uq_fabrics_site_id_name")),
    )
    with op.batch_alter_table("fabrics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fabrics_site_id"), ["site_id"], unique=False)

    op.create_table(
        "blocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fabric_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("created_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["fabric_id"],
            ["fabrics.id"],
            name=op.f("fk_blocks_fabric_id_fabrics"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blocks")),
        sa.UniqueConstraint("fabric_id", "name", name=op.f("uq_blocks_fabric_id_name")),
    )
    with op.batch_alter_table("blocks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blocks_fabric_id"), ["fabric_id"], unique=False)

    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("fabric_id", sa.Integer(), nullable=False),
        sa.Column("block_id", sa.Integer(), nullable=False),
        sa.Column("accelerator_id", sa.Integer(), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("power_kw", sa.Numeric(precision=14, scale=3), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "burn-in",
                "available",
                "allocated",
                "draining",
                "failed",
                "repair",
                "retired",
                name="nodestate",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("created_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", neocloud.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["accelerator_id"],
            ["accelerators.id"],
            name=op.f("fk_nodes_accelerator_id_accelerators"),
        ),
        sa.ForeignKeyConstraint(["block_id"], ["blocks.id"], name=op.f("fk_nodes_block_id_blocks")),
        sa.ForeignKeyConstraint(
            ["fabric_id"], ["fabrics.id"], name=op.f("fk_nodes_fabric_id_fabrics")
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_nodes_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodes")),
        sa.UniqueConstraint("name", name=op.f("uq_nodes_name")),
    )
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nodes_block_id"), ["block_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_nodes_fabric_id"), ["fabric_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_nodes_site_id"), ["site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_nodes_state"), ["state"], unique=False)

    accelerators = sa.table(
        "accelerators",
        sa.column("name", sa.String),
        sa.column("vendor", sa.String),
        sa.column("memory_gb", sa.Numeric),
        sa.column("tdp_w", sa.Integer),
        sa.column("bf16_tflops", sa.Numeric),
        sa.column("builtin", sa.Boolean),
        sa.column("created_at", neocloud.db.base.UTCDateTime()),
        sa.column("updated_at", neocloud.db.base.UTCDateTime()),
    )
    now = datetime.now(UTC)
    # Dense BF16 TFLOP/s per GPU and TDP from NVIDIA's data sheets.
    builtin = [
        ("H100", "NVIDIA", 80, 700, 989),
        ("H200", "NVIDIA", 141, 700, 989),
        ("B200", "NVIDIA", 180, 1000, 2250),
        ("GB200", "NVIDIA", 186, 1200, 2500),
        ("GB300", "NVIDIA", 288, 1400, 2500),
    ]
    op.bulk_insert(
        accelerators,
        [
            {
                "name": n,
                "vendor": v,
                "memory_gb": m,
                "tdp_w": w,
                "bf16_tflops": t,
                "builtin": True,
                "created_at": now,
                "updated_at": now,
            }
            for n, v, m, w, t in builtin
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nodes_state"))
        batch_op.drop_index(batch_op.f("ix_nodes_site_id"))
        batch_op.drop_index(batch_op.f("ix_nodes_fabric_id"))
        batch_op.drop_index(batch_op.f("ix_nodes_block_id"))

    op.drop_table("nodes")
    with op.batch_alter_table("blocks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blocks_fabric_id"))

    op.drop_table("blocks")
    with op.batch_alter_table("fabrics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fabrics_site_id"))

    op.drop_table("fabrics")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_site_id"))

    op.drop_table("deliveries")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_tenant_id"))

    op.drop_table("api_tokens")
    op.drop_table("tenants")
    op.drop_table("sites")
    op.drop_table("idempotency_records")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))
        batch_op.drop_index(batch_op.f("ix_audit_events_action"))

    op.drop_table("audit_events")
    op.drop_table("accelerators")
