"""`Steps.min_over_many` answers many ranges at once exactly as `min_over` answers each.

The planner tests hundreds of possible starts with it before trying any in full, so a
wrong minimum would hide a start that fits (or waste time on ones that cannot).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from neocloud.capacity.timeline import Steps

deltas_st = st.lists(st.tuples(st.integers(0, 200), st.integers(-50, 50)), max_size=60)
ranges_st = st.lists(
    st.tuples(st.integers(-10, 220), st.integers(0, 120)).map(lambda r: (r[0], r[0] + r[1])),
    min_size=1,
    max_size=40,
)


@given(deltas_st, st.integers(-20, 20), ranges_st)
def test_many_ranges_at_once_match_one_at_a_time(
    deltas: list[tuple[int, int]], base: int, ranges: list[tuple[int, int]]
) -> None:
    steps = Steps.from_deltas(deltas, base)
    starts = np.array([a for a, _ in ranges], dtype=np.int64)
    ends = np.array([b for _, b in ranges], dtype=np.int64)
    assert steps.min_over_many(starts, ends).tolist() == [steps.min_over(a, b) for a, b in ranges]
