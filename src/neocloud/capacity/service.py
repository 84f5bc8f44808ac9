"""Reading the calendar: supply / committed / free per pool over time, and conflicts."""

from __future__ import annotations

import calendar as months
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.capacity import state
from neocloud.capacity.calendar import Claim, PoolKey, SiteBook, Violation
from neocloud.capacity.schemas import (
    Bucket,
    CapacityOut,
    ConflictOut,
    Group,
    PoolSeries,
    ShortContract,
    Step,
)
from neocloud.capacity.timeline import FOREVER, Hour, add, at_hour, hour_of
from neocloud.contracts.relocation import Holder, holders
from neocloud.core.errors import InvalidInput
from neocloud.core.timeutil import utcnow
from neocloud.fleet.models import Accelerator

MAX_CELLS = 200_000
MAX_YEARS = 40
STEP_HOURS = {Step.HOUR: 1, Step.DAY: 24, Step.WEEK: 168}


def buckets(start: Hour, end: Hour, step: Step) -> Iterator[tuple[Hour, Hour]]:
    if step is Step.MONTH:
        t = at_hour(start)
        while hour_of(t) < end:
            days = months.monthrange(t.year, t.month)[1]
            first = t.replace(day=1, hour=0)
            nxt = hour_of(first) + days * 24
            yield hour_of(t), min(nxt, end)
            t = at_hour(nxt)
        return
    size = STEP_HOURS[step]
    for a in range(start, end, size):
        yield a, min(a + size, end)


def capacity(
    session: Session,
    *,
    actor: Principal,
    start: datetime,
    end: datetime,
    step: Step = Step.DAY,
    site: str | None = None,
    accelerator: str | None = None,
    group: Group = Group.POOL,
) -> CapacityOut:
    actor.demand(Permission.CAPACITY_READ)
    a, b = hour_of(start), hour_of(end)
    if b <= a:
        raise InvalidInput(
            "end must be after start", errors=[{"loc": ["query", "end"], "msg": "not after start"}]
        )
    if b - a > MAX_YEARS * 8760:
        raise InvalidInput(
            f"end: the range may span at most {MAX_YEARS} years",
            errors=[{"loc": ["query", "end"], "msg": "range too long"}],
        )
    spans = list(buckets(a, b, step))
    books = state.CACHE.books(session)
    accs = dict(session.execute(sa.select(Accelerator.id, Accelerator.name)).all())
    if site and all(bk.site.name != site for bk in books.values()):
        raise InvalidInput(
            f"site: unknown site '{site}'", errors=[{"loc": ["query", "site"], "msg": "unknown"}]
        )
    if accelerator and accelerator not in accs.values():
        raise InvalidInput(
            f"accelerator: unknown accelerator '{accelerator}'",
            errors=[{"loc": ["query", "accelerator"], "msg": "unknown"}],
        )
    chosen = [
        (book, key)
        for book in books.values()
        if not site or book.site.name == site
        for key in sorted(book.pools, key=lambda k: (accs.get(k[1], ""), k[2]))
        if not accelerator or accs.get(key[1]) == accelerator
    ]
    rows: dict[tuple[int, int, str], list[tuple[SiteBook, PoolKey]]] = {}
    for book, key in chosen:
        fabric = key[2] if group is Group.POOL else "*"
        rows.setdefault((book.site.id, key[1], fabric), []).append((book, key))
    if not spans or len(spans) * max(1, len(rows)) > MAX_CELLS:
        raise InvalidInput(
            f"{len(rows)} pools x {len(spans) or 'too many'} {step.value}s is more than "
            f"{MAX_CELLS} cells: use a coarser step, a shorter range, or filter by site",
            errors=[{"loc": ["query", "step"], "msg": "too many cells"}],
        )
    pools = [_series(members, fabric, accs, spans) for (_, _, fabric), members in rows.items()]
    return CapacityOut(start=at_hour(a), end=at_hour(b), step=step, pools=pools)


def _series(
    members: list[tuple[SiteBook, PoolKey]],
    fabric: str,
    accs: dict[int, str],
    spans: list[tuple[Hour, Hour]],
) -> PoolSeries:
    """One row of the calendar: a pool, or several pools of a site's accelerator summed
    hour by hour before the least and the most of each bucket are taken (so a bucket of the
    sum never adds up tight hours that fall at different times in different fabrics)."""
    book, key = members[0]
    pools = [book.pools[k] for _, k in members]
    if len(members) == 1:
        supply, committed, free = pools[0].supply, book.committed_in(key), book.pool_free(key)
    else:
        supply = add(*(p.supply for p in pools))
        committed = add(*(book.committed_in(k) for _, k in members))
        free = add(*(book.pool_free(k) for _, k in members))
    return PoolSeries(
        site=book.site.name,
        accelerator=accs.get(key[1], str(key[1])),
        fabric=fabric,
        gpus_per_node=max(p.gpus_per_node for p in pools),
        block_gpus=max(p.block_gpus for p in pools),
        out_of_service=sum(p.out_of_service for p in pools),
        series=[
            Bucket(
                start=at_hour(x),
                end=at_hour(y),
                supply=supply.min_over(x, y),
                committed=committed.max_over(x, y),
                free=free.min_over(x, y),
            )
            for x, y in spans
        ],
    )


CSV_COLUMNS = [
    "site",
    "accelerator",
    "fabric",
    "start",
    "end",
    "supply",
    "committed",
    "free",
    "out_of_service",
]


def capacity_csv(report: CapacityOut) -> str:
    lines = [",".join(CSV_COLUMNS)]
    for p in report.pools:
        for s in p.series:
            lines.append(
                ",".join(
                    str(v)
                    for v in (
                        p.site,
                        p.accelerator,
                        p.fabric,
                        s.start.isoformat(),
                        s.end.isoformat(),
                        s.supply,
                        s.committed,
                        s.free,
                        p.out_of_service,
                    )
                )
            )
    return "\n".join(lines) + "\n"


def conflicts(
    session: Session,
    *,
    actor: Principal,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[ConflictOut]:
    """Every broken invariant from `start` (default: now), with the contracts left short.

    Nothing is dropped or shrunk: the newest contracts in a pool are reported short first.
    """
    actor.demand(Permission.CAPACITY_READ)
    a = hour_of(start) if start else hour_of(utcnow())
    b = hour_of(end) if end else FOREVER
    if b <= a:
        raise InvalidInput(
            "end must be after start", errors=[{"loc": ["query", "end"], "msg": "not after start"}]
        )
    books = state.CACHE.books(session)
    who = holders(session, books)
    accs = dict(session.execute(sa.select(Accelerator.id, Accelerator.name)).all())
    out: list[ConflictOut] = []
    for book in books.values():
        for v in book.violations(a, b):
            out.append(_conflict(book, v, who, accs))
    return sorted(out, key=lambda c: (c.start, c.site, c.kind))


def _conflict(
    book: SiteBook, v: Violation, who: dict[int, Holder], accs: dict[int, str]
) -> ConflictOut:
    site = book.site.name
    live = [c for c in book.claims if c.overlaps(v.start, v.end + 1 if v.end == v.start else v.end)]
    acc = accs.get(v.pool[1]) if v.pool else None
    if v.kind == "oversold" and v.pool:
        involved = [c for c in live if c.pool == v.pool]
        detail = f"{v.amount} {acc} GPUs more are committed in {site}/{v.pool[2]} than supplied"
        short = _lifo(involved, v.amount, who)
        fabric: str | None = v.pool[2]
        amount, unit = Decimal(v.amount), "gpus"
    elif v.kind == "floor" and v.pool:
        involved = [c for c in live if c.pool[1] == v.pool[1] and not c.internal]
        detail = f"customers hold {v.amount} {acc} GPUs of the internal floor at {site}"
        short, fabric, amount, unit = (
            _lifo(involved, v.amount, who),
            None,
            Decimal(v.amount),
            "gpus",
        )
    elif v.kind == "power":
        per = max((p.watts_per_gpu for p in book.pools.values()), default=1) or 1
        gpus = -(-v.amount // per)
        detail = (
            f"commitments at {site} need {v.amount / 1e6:.3f} MW of IT load more than its power"
        )
        short, fabric = _lifo(live, gpus, who), None
        amount, unit = (
            (Decimal(v.amount) * book.site.pue / 1_000_000).quantize(Decimal("0.001")),
            "mw",
        )
    else:
        detail = f"{site} is held by a dedicated-site contract and by others at once"
        involved = [c for c in live if not c.exclusive]
        short = _lifo(involved, sum(c.gpus for c in involved), who)
        fabric, amount, unit = None, Decimal(v.amount), "contracts"
    return ConflictOut(
        kind=v.kind,
        site=site,
        accelerator=acc,
        fabric=fabric,
        start=at_hour(v.start),
        end=at_hour(min(v.end, FOREVER)),
        amount=amount,
        unit=unit,
        detail=detail,
        contracts=short,
    )


def _lifo(claims: list[Claim], amount: int, who: dict[int, Holder]) -> list[ShortContract]:
    """Charge a shortfall to the most recently booked contracts first."""
    out: list[ShortContract] = []
    left = amount
    by_contract: dict[int, int] = {}
    for c in claims:
        by_contract[c.contract_id] = by_contract.get(c.contract_id, 0) + c.gpus
    for cid in sorted(by_contract, reverse=True):
        if left <= 0:
            break
        take = min(left, by_contract[cid])
        h = who.get(cid)
        out.append(
            ShortContract(
                contract=h.name if h else str(cid), tenant=h.tenant if h else "", short_gpus=take
            )
        )
        left -= take
    return out
