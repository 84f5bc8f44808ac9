"""The three ledgers of a contract, bucketed by hour or day (pure core + one loading query).

Measured GPU-seconds are the intervals as received; excluded ones are their exclusion rows by
reason; billable = measured - excluded. An interval that crosses a bucket boundary is split
at it, in whole seconds, so the buckets of a range sum exactly to the range's total.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth.principal import Principal
from neocloud.contracts.models import Contract
from neocloud.core.errors import InvalidInput, NotFound
from neocloud.metering.events import MAX_INTERVAL_S, epoch
from neocloud.metering.models import UsageExclusion, UsageInterval
from neocloud.metering.store import at
from neocloud.tenants.models import Tenant


class Step(enum.StrEnum):
    HOUR = "hour"
    DAY = "day"

    @property
    def seconds(self) -> int:
        return 3600 if self is Step.HOUR else 86_400


MAX_BUCKETS = 24 * 93
"""At most about three months of hours (or six years of days) in one answer."""


@dataclass
class Bucket:
    measured: int = 0
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def billable(self) -> int:
        return self.measured - sum(self.excluded.values())


Stretch = tuple[int, int, int]
"""(start, end, gpus): seconds since the epoch and GPUs."""


def spread(
    into: dict[int, Bucket],
    stretches: Iterable[Stretch],
    lo: int,
    hi: int,
    step: int,
    reason: str | None = None,
) -> None:
    """Add the GPU-seconds of each stretch, clipped to [lo, hi), to the buckets it crosses
    (keyed by bucket start); as measured, or as excluded for `reason`."""
    for start, end, gpus in stretches:
        a, b = max(start, lo), min(end, hi)
        while a < b:
            bucket_start = a - a % step
            cut = min(b, bucket_start + step)
            bucket = into.setdefault(bucket_start, Bucket())
            amount = gpus * (cut - a)
            if reason is None:
                bucket.measured += amount
            else:
                bucket.excluded[reason] = bucket.excluded.get(reason, 0) + amount
            a = cut


@dataclass(frozen=True)
class LedgerRow:
    contract: str
    tenant: str
    start: datetime
    end: datetime
    bucket: Bucket


def ledgers(
    session: Session,
    *,
    actor: Principal,
    contract: str | None,
    start: datetime | None,
    end: datetime | None,
    step: Step,
    now: datetime,
) -> tuple[datetime, datetime, list[LedgerRow]]:
    """Per contract and bucket in [start, end) (widened to whole buckets; default: the last
    day): measured, billable and excluded GPU-seconds. Returns the range and the rows."""
    size = step.seconds
    hi = epoch(end) if end else epoch(now) - epoch(now) % size + size
    lo = epoch(start) if start else hi - 86_400
    lo, hi = lo - lo % size, hi + (-hi) % size
    if hi <= lo:
        raise InvalidInput("end: must be after start")
    if (hi - lo) // size > MAX_BUCKETS:
        raise InvalidInput(f"start: at most {MAX_BUCKETS} buckets of a {step} in one answer")
    who = sa.select(Contract.id, Contract.name, Tenant.name).join(
        Tenant, Tenant.id == Contract.tenant_id
    )
    who = actor.scope(who, Contract.tenant_id)
    if contract is not None:
        who = who.where(Contract.name == contract)
    names = {cid: (name, tenant) for cid, name, tenant in session.execute(who)}
    if contract is not None and not names:
        raise NotFound(f"contract '{contract}' not found")
    lo_at, hi_at = at(lo), at(hi)
    earliest = at(lo - MAX_INTERVAL_S)
    intervals = sa.select(
        UsageInterval.contract_id, UsageInterval.start_at, UsageInterval.end_at, UsageInterval.gpus
    ).where(
        UsageInterval.start_at < hi_at,
        UsageInterval.start_at >= earliest,
        UsageInterval.end_at > lo_at,
    )
    excluded = (
        sa.select(
            UsageExclusion.contract_id,
            UsageExclusion.start_at,
            UsageExclusion.end_at,
            UsageInterval.gpus,
            UsageExclusion.reason,
        )
        .join(UsageInterval, UsageInterval.id == UsageExclusion.interval_id)
        .where(
            UsageExclusion.start_at < hi_at,
            UsageExclusion.start_at >= earliest,
            UsageExclusion.end_at > lo_at,
        )
    )
    if contract is not None or actor.tenant_id is not None:
        ids = list(names)
        intervals = intervals.where(UsageInterval.contract_id.in_(ids))
        excluded = excluded.where(UsageExclusion.contract_id.in_(ids))
    buckets: dict[int, dict[int, Bucket]] = defaultdict(dict)
    for cid, s, e, gpus in session.execute(intervals):
        spread(buckets[cid], [(epoch(s), epoch(e), gpus)], lo, hi, size)
    for cid, s, e, gpus, reason in session.execute(excluded):
        spread(buckets[cid], [(epoch(s), epoch(e), gpus)], lo, hi, size, str(reason))
    rows = []
    for cid in sorted(buckets, key=lambda c: names.get(c, ("", ""))):
        if cid not in names:
            continue
        name, tenant = names[cid]
        for bucket_start in sorted(buckets[cid]):
            rows.append(
                LedgerRow(
                    name,
                    tenant,
                    at(bucket_start),
                    at(bucket_start) + timedelta(seconds=size),
                    buckets[cid][bucket_start],
                )
            )
    return lo_at, hi_at, rows
