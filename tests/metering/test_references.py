"""usage_intervals has no foreign keys (they were half of PostgreSQL's CPU per ingested
event); these tests hold the two things that make that safe: the ingest stores no interval
whose tenant, contract or node does not exist, and nothing can delete one of those."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from neocloud.api.app import api_router
from neocloud.contracts.models import Contract
from neocloud.fleet.models import Node
from neocloud.metering.models import UsageInterval
from neocloud.tenants.models import Tenant
from tests.metering.conftest import World
from tests.metering.helpers import post, usage


def dangling(factory: sessionmaker[Session]) -> int:
    """Stored intervals whose tenant, contract or node is missing, or whose tenant is not
    the contract's."""
    with factory() as s:
        return (
            s.scalar(
                sa.select(sa.func.count())
                .select_from(UsageInterval)
                .outerjoin(Tenant, Tenant.id == UsageInterval.tenant_id)
                .outerjoin(Contract, Contract.id == UsageInterval.contract_id)
                .outerjoin(Node, Node.id == UsageInterval.node_id)
                .where(
                    sa.or_(
                        Tenant.id.is_(None),
                        Contract.id.is_(None),
                        Node.id.is_(None),
                        Contract.tenant_id != UsageInterval.tenant_id,
                    )
                )
            )
            or 0
        )


def test_a_batch_of_good_and_unknown_references_stores_only_whole_references(
    world: World, factory: sessionmaker[Session]
) -> None:
    start = world.since + timedelta(seconds=1)
    end = start + timedelta(seconds=60)
    node = world.nodes[0]
    events = [
        usage(world.contract, node, 8, start, end, id="good"),
        usage("no-such-contract", node, 8, start, end, id="contract"),
        usage(world.contract, "no-such-node", 8, start, end, id="node"),
        usage("", node, 8, start, end, id="empty"),
    ]
    out = post(world.c, events)
    assert out["accepted"] == 1
    assert {r["id"] for r in out["rejected"]} == {"contract", "node", "empty"}
    with factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(UsageInterval)) == 1
    assert dangling(factory) == 0


def test_no_route_deletes_a_tenant_a_contract_or_a_node() -> None:
    deletes = {
        route.path for route in api_router().routes if "DELETE" in getattr(route, "methods", set())
    }
    for kept in ("/v1/tenants/{tenant}", "/v1/contracts/{contract}", "/v1/nodes/{node}"):
        assert kept not in deletes


def test_a_site_with_nodes_cannot_be_deleted(world: World, factory: sessionmaker[Session]) -> None:
    r = world.c.delete("/v1/sites/east")
    assert r.status_code == 409
    assert "retire it instead" in r.json()["detail"]
    with factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Node)) > 0
