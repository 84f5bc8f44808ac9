"""The billing tests' world: the contract tests' small fleet and tenants, contracts whose
terms began before November 2026 (a period that is over), and helpers that put usage into
metering's hourly rollups and degradations into placement's record, as those domains do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from neocloud.capacity.timeline import hour_of
from neocloud.contracts.models import Contract
from neocloud.db.engine import transaction
from neocloud.metering.models import UsageRollup
from neocloud.placement.models import Degradation
from tests.billing.helpers import at
from tests.contracts.world import build

START, END = "2026-10-01T00:00:00Z", "2027-10-01T00:00:00Z"
CONTRACTS: list[dict[str, Any]] = [
    {
        "name": "acme-res",
        "tenant": "acme",
        "type": "reserved",
        "accelerator": "H100",
        "gpus": 16,
        "site": "west",
        "price": "2.50",
        "sla_tier": "premium",
    },
    {
        "name": "acme-od",
        "tenant": "acme",
        "type": "on-demand",
        "accelerator": "H100",
        "site": "west",
        "price": "3.99",
    },
    {
        "name": "globex-spot",
        "tenant": "globex",
        "type": "spot",
        "accelerator": "GB200",
        "gpus": 8,
        "site": "west",
        "price": "3.675",
    },
    {
        "name": "globex-site",
        "tenant": "globex",
        "type": "dedicated-site",
        "site": "east",
        "price_model": "per-mw-month",
        "price": "250000",
    },
    {
        "name": "ops-train",
        "tenant": "ops",
        "type": "internal",
        "accelerator": "GB200",
        "gpus": 72,
        "unit": "block",
        "site": "west",
        "price": "4.20",
    },
]


@dataclass
class World:
    c: TestClient
    factory: sessionmaker[Session]
    contracts: dict[str, dict[str, Any]]

    def ids(self) -> dict[str, int]:
        with self.factory() as s:
            return dict(s.execute(sa.select(Contract.name, Contract.id)).tuples().all())

    def use(self, contract: str, hour: datetime, billable: int, *, site: str = "west") -> None:
        """Add billable GPU-seconds to a contract's rollup of an hour (as ingest does)."""
        with transaction(self.factory) as s:
            cid, acc = s.execute(
                sa.select(Contract.id, Contract.accelerator_id).where(Contract.name == contract)
            ).one()
            site_id = s.scalar(sa.text("SELECT id FROM sites WHERE name = :n"), {"n": site})
            h = hour_of(hour)
            row = s.get(UsageRollup, (h, cid, site_id, acc or 1))
            if row is None:
                s.add(
                    UsageRollup(
                        hour=h,
                        contract_id=cid,
                        site_id=site_id,
                        accelerator_id=acc or 1,
                        measured_gpu_seconds=billable,
                        billable_gpu_seconds=billable,
                        outside_term_gpu_seconds=0,
                        node_down_gpu_seconds=0,
                        maintenance_gpu_seconds=0,
                        operator_fault_gpu_seconds=0,
                        allocated_gpu_seconds=0,
                        energy_wh=0,
                    )
                )
            else:
                row.measured_gpu_seconds += billable
                row.billable_gpu_seconds += billable

    def degrade(self, contract: str, start: datetime, end: datetime, usable: int) -> None:
        """A stretch with fewer usable GPUs than contracted, as placement records it."""
        with transaction(self.factory) as s:
            c = s.scalar(sa.select(Contract).where(Contract.name == contract))
            assert c is not None and c.gpus
            s.add(
                Degradation(
                    contract_id=c.id,
                    started_at=start,
                    ended_at=end,
                    contracted_gpus=c.gpus,
                    usable_gpus=usable,
                    reason="test: node failed, no spare",
                )
            )


def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()


@pytest.fixture
def world(client: TestClient, factory: sessionmaker[Session]) -> World:
    build(client)
    made = {}
    for spec in CONTRACTS:
        body = {"start": START, "end": END, **spec}
        made[spec["name"]] = ok(client.post("/v1/contracts", json=body), 201)
    return World(client, factory, made)


NOV = at("2026-11-01")
D = Decimal
