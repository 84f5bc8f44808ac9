"""The metering tests' world: the contract tests' small fleet, and a contract of acme's that
started this hour and holds two east nodes (placed by a reconcile)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from neocloud.contracts.models import Contract
from neocloud.fleet.models import Node
from neocloud.placement.models import Allocation
from tests.contracts.world import build
from tests.metering.helpers import parse
from tests.placement.api import book_now, reconcile

CONTRACT = "train-m"


@dataclass
class World:
    c: TestClient
    contract: str
    nodes: list[str]
    since: datetime
    """When the contract got its nodes (the reconcile)."""
    term_start: datetime


def held(factory: sessionmaker[Session], contract: str) -> list[tuple[str, datetime]]:
    """The nodes a contract holds now and since when, from placement's allocation rows."""
    with factory() as s:
        rows = s.execute(
            sa.select(Node.name, Allocation.since)
            .join(Allocation, Allocation.node_id == Node.id)
            .join(Contract, Contract.id == Allocation.contract_id)
            .where(Contract.name == contract, Allocation.until.is_(None))
            .order_by(Node.name)
        ).all()
    return [(name, since) for name, since in rows]


@pytest.fixture
def world(client: TestClient, factory: sessionmaker[Session]) -> World:
    build(client)
    booked = book_now(client, CONTRACT, 16, site="east")
    reconcile(client)
    nodes = held(factory, CONTRACT)
    assert len(nodes) == 2
    return World(
        c=client,
        contract=CONTRACT,
        nodes=[name for name, _ in nodes],
        since=max(since for _, since in nodes),
        term_start=parse(booked["start"]),
    )
