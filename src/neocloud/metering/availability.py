"""Hourly availability of a contract: usable ÷ contracted GPUs, from placement's record.

Placement writes a `degradations` row for every stretch during which a contract held fewer
usable GPUs than it bought (a failed node it could not replace, a pool with no room): when it
began and ended, the contracted and the usable GPUs. For an hour, availability is the
time-weighted share of the contracted GPUs that were usable:

    availability(h) = 1 - sum over the degraded stretches in h of
                          (contracted - usable) / contracted x (seconds in h) / 3600

in exact decimals (6 places, half-even). An hour with nothing contracted has none (no
promise, nothing to credit). This is the input to billing's SLA credits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.capacity.models import CapacityClaim
from neocloud.capacity.timeline import at_hour, hour_of
from neocloud.contracts.service import contract_by_name
from neocloud.core.errors import InvalidInput
from neocloud.core.timeutil import as_utc, utcnow
from neocloud.placement.models import Degradation

PLACES = Decimal("0.000001")
MAX_HOURS = 24 * 366
"""The longest range one request may ask for (a year of hours)."""


@dataclass(frozen=True)
class Stretch:
    """A degraded stretch: [start, end) with `usable` of `contracted` GPUs (end None: open)."""

    start: datetime
    end: datetime | None
    contracted: int
    usable: int


@dataclass(frozen=True)
class Hour:
    start: datetime
    contracted_gpus: int
    lost_gpu_seconds: int
    availability: Decimal | None


def hourly(
    contracted: dict[int, int], stretches: list[Stretch], start_h: int, end_h: int, now: datetime
) -> list[Hour]:
    """Availability of each hour in [start_h, end_h) (hours since the epoch). `contracted`:
    GPUs contracted per hour (missing: none). Open stretches run until `now`."""
    lost: dict[int, Decimal] = defaultdict(Decimal)
    seconds_lost: dict[int, int] = defaultdict(int)
    for s in stretches:
        if s.contracted <= 0 or s.usable >= s.contracted:
            continue
        a, b = as_utc(s.start), as_utc(s.end) if s.end is not None else now
        share = Decimal(s.contracted - s.usable) / Decimal(s.contracted)
        h = max(hour_of(a), start_h)
        while h < end_h and at_hour(h) < b:
            lo, hi = max(a, at_hour(h)), min(b, at_hour(h + 1))
            seconds = int((hi - lo).total_seconds())
            if seconds > 0:
                lost[h] += share * seconds / 3600
                seconds_lost[h] += seconds * (s.contracted - s.usable)
            h += 1
    out: list[Hour] = []
    for h in range(start_h, end_h):
        gpus = contracted.get(h, 0)
        value = (
            max(Decimal(0), Decimal(1) - lost[h]).quantize(PLACES, ROUND_HALF_EVEN)
            if gpus
            else None
        )
        out.append(Hour(at_hour(h), gpus, seconds_lost[h] if gpus else 0, value))
    return out


def contract_availability(
    session: Session, *, actor: Principal, name: str, start: datetime, end: datetime
) -> tuple[str, list[Hour], Decimal | None]:
    """A contract's hourly availability over [start, end) (whole hours, at most a year),
    and the whole range's, weighted by contracted GPU-hours."""
    actor.demand(Permission.CONTRACTS_READ)
    if start.minute or start.second or start.microsecond or end.minute or end.second:
        raise InvalidInput(
            "start, end: whole hours only",
            errors=[{"loc": ["query", "start"], "msg": "not on the hour"}],
        )
    start_h, end_h = hour_of(start), hour_of(end)
    if end_h <= start_h:
        raise InvalidInput(
            "end: must be after start", errors=[{"loc": ["query", "end"], "msg": "before start"}]
        )
    if end_h - start_h > MAX_HOURS:
        raise InvalidInput(
            f"end: at most {MAX_HOURS} hours per request",
            errors=[{"loc": ["query", "end"], "msg": "range too long"}],
        )
    contract = contract_by_name(session, actor, name)
    contracted: dict[int, int] = defaultdict(int)
    for a, b, gpus in session.execute(
        sa.select(CapacityClaim.start_h, CapacityClaim.end_h, CapacityClaim.gpus).where(
            CapacityClaim.contract_id == contract.id,
            CapacityClaim.end_h > start_h,
            CapacityClaim.start_h < end_h,
        )
    ):
        for h in range(max(a, start_h), min(b, end_h)):
            contracted[h] += int(gpus)
    stretches = [
        Stretch(d.started_at, d.ended_at, d.contracted_gpus, d.usable_gpus)
        for d in session.scalars(
            sa.select(Degradation).where(
                Degradation.contract_id == contract.id,
                Degradation.started_at < at_hour(end_h),
                sa.or_(Degradation.ended_at.is_(None), Degradation.ended_at > at_hour(start_h)),
            )
        )
    ]
    hours = hourly(contracted, stretches, start_h, end_h, utcnow())
    weight = sum(h.contracted_gpus for h in hours)
    overall = (
        (
            sum(Decimal(h.contracted_gpus) * (h.availability or 0) for h in hours) / Decimal(weight)
        ).quantize(PLACES, ROUND_HALF_EVEN)
        if weight
        else None
    )
    return contract.name, hours, overall
