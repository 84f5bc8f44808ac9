"""A node lent to spot counts once in the rollups: the owner's holding is cut by its loans
(`hourly.without_loans`, pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from neocloud.metering.hourly import Holding, close_hours, without_loans

OWNER, SPOT, NODE = 1, 2, 7


def seconds(spans: list[tuple[int, int]]) -> set[int]:
    return {t for a, b in spans for t in range(a, b)}


spans = st.lists(
    st.tuples(st.integers(0, 600), st.integers(1, 300)).map(lambda x: (x[0], x[0] + x[1])),
    max_size=4,
)


@given(since=st.integers(0, 300), length=st.integers(1, 600), loans=spans)
def test_the_owner_holds_exactly_what_it_has_not_lent(
    since: int, length: int, loans: list[tuple[int, int]]
) -> None:
    held = Holding(OWNER, NODE, 1, 1, 8, since, since + length)
    other = Holding(3, NODE + 1, 1, 1, 8, since, since + length)  # not lent: untouched
    out = without_loans([held, other], {(NODE, OWNER): loans})
    assert other in out
    mine = [(h.since, h.until) for h in out if h.contract_id == OWNER]
    assert all(a < b for a, b in mine)
    assert seconds(mine) == seconds([(held.since, held.until)]) - seconds(loans)
    assert sum(b - a for a, b in mine) == len(seconds(mine))  # no piece overlaps another


def test_an_hour_of_a_lent_node_is_allocated_once() -> None:
    owner = Holding(OWNER, NODE, 1, 1, 8, 0, 7200)
    loan = Holding(SPOT, NODE, 1, 1, 8, 1800, 5400)
    holdings = without_loans([owner, loan], {(NODE, OWNER): [(1800, 5400)]})
    closed = close_hours([0, 1], holdings, {(NODE, 0): (1, 800.0), (NODE, 1): (1, 800.0)})
    for hour in (0, 1):
        rows = {k[1]: v for k, v in closed.items() if k[0] == hour}
        assert rows[OWNER].allocated_gpu_seconds + rows[SPOT].allocated_gpu_seconds == 8 * 3600
        assert rows[SPOT].allocated_gpu_seconds == 8 * 1800
        assert rows[OWNER].energy_wh + rows[SPOT].energy_wh == 800.0 * 8
