"""A cached book brought up to date must answer exactly as a book built from scratch.

The calendar cache does not reload a site after each booking: it adds the new claims to the
book it has (`SiteBook.refreshed`), keeping what they leave unchanged. Any slip there would
let a booking see free capacity that is not free, so every derived figure of a refreshed
book is compared with a fresh one, on random books and random additions.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from neocloud.capacity.calendar import Claim, Floor, Pool, PoolKey, SiteBook, SiteInfo
from neocloud.capacity.timeline import FOREVER, Steps

SITE = 1
KEYS: list[PoolKey] = [(SITE, 1, "a"), (SITE, 1, "b"), (SITE, 2, "c")]


def pools() -> dict[PoolKey, Pool]:
    return {
        k: Pool(SITE, k[1], f"acc{k[1]}", k[2], 8, 16, 700, Steps.from_deltas([(0, 64), (60, 32)]))
        for k in KEYS
    }


claims_st = st.lists(
    st.builds(
        Claim,
        st.integers(1, 6),
        st.sampled_from(KEYS),
        st.integers(0, 50),
        st.integers(51, 90),
        st.integers(1, 40),
        st.booleans(),
        st.sampled_from([False, False, False, True]),
    ),
    max_size=6,
)
floors_st = st.lists(
    st.builds(
        Floor,
        st.integers(1, 6),
        st.just(SITE),
        st.sampled_from([1, 2]),
        st.integers(0, 40),
        st.integers(41, 90),
        st.integers(1, 30),
    ),
    max_size=2,
)


def everything(book: SiteBook) -> dict[str, object]:
    """Every derived answer of a book, computed (and so memoised) in one go."""
    out: dict[str, object] = {
        "watts": book.committed_watts,
        "power": book.power_free_watts,
        "exclusive": book.exclusive_holders,
        "others": book.other_holders,
        "violations": book.violations(),
    }
    for key in book.pools:
        out[f"pool {key}"] = book.committed_in(key)
        out[f"free {key}"] = book.pool_free(key)
        for internal in (False, True):
            out[f"available {key} {internal}"] = book.available(key, internal)
            out[f"capacity {key} {internal}"] = [
                book.capacity(key, internal, a, a + 30) for a in range(0, 90, 7)
            ]
        out[f"total {key}"] = book.total_available((key,), False)
    for acc in book.accelerators:
        out[f"headroom {acc}"] = book.customer_headroom(acc)
        out[f"floor headroom {acc}"] = book.floor_headroom(acc)
        out[f"floor {acc}"] = book.floor_of(acc)
    return out


@settings(max_examples=200, deadline=None)
@given(claims_st, claims_st, floors_st, st.booleans())
def test_a_refreshed_book_answers_as_a_fresh_one(
    before: list[Claim], added: list[Claim], floors: list[Floor], floors_change: bool
) -> None:
    info = SiteInfo(SITE, "s1", Decimal("1.2"), Decimal("0.1"), 0, FOREVER)
    old = SiteBook(info, pools(), before, floors)
    everything(old)  # the old book has worked out all it knows, as a cached one has
    now = floors[:1] if floors_change else floors
    fresh = SiteBook(info, pools(), [*before, *added], now)
    refreshed = old.refreshed(info, added, now)
    assert refreshed is not None
    assert everything(refreshed) == everything(fresh)


@settings(max_examples=100, deadline=None)
@given(claims_st, st.lists(claims_st, min_size=2, max_size=4), floors_st)
def test_a_book_refreshed_again_and_again_answers_as_a_fresh_one(
    before: list[Claim], additions: list[list[Claim]], floors: list[Floor]
) -> None:
    """As a batch of bookings does: each refresh starts from the last refreshed book, whose
    figures were themselves carried over or updated, never computed from its claims."""
    info = SiteInfo(SITE, "s1", Decimal("1.2"), Decimal("0.1"), 0, FOREVER)
    book = SiteBook(info, pools(), before, floors)
    everything(book)
    claims = list(before)
    for added in additions:
        refreshed = book.refreshed(info, added, floors)
        assert refreshed is not None
        claims += added
        book = refreshed
        book.capacities(list(book.pools), False, 0, 90)  # what a fit asks, and only that
    assert everything(book) == everything(SiteBook(info, pools(), claims, floors))


def test_a_claim_on_a_pool_the_book_does_not_know_asks_for_a_reload() -> None:
    info = SiteInfo(SITE, "s1", Decimal("1.2"), Decimal("0.1"), 0, FOREVER)
    old = SiteBook(info, pools(), [], [])
    stranger = Claim(1, (SITE, 1, "retired"), 0, 10, 8)
    assert old.refreshed(info, [stranger], []) is None
