"""Hourly rollups, the pure part: what a batch of usage or telemetry adds to each hour, and
what a contract held and drew in an hour that is being closed.

Usage rollups are sums, so they are kept by adding each new event's share to the hours it
crosses: the order events arrive in does not matter, a late event lands in its own hour, and
a duplicate (never stored twice) adds nothing. An interval that crosses an hour boundary is
split at it in whole seconds, so an interval's hours sum exactly to its GPU-seconds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from neocloud.metering.models import ExclusionReason
from neocloud.metering.split import Piece

HOUR = 3600
REASONS = (
    ExclusionReason.OUTSIDE_TERM,
    ExclusionReason.NODE_DOWN,
    ExclusionReason.MAINTENANCE,
    ExclusionReason.OPERATOR_FAULT,
)
REASON_COLUMN = {
    ExclusionReason.OUTSIDE_TERM: "outside_term_gpu_seconds",
    ExclusionReason.NODE_DOWN: "node_down_gpu_seconds",
    ExclusionReason.MAINTENANCE: "maintenance_gpu_seconds",
    ExclusionReason.OPERATOR_FAULT: "operator_fault_gpu_seconds",
}

Where = tuple[int, int, int]
"""(contract id, site id, accelerator id)."""
Key = tuple[int, int, int, int]
"""(hour, contract id, site id, accelerator id); hours since the epoch."""


@dataclass(slots=True)
class Delta:
    """GPU-seconds to add to one rollup row."""

    measured: int = 0
    excluded: dict[ExclusionReason, int] = field(default_factory=dict)

    @property
    def billable(self) -> int:
        return self.measured - sum(self.excluded.values())


def hours_of(start: int, end: int) -> Iterable[tuple[int, int]]:
    """(hour, seconds) for each hour that [start, end) crosses."""
    a = start
    while a < end:
        hour = a // HOUR
        cut = min(end, (hour + 1) * HOUR)
        yield hour, cut - a
        a = cut


def add_usage(
    into: dict[Key, Delta],
    where: Where,
    gpus: int,
    start: int,
    end: int,
    pieces: Sequence[Piece] = (),
    sign: int = 1,
) -> None:
    """Add an interval (and the excluded pieces of it) to the hours it crosses."""
    c, s, a = where
    if start // HOUR == (end - 1) // HOUR:  # the usual case: within one hour
        delta = into.get((start // HOUR, c, s, a))
        if delta is None:
            delta = into[(start // HOUR, c, s, a)] = Delta()
        delta.measured += sign * gpus * (end - start)
    else:
        for hour, seconds in hours_of(start, end):
            into.setdefault((hour, c, s, a), Delta()).measured += sign * gpus * seconds
    add_excluded(into, where, gpus, pieces, sign)


def add_excluded(
    into: dict[Key, Delta], where: Where, gpus: int, pieces: Sequence[Piece], sign: int = 1
) -> None:
    """Add excluded pieces (without their measure: an operator's exclusion recorded later
    moves GPU-seconds from billable to excluded)."""
    c, s, a = where
    for p in pieces:
        for hour, seconds in hours_of(p.start, p.end):
            excluded = into.setdefault((hour, c, s, a), Delta()).excluded
            excluded[p.reason] = excluded.get(p.reason, 0) + sign * gpus * seconds


@dataclass(slots=True)
class NodeHourDelta:
    samples: int = 0
    utilization_pct: float = 0.0
    power_w: float = 0.0


def add_sample(
    into: dict[tuple[int, int], NodeHourDelta],
    node_id: int,
    time: int,
    utilization_pct: float,
    power_w: float,
) -> None:
    delta = into.get((node_id, time // HOUR))
    if delta is None:
        delta = into[(node_id, time // HOUR)] = NodeHourDelta()
    delta.samples += 1
    delta.utilization_pct += utilization_pct
    delta.power_w += power_w


@dataclass(frozen=True, slots=True)
class Holding:
    """A node held by a contract (an allocation or a spot lease) over [since, until)."""

    contract_id: int
    node_id: int
    site_id: int
    accelerator_id: int
    gpus: int
    since: int
    until: int


Loans = dict[tuple[int, int], list[tuple[int, int]]]
"""(node id, lending contract id) -> the stretches [start, end) its node was lent to spot."""


def without_loans(holdings: Iterable[Holding], loans: Loans) -> list[Holding]:
    """Each node-second is held by one contract: while a lendable contract has lent its node
    to spot, the spot lease holds it (and draws its power), so the owner's holding is cut by
    its loans. The owner still holds the node for placement and billing; only what the
    rollups count as allocated (and the energy) moves to the borrower."""
    out: list[Holding] = []
    for h in holdings:
        lent = loans.get((h.node_id, h.contract_id))
        if not lent:
            out.append(h)
            continue
        at = h.since
        for a, b in sorted(lent):
            if a > at:
                out.append(replace(h, since=at, until=min(a, h.until)))
            at = max(at, b)
            if at >= h.until:
                break
        if at < h.until:
            out.append(replace(h, since=at))
    return [h for h in out if h.since < h.until]


@dataclass(slots=True)
class Closed:
    allocated_gpu_seconds: int = 0
    energy_wh: float = 0.0


def close_hours(
    hours: Iterable[int],
    holdings: Iterable[Holding],
    node_power: dict[tuple[int, int], tuple[int, float]],
) -> dict[Key, Closed]:
    """What each contract held (GPU-seconds) and drew (watt-hours) at each site and on each
    accelerator in each of `hours`. `node_power`: (node id, hour) -> (samples, sum of the
    GPUs' power in W) over that hour; a node's draw is its GPUs' mean power times its GPUs,
    for the part of the hour the contract held it. A node with no telemetry drew nothing we
    can show.

    Whole hours held are added per contract with a difference array over the range (a
    holding of months costs two entries, not one per hour), the partial hours at its ends
    one by one."""
    wanted = sorted(set(hours))
    if not wanted:
        return {}
    h0, h1 = wanted[0], wanted[-1] + 1
    lo, hi = h0 * HOUR, h1 * HOUR
    diffs: dict[Where, np.ndarray[Any, np.dtype[np.int64]]] = {}
    out: dict[Key, Closed] = defaultdict(Closed)
    by_node: dict[int, list[Holding]] = defaultdict(list)
    for h in holdings:
        a, b = max(h.since, lo), min(h.until, hi)
        if a >= b:
            continue
        by_node[h.node_id].append(h)
        where = (h.contract_id, h.site_id, h.accelerator_id)
        first, last = a // HOUR, (b - 1) // HOUR
        if first == last:
            out[(first, *where)].allocated_gpu_seconds += h.gpus * (b - a)
            continue
        full_from, full_to = -(-a // HOUR), b // HOUR
        if a % HOUR:
            out[(first, *where)].allocated_gpu_seconds += h.gpus * (full_from * HOUR - a)
        if b % HOUR:
            out[(last, *where)].allocated_gpu_seconds += h.gpus * (b - full_to * HOUR)
        if full_from < full_to:
            diff = diffs.get(where)
            if diff is None:
                diff = diffs[where] = np.zeros(h1 - h0 + 1, dtype=np.int64)
            diff[full_from - h0] += h.gpus * HOUR
            diff[full_to - h0] -= h.gpus * HOUR
    for where, diff in diffs.items():
        held = np.cumsum(diff[:-1])
        for i in np.flatnonzero(held):
            out[(h0 + int(i), *where)].allocated_gpu_seconds += int(held[i])
    for (node, hour), (samples, watts) in node_power.items():
        if not samples:
            continue
        for h in by_node.get(node, ()):
            seconds = min(h.until, (hour + 1) * HOUR) - max(h.since, hour * HOUR)
            if seconds > 0:
                row = out[(hour, h.contract_id, h.site_id, h.accelerator_id)]
                row.energy_wh += watts / samples * h.gpus * seconds / HOUR
    keep = set(wanted)
    return {k: v for k, v in out.items() if k[0] in keep}
