"""The pure calendar (`SiteBook`) and planner against the independent oracle, on random books.

A random site has a few pools (supply arriving and leaving), a power budget, customer and
internal claims, floors and now and then a dedicated-site claim. Whatever the book, the
calendar must report exactly the invariants the oracle finds broken, and the planner must
never offer a fit that breaks one, nor refuse without saying what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from neocloud.capacity.calendar import Claim, Floor, Pool, PoolKey, SiteBook, SiteInfo
from neocloud.capacity.planner import Need, Unit, earliest_fit, fit_at, shortfall, unit_gpus
from neocloud.capacity.timeline import FOREVER, Steps
from tests.capacity import oracle

SITE = 1
ACCELERATORS = {1: "H100", 2: "GB200"}
HOURS = range(0, 100)
"""Every event of a random book falls in [0, 80]: past that, nothing changes."""


class World:
    """A random site as the calendar sees it (`book`) and as the oracle does (`facts`)."""

    def __init__(self, book: SiteBook, facts: oracle.Facts) -> None:
        self.book, self.facts = book, facts

    def __repr__(self) -> str:
        f = self.facts
        return (
            f"World(power_mw={self.book.site.power_mw}, pue={self.book.site.pue}, "
            f"pools={f.pools}, claims={f.claims}, floors={f.floors})"
        )


def facts_of(book: SiteBook, batches: dict[PoolKey, list[oracle.Batch]]) -> oracle.Facts:
    """The same site as the oracle sees it: raw batches of supply, claims and floors."""
    return oracle.Facts(
        sites={SITE: oracle.SiteFacts("s1", book.site.power_mw, book.site.pue)},
        pools={
            k: oracle.PoolFacts(p.watts_per_gpu, batches.get(k, [])) for k, p in book.pools.items()
        },
        claims=[
            oracle.ClaimRow(c.contract_id, c.pool, c.start, c.end, c.gpus, c.internal, c.exclusive)
            for c in book.claims
        ],
        floors=[
            oracle.FloorRow(
                f.contract_id, f.site_id, f.accelerator_id, f.start, f.end, f.gpus, f.share
            )
            for f in book.floors
        ],
        accelerators=ACCELERATORS,
    )


@st.composite
def worlds(draw: st.DrawFn, one_accelerator: bool = False) -> World:
    pools: dict[PoolKey, Pool] = {}
    batches: dict[PoolKey, list[oracle.Batch]] = {}
    for i in range(draw(st.integers(2 if one_accelerator else 1, 3))):
        acc = 1 if one_accelerator else draw(st.sampled_from(sorted(ACCELERATORS)))
        key = (SITE, acc, f"f{i}")
        per_node = draw(st.sampled_from([1, 4, 8]))
        block = per_node * draw(st.sampled_from([1, 2, 3]))
        watts = draw(st.sampled_from([500, 700, 1650]))
        mine = [
            oracle.Batch(a, a + length, n * per_node)
            for a, length, n in draw(
                st.lists(
                    st.tuples(st.integers(0, 40), st.integers(1, 40), st.integers(1, 6)),
                    max_size=3,
                )
            )
        ]
        if draw(st.sampled_from([True, True, True, False])):  # nodes in service for good
            mine.append(oracle.Batch(0, FOREVER, draw(st.integers(1, 6)) * per_node))
        supply = Steps.from_deltas(d for b in mine for d in ((b.start, b.gpus), (b.end, -b.gpus)))
        pools[key] = Pool(SITE, acc, ACCELERATORS[acc], key[2], per_node, block, watts, supply)
        batches[key] = mine
    keys = sorted(pools)
    claims: list[Claim] = []
    for cid, (k, a, length, gpus, internal) in enumerate(
        draw(
            st.lists(
                st.tuples(
                    st.sampled_from(keys),
                    st.integers(0, 40),
                    st.integers(1, 40),
                    st.integers(1, 24),
                    st.booleans(),
                ),
                max_size=4,
            )
        ),
        start=1,
    ):
        claims.append(Claim(cid, k, a, a + length, gpus, internal))
    if draw(st.sampled_from([False] * 7 + [True])):  # now and then, a dedicated-site contract
        a, length = draw(st.integers(0, 40)), draw(st.integers(1, 40))
        for k in keys:
            claims.append(Claim(100, k, a, a + length, draw(st.integers(1, 16)), False, True))
    floors: list[Floor] = []
    for fid, (acc, a, length, floor_gpus, share) in enumerate(
        draw(
            st.lists(
                st.tuples(
                    st.sampled_from(sorted({k[1] for k in keys})),
                    st.integers(0, 40),
                    st.integers(1, 40),
                    st.one_of(st.none(), st.integers(1, 24)),
                    st.sampled_from([Decimal("0.25"), Decimal("0.5"), Decimal("0.333")]),
                ),
                max_size=2,
            )
        ),
        start=200,
    ):
        floors.append(
            Floor(
                fid, SITE, acc, a, a + length, floor_gpus, None if floor_gpus is not None else share
            )
        )
    power_mw = Decimal(draw(st.integers(1, 400) if not one_accelerator else st.integers(50, 400)))
    power_mw /= 1000
    pue = draw(st.sampled_from([Decimal("1"), Decimal("1.1"), Decimal("1.25")]))
    info = SiteInfo(SITE, "s1", pue, power_mw, 0, FOREVER)
    book = SiteBook(info, pools, claims, floors)
    return World(book, facts_of(book, batches))


def key_of(v_kind: str, pool: PoolKey | None) -> tuple[str, str, str | None, str | None]:
    """A calendar violation named as the oracle names it."""
    if v_kind == "oversold" and pool:
        return (v_kind, "s1", ACCELERATORS[pool[1]], pool[2])
    if v_kind == "floor" and pool:
        return (v_kind, "s1", ACCELERATORS[pool[1]], None)
    return (v_kind, "s1", None, None)


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_violations_are_exactly_what_the_oracle_finds_hour_by_hour(world: World) -> None:
    note(repr(world))
    expected = {(b.key, b.hour): b.amount for b in oracle.broken(world.facts, HOURS)}
    found: dict[tuple[tuple[str, str, str | None, str | None], int], int] = {}
    for v in world.book.violations(0, FOREVER):
        key = key_of(v.kind, v.pool)
        hours = [h for h in HOURS if v.start <= h < v.end]
        assert hours, f"{v} lies outside the hours anything happens"
        for h in hours:
            assert (key, h) not in found, f"{v} overlaps another violation of the same kind"
            found[(key, h)] = v.amount
        if v.kind != "exclusive":
            worst = max(expected.get((key, h), 0) for h in hours)
            assert v.amount == worst, f"{v}: the oracle's worst hour is short by {worst}"
    assert set(found) == set(expected), (
        f"calendar only: {sorted(set(found) - set(expected))[:5]}; "
        f"oracle only: {sorted(set(expected) - set(found))[:5]}"
    )


@st.composite
def needs(draw: st.DrawFn, book: SiteBook) -> Need:
    """A request shaped after one of the site's pools (sometimes of an accelerator it lacks)."""
    key = draw(st.sampled_from(sorted(book.pools)))
    unit = draw(st.sampled_from(list(Unit)))
    earliest = draw(st.integers(0, 40))
    gpus = unit_gpus(book, key, unit) * draw(st.integers(1, 12))
    if draw(st.booleans()):  # as much as all the accelerator's pools hold: several pools
        same = [k for k in book.pools if k[1] == key[1]]
        step = math.lcm(*(unit_gpus(book, k, unit) for k in same))
        total = sum(book.pools[k].supply.at(earliest) for k in same)
        gpus = max(step, total - total % step)
    return Need(
        accelerator_id=key[1] if draw(st.sampled_from([True] * 9 + [False])) else 3 - key[1],
        gpus=gpus,
        duration=draw(st.integers(1, 30)),
        earliest=earliest,
        latest=earliest + draw(st.integers(0, 20)),
        same_fabric=draw(st.booleans()),
        unit=unit,
        internal=draw(st.booleans()),
    )


@st.composite
def worlds_and_needs(draw: st.DrawFn, one_accelerator: bool = False) -> tuple[World, Need]:
    world = draw(worlds(one_accelerator))
    return world, draw(needs(world.book))


def booked(world: World, claims: list[Claim]) -> oracle.Facts:
    after = facts_of(world.book, {})
    after.pools = world.facts.pools
    after.claims = [
        *world.facts.claims,
        *(
            oracle.ClaimRow(c.contract_id, c.pool, c.start, c.end, c.gpus, c.internal, c.exclusive)
            for c in claims
        ),
    ]
    return after


@settings(max_examples=200, deadline=None)
@given(st.one_of(worlds_and_needs(), worlds_and_needs(one_accelerator=True)))
def test_the_earliest_fit_meets_the_need_and_breaks_nothing(pair: tuple[World, Need]) -> None:
    world, need = pair
    note(f"{world!r}\n{need!r}")
    book = world.book
    fit = earliest_fit(book, need)
    event("fits" if fit else "does not fit")
    event(f"parts: {len(fit.parts) if fit else 0}")
    window = range(need.earliest, need.latest + 1)
    if fit is None:
        assert all(fit_at(book, need, s) is None for s in window), "a start that fits was missed"
        return
    assert fit.gpus == need.gpus and fit.start in window
    assert fit.end == fit.start + need.duration
    assert all(fit_at(book, need, s) is None for s in range(need.earliest, fit.start)), (
        "an earlier start fits"
    )
    if need.same_fabric:
        assert len(fit.parts) == 1
    for key, gpus in fit.parts:
        assert key in book.pools and key[1] == need.accelerator_id
        assert gpus > 0 and gpus % unit_gpus(book, key, need.unit) == 0, (
            f"{gpus} GPUs of {key} is not a whole number of {need.unit.value}s"
        )
    claims = fit.claims(999, internal=need.internal)
    worse = oracle.no_worse(world.facts, booked(world, claims), 0)
    assert worse == [], f"the fit {fit.parts} at {fit.start} breaks: {worse}"
    if not world.book.violations():
        assert book.with_changes(add_claims=claims).violations() == []


@settings(max_examples=200, deadline=None)
@given(st.one_of(worlds_and_needs(), worlds_and_needs(one_accelerator=True)), st.integers(0, 60))
def test_a_refusal_says_how_much_is_missing_and_why(pair: tuple[World, Need], start: int) -> None:
    world, need = pair
    note(f"{world!r}\n{need!r}")
    if fit_at(world.book, need, start) is not None:
        return
    event("refused")
    short = shortfall(world.book, need, start)
    assert short.missing > 0, f"refused, yet nothing is missing: {short}"
    assert short.possible + short.missing == need.gpus and short.possible >= 0
    assert short.reason.strip(), short


# --- the examples these properties found, kept as plain tests -----------------------------------


def site_of(
    pools: list[tuple[str, int, list[oracle.Batch]]],
    claims: Sequence[Claim] = (),
    floors: Sequence[Floor] = (),
    power_mw: str = "1",
) -> World:
    """A site of H100 pools given as (fabric, GPUs per node, batches of supply), 500 W a GPU."""
    book_pools = {
        (SITE, 1, fabric): Pool(
            SITE,
            1,
            "H100",
            fabric,
            per_node,
            per_node,
            500,
            Steps.from_deltas(d for b in mine for d in ((b.start, b.gpus), (b.end, -b.gpus))),
        )
        for fabric, per_node, mine in pools
    }
    info = SiteInfo(SITE, "s1", Decimal(1), Decimal(power_mw), 0, FOREVER)
    book = SiteBook(info, book_pools, list(claims), list(floors))
    return World(book, facts_of(book, {(SITE, 1, f): mine for f, _, mine in pools}))


def test_an_oversell_outside_a_floors_term_is_not_a_floor_conflict() -> None:
    world = site_of(
        [("f0", 8, [oracle.Batch(0, FOREVER, 8)])],
        claims=[Claim(1, (SITE, 1, "f0"), 0, 5, 12)],
        floors=[Floor(2, SITE, 1, 10, 20, 4)],
    )
    assert [v.kind for v in world.book.violations()] == ["oversold"]


def test_a_floor_above_supply_that_no_customer_holds_is_no_conflict() -> None:
    world = site_of(
        [("f0", 8, [oracle.Batch(0, FOREVER, 8)])],
        claims=[Claim(1, (SITE, 1, "f0"), 0, 10, 4, internal=True)],
        floors=[Floor(1, SITE, 1, 0, 10, 16)],
    )
    assert world.book.violations() == []
    assert oracle.broken(world.facts, HOURS) == []


def test_a_refusal_for_want_of_power_across_pools_says_what_is_missing() -> None:
    forever = [oracle.Batch(0, FOREVER, 1)]
    world = site_of([("f0", 1, forever), ("f1", 1, forever), ("f2", 1, forever)], power_mw="0.001")
    need = Need(1, 3, 1, 0, 0)
    assert fit_at(world.book, need, 0) is None
    short = shortfall(world.book, need, 0)
    assert (short.possible, short.missing) == (2, 1) and "power" in short.reason


def test_a_split_over_pools_takes_whole_nodes_of_each() -> None:
    world = site_of(
        [
            ("f0", 4, [oracle.Batch(0, FOREVER, 4)]),
            ("f1", 1, [oracle.Batch(0, FOREVER, 11)]),
            ("f2", 4, [oracle.Batch(0, FOREVER, 24)]),
        ]
    )
    fit = earliest_fit(world.book, Need(1, 36, 4, 0, 10, unit=Unit.NODE))
    assert fit is not None and fit.start == 0
    assert sorted(fit.parts) == [((SITE, 1, "f0"), 4), ((SITE, 1, "f1"), 8), ((SITE, 1, "f2"), 24)]


def test_several_pools_together_can_start_earlier_than_one_alone() -> None:
    world = site_of(
        [
            ("f0", 1, [oracle.Batch(0, FOREVER, 1)]),
            ("f1", 1, [oracle.Batch(0, FOREVER, 4), oracle.Batch(1, 2, 4)]),
        ]
    )
    fit = earliest_fit(world.book, Need(1, 5, 1, 0, 1))
    assert fit is not None and fit.start == 0 and len(fit.parts) == 2


def test_a_refusal_names_the_floor_when_the_floor_binds_before_free_capacity() -> None:
    world = site_of(
        [("f0", 8, [oracle.Batch(0, FOREVER, 128)])],
        claims=[
            Claim(1, (SITE, 1, "f0"), 0, 10, 8, internal=True),
            Claim(2, (SITE, 1, "f0"), 0, 10, 16),
        ],
        floors=[Floor(1, SITE, 1, 0, 10, 96)],
    )
    short = shortfall(world.book, Need(1, 48, 10, 0, 0), 0)
    assert (short.possible, short.missing) == (16, 32)
    assert "floor leaves customers 16 GPUs" in short.reason
