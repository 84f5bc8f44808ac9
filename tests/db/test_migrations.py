"""Migrations are the only way the schema changes: upgrade -> check -> downgrade on both
databases, and the declarative base's conventions hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from neocloud.db import migrate
from neocloud.db.engine import make_engine, transaction
from neocloud.tenants.models import Tenant, TenantKind


def test_upgrade_check_downgrade(db_url: str) -> None:
    engine = make_engine(db_url)
    assert migrate.is_up_to_date(engine)
    migrate.check(db_url)  # the models and the migrated schema agree
    migrate.downgrade(db_url, "base")
    tables = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    assert tables == set()
    migrate.upgrade(db_url)
    assert migrate.is_up_to_date(engine)
    with engine.connect() as conn:
        builtin = (
            conn.execute(sa.text("SELECT name FROM accelerators WHERE builtin ORDER BY name"))
            .scalars()
            .all()
        )
    assert builtin == ["B200", "GB200", "GB300", "H100", "H200"]
    engine.dispose()


def test_constraints_follow_the_naming_convention(db_url: str) -> None:
    engine = make_engine(db_url)
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("nodes")["name"] == "pk_nodes"
    uniques = {u["name"] for u in inspector.get_unique_constraints("fabrics")}
    assert "uq_fabrics_site_id_name" in uniques
    engine.dispose()


def test_timestamps_come_back_as_utc(factory: sessionmaker[Session]) -> None:
    local = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=-6)))
    with transaction(factory) as s:
        s.add(
            Tenant(
                name="t",
                display_name="T",
                kind=TenantKind.CUSTOMER,
                created_at=local,
                updated_at=local,
            )
        )
    with factory() as s:
        tenant = s.scalars(sa.select(Tenant)).one()
        assert tenant.created_at == datetime(2026, 1, 1, 18, 0, tzinfo=UTC)
        assert tenant.created_at.tzinfo is not None


def test_enums_are_stored_as_their_values(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as s:
        s.add(Tenant(name="t", display_name="T", kind=TenantKind.INTERNAL))
    with factory() as s:
        assert s.execute(sa.text("SELECT kind FROM tenants")).scalar() == "internal"
        with pytest.raises(sa.exc.StatementError):
            s.execute(sa.update(Tenant).values(kind="nonsense"))
