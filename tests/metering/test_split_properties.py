"""Properties of the pure cores: the split of an interval and the bucketing of the ledgers."""

from __future__ import annotations

import itertools

from hypothesis import example, given
from hypothesis import strategies as st

from neocloud.metering.ledgers import Bucket, spread
from neocloud.metering.models import ExclusionReason
from neocloud.metering.split import excluded_seconds, exclusions

T = st.integers(0, 10_000)
spans = st.lists(st.tuples(T, T).map(sorted).map(tuple), max_size=6)


@given(T, st.integers(1, 5_000), st.tuples(T, T).map(sorted), spans)
@example(0, 10, [100, 200], [])  # a term that starts after the interval ends
def test_pieces_cover_exactly_what_is_not_billable(
    start: int, length: int, term: list[int], held: list[tuple[int, int]]
) -> None:
    end = start + length
    pieces = exclusions(start, end, (term[0], term[1]), held)
    # Pieces lie inside the interval, in order, without overlap.
    at = start
    for p in pieces:
        assert at <= p.start < p.end <= end
        at = p.end
    # Each second is excluded exactly when it is outside the term or not held.
    for second in range(start, end, max(1, length // 50)):
        in_term = term[0] <= second < term[1]
        is_held = any(a <= second < b for a, b in held)
        reason = next((p.reason for p in pieces if p.start <= second < p.end), None)
        if not in_term:
            assert reason is ExclusionReason.OUTSIDE_TERM
        elif not is_held:
            assert reason is ExclusionReason.NODE_DOWN
        else:
            assert reason is None
    assert 0 <= excluded_seconds(pieces) <= length
    outside = max(0, min(end, term[0]) - start) + max(0, end - max(start, term[1]))
    if term[0] >= term[1]:
        outside = length
    assert sum(p.end - p.start for p in pieces if p.reason is ExclusionReason.OUTSIDE_TERM) == min(
        outside, length
    )


@given(
    st.lists(st.tuples(T, st.integers(1, 9_000), st.integers(1, 8)), max_size=20),
    st.sampled_from([60, 3600, 86_400]),
    st.randoms(use_true_random=False),
)
def test_buckets_sum_to_the_total_whatever_the_order(
    stretches: list[tuple[int, int, int]], step: int, rnd: object
) -> None:
    items = [(s, s + n, g) for s, n, g in stretches]
    total = sum(g * (e - s) for s, e, g in items)
    one: dict[int, Bucket] = {}
    spread(one, items, 0, 20_000, step)
    shuffled = list(items)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    two: dict[int, Bucket] = {}
    spread(two, shuffled, 0, 20_000, step)
    assert sum(b.measured for b in one.values()) == total
    assert {k: b.measured for k, b in one.items()} == {k: b.measured for k, b in two.items()}
    assert all(k % step == 0 for k in one)


windows = st.lists(
    st.tuples(
        st.sampled_from([ExclusionReason.MAINTENANCE, ExclusionReason.OPERATOR_FAULT]), T, T
    ).map(lambda w: (w[0], min(w[1], w[2]), max(w[1], w[2]))),
    max_size=4,
)


@given(T, st.integers(1, 5_000), st.tuples(T, T).map(sorted), spans, windows)
def test_operator_windows_take_only_what_is_still_billable(
    start: int,
    length: int,
    term: list[int],
    held: list[tuple[int, int]],
    ops: list[tuple[ExclusionReason, int, int]],
) -> None:
    end = start + length
    before = exclusions(start, end, (term[0], term[1]), held)
    after = exclusions(start, end, (term[0], term[1]), held, ops)
    # The pieces never overlap, the earlier reasons are unchanged, and every operator piece
    # lies inside one of the windows of its reason.
    ordered = sorted((p.start, p.end) for p in after)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ordered))
    assert [p for p in after if p.reason not in {r for r, _, _ in ops}] == before
    for p in after:
        if p not in before:
            assert any(r == p.reason and a <= p.start and p.end <= b for r, a, b in ops)
    assert excluded_seconds(after) <= length
