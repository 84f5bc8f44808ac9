"""Lending the idle nodes of `lendable` contracts to spot, and taking them back.

A node a lendable contract holds may be leased by a spot contract when it is idle (its
telemetry says so, see `idle`), no job of ours runs on it, and no spot lease has run on it
during the idle window: telemetry taken while spot ran on the node is the spot tenant's, so
it says nothing about the owner, and the owner gets a whole quiet window after every lease
before its node is lent again. The owner keeps its allocation throughout (one contract per
node); the lease records the loan (`SpotLease.lent_by_contract_id`).

The owner needs the node back — the loan gets notice, and ends after the spot contract's
notice period — when:

- it asks (`reclaim`): "the owner reclaimed it";
- its workload resumed: usage was reported under the owner's contract on the node since the
  lease began, a job of the owner's runs on it, or the node is busy while the spot contract
  has run nothing on it (no usage reported, no job): "the owner's workload resumed";
- the contract is no longer lendable: "the owner's contract is no longer lendable".

A lent node whose owner lets it go (shrunk, ended) is free capacity: the lease goes on like
any other, until somebody takes the node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from neocloud.contracts.models import Contract
from neocloud.core.timeutil import as_utc
from neocloud.fleet.models import Node
from neocloud.metering.models import UsageInterval
from neocloud.placement import idle
from neocloud.placement.inventory import Inventory
from neocloud.placement.models import SpotLease
from neocloud.placement.store import HOLDING

RECLAIMED = "preempted: the owner reclaimed it"
RESUMED = "preempted: the owner's workload resumed"
NOT_LENDABLE = "preempted: the owner's contract is no longer lendable"
MAX_INTERVAL = timedelta(days=1)
"""The longest usage interval metering accepts (so a lookup by start time can be bounded)."""

JobsOnNodes = Mapping[int, frozenset[tuple[str, int]]]
"""Node id -> (pool, contract id) of each job of ours running on it."""


@dataclass(frozen=True, slots=True)
class Loan:
    """What is known about one lent node since its lease began."""

    telemetry: idle.NodeTelemetry | None
    owner_ran: bool
    """Usage reported under the owner's contract on the node, or a job of the owner's on it."""
    spot_ran: bool
    """The same for the spot contract."""


def owner_needs_back(loan: Loan, th: idle.Thresholds) -> bool:
    """Whether the owner's workload resumed on a lent node. Busy GPUs are the owner's only
    when the spot contract has run nothing there: otherwise they are the spot's own work."""
    return loan.owner_ran or (not loan.spot_ran and idle.is_busy(loan.telemetry, th))


class SiteLoans:
    """What one site's reconcile needs to lend and take back nodes, each read at most once
    and only when needed (a site with nothing lent and no spot contract short reads
    nothing)."""

    def __init__(
        self, session: Session, site_id: int, now: datetime, th: idle.Thresholds, jobs: JobsOnNodes
    ) -> None:
        self.session, self.site_id, self.now, self.th, self.jobs = session, site_id, now, th, jobs

    @cached_property
    def lendable(self) -> dict[int, str]:
        """The contracts that may lend their idle nodes now (id -> name)."""
        rows = self.session.execute(
            sa.select(Contract.id, Contract.name).where(
                Contract.lendable.is_(True), Contract.state.in_(HOLDING)
            )
        )
        return {int(c): str(n) for c, n in rows}

    @cached_property
    def telemetry(self) -> dict[int, idle.NodeTelemetry]:
        return idle.load(self.session, self.site_id, self.now, self.th)

    def take_back(self, leases: Sequence[SpotLease]) -> dict[int, str]:
        """Lease id -> why its owner needs the node back now, for leases on nodes their
        owner still holds (the caller checks that) and not yet on notice."""
        lent = [x for x in leases if x.lent_by_contract_id is not None and x.notice_at is None]
        if not lent:
            return {}
        last = _last_usage(self.session, lent)
        out: dict[int, str] = {}
        for lease in lent:
            owner = int(lease.lent_by_contract_id or 0)
            if owner not in self.lendable:
                out[lease.id] = NOT_LENDABLE
                continue
            loan = Loan(
                self.telemetry.get(lease.node_id),
                owner_ran=_ran(lease, owner, self.jobs, last),
                spot_ran=_ran(lease, lease.contract_id, self.jobs, last),
            )
            if owner_needs_back(loan, self.th):
                out[lease.id] = RESUMED
        return out

    def idle_nodes(self, inv: Inventory, busy: Iterable[int]) -> NDArray[np.bool_]:
        """Which nodes (by index) are idle nodes of lendable contracts, healthy, with no job
        of ours, no spot lease within the window, and not among `busy` (indices)."""
        out = np.zeros(len(inv), dtype=np.bool_)
        if not self.lendable:
            return out
        leased = _leased_within(self.session, self.site_id, self.now - self.th.window)
        skip = set(busy)
        for node_id, t in self.telemetry.items():
            try:
                i = inv.index_of(node_id)
            except KeyError:  # retired since
                continue
            if (
                i in skip
                or not inv.healthy[i]
                or int(inv.owner[i]) not in self.lendable
                or node_id in self.jobs
                or node_id in leased
            ):
                continue
            out[i] = idle.is_idle(t, int(inv.gpus[i]), self.th, self.now)
        return out


def _ran(
    lease: SpotLease, contract: int, jobs: JobsOnNodes, last: dict[tuple[int, int], datetime]
) -> bool:
    """Whether `contract` ran work on the lease's node since the lease began: a job of ours
    runs there now, or usage was reported there that ended after the lease began."""
    if any(c == contract for _, c in jobs.get(lease.node_id, frozenset())):
        return True
    end = last.get((lease.node_id, contract))
    return end is not None and end > as_utc(lease.started_at)


def _last_usage(session: Session, leases: Sequence[SpotLease]) -> dict[tuple[int, int], datetime]:
    """(node id, contract id) -> the latest end of usage reported on the leases' nodes by
    their spot contracts and owners, since the earliest lease began (one grouped query)."""
    nodes = {x.node_id for x in leases}
    contracts = {x.contract_id for x in leases} | {int(x.lent_by_contract_id or 0) for x in leases}
    since = min(as_utc(x.started_at) for x in leases) - MAX_INTERVAL
    rows = session.execute(
        sa.select(
            UsageInterval.node_id, UsageInterval.contract_id, sa.func.max(UsageInterval.end_at)
        )
        .where(
            UsageInterval.contract_id.in_(sorted(contracts)),
            UsageInterval.node_id.in_(sorted(nodes)),
            UsageInterval.start_at > since,
        )
        .group_by(UsageInterval.node_id, UsageInterval.contract_id)
    )
    return {(int(n), int(c)): idle.utc_of(end) for n, c, end in rows if end is not None}


def _leased_within(session: Session, site_id: int, since: datetime) -> set[int]:
    """The site's nodes that a spot lease ran on at some time since `since`."""
    rows = session.scalars(
        sa.select(SpotLease.node_id)
        .join(Node, Node.id == SpotLease.node_id)
        .where(
            Node.site_id == site_id,
            sa.or_(SpotLease.ended_at.is_(None), SpotLease.ended_at > since),
        )
    )
    return {int(n) for n in rows}
