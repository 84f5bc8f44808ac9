"""Hour step functions against a brute-force model: one value per hour on a small range.

The calendar's every answer (free capacity, the earliest start, conflicts) is built from these
few operations, so each is checked hour by hour against the obvious definition.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from neocloud.capacity.timeline import Steps, add, combine, minus

LOW, HIGH = -5, 60
"""The hours the brute-force model looks at; breakpoints fall in [0, 50]."""
HOURS = range(LOW, HIGH)

deltas_st = st.lists(st.tuples(st.integers(0, 50), st.integers(-20, 20)), max_size=12)
bases = st.integers(-30, 30)


def model(deltas: list[tuple[int, int]], base: int) -> Callable[[int], int]:
    """The value at an hour by definition: the base plus every change made at or before it."""

    def value(hour: int) -> int:
        return base + sum(d for h, d in deltas if h <= hour)

    return value


@st.composite
def steps(draw: st.DrawFn) -> tuple[Steps, Callable[[int], int]]:
    deltas = draw(deltas_st)
    base = draw(bases)
    return Steps.from_deltas(deltas, base), model(deltas, base)


ranges = st.tuples(st.integers(LOW, HIGH - 1), st.integers(LOW, HIGH - 1)).map(sorted)


@given(steps())
def test_from_deltas_matches_the_model_and_keeps_only_real_changes(
    pair: tuple[Steps, Callable[[int], int]],
) -> None:
    s, value = pair
    assert [s.at(h) for h in HOURS] == [value(h) for h in HOURS]
    assert s.hours == sorted(set(s.hours))
    levels = [s.base, *s.values]
    assert all(a != b for a, b in pairwise(levels)), "a breakpoint that changes nothing"
    assert Steps.from_deltas(s.deltas(), s.base) == s


@given(steps(), ranges)
def test_min_max_and_argmin_over_a_range(
    pair: tuple[Steps, Callable[[int], int]], span: list[int]
) -> None:
    s, value = pair
    a, b = span
    if a == b:
        assert s.min_over(a, b) == s.max_over(a, b) == value(a)
        return
    values = [value(h) for h in range(a, b)]
    assert s.min_over(a, b) == min(values)
    assert s.max_over(a, b) == max(values)
    assert s.argmin_over(a, b) == a + values.index(min(values))


@given(steps(), ranges)
def test_a_step_function_made_with_numpy_answers_before_its_lists_exist(
    pair: tuple[Steps, Callable[[int], int]], span: list[int]
) -> None:
    """`add` keeps its result as arrays and makes the lists only when they are read; the
    questions a fit asks are answered from the arrays until then, and must agree."""
    s, value = pair
    a, b = span
    arrays_only = add(s, Steps.constant(0))
    assert "hours" not in arrays_only.__dict__
    values = [value(h) for h in range(a, max(a + 1, b))]
    assert arrays_only.at(a) == value(a)
    assert arrays_only.min_over(a, b) == (min(values) if a < b else value(a))
    assert arrays_only.max_over(a, b) == (max(values) if a < b else value(a))
    assert "hours" not in arrays_only.__dict__
    assert arrays_only == s  # and the lists, once made, are the same


@given(steps(), ranges)
def test_segments_tile_the_range_with_the_right_values(
    pair: tuple[Steps, Callable[[int], int]], span: list[int]
) -> None:
    s, value = pair
    a, b = span
    pieces = list(s.segments(a, b))
    if a == b:
        assert pieces == []
        return
    assert pieces[0][0] == a and pieces[-1][1] == b
    for (_, end, _), (start, _, _) in pairwise(pieces):
        assert end == start
    for x, y, v in pieces:
        assert x < y
        assert all(value(h) == v for h in range(x, y))


@given(steps(), ranges, st.integers(-25, 25))
def test_below_finds_exactly_the_maximal_runs_under_a_level(
    pair: tuple[Steps, Callable[[int], int]], span: list[int], level: int
) -> None:
    s, value = pair
    a, b = span
    expected: list[tuple[int, int, int]] = []
    for h in range(a, b):
        if value(h) >= level:
            continue
        if expected and expected[-1][1] == h:
            x, _, least = expected[-1]
            expected[-1] = (x, h + 1, min(least, value(h)))
        else:
            expected.append((h, h + 1, value(h)))
    assert list(s.below(level, a, b)) == expected


@given(
    steps(),
    st.integers(-25, 25),
    st.integers(0, 15),
    st.integers(LOW, 40),
    st.integers(0, 30),
)
def test_earliest_fit_is_the_first_start_with_enough_for_the_whole_duration(
    pair: tuple[Steps, Callable[[int], int]],
    need: int,
    duration: int,
    earliest: int,
    window: int,
) -> None:
    s, value = pair
    latest = earliest + window
    expected = next(
        (
            start
            for start in range(earliest, latest + 1)
            if all(value(h) >= need for h in range(start, start + duration))
        ),
        None,
    )
    assert s.earliest_fit(need, duration, earliest, latest) == expected


@given(st.lists(steps(), min_size=1, max_size=4))
def test_combine_add_and_minus_are_pointwise(
    parts: list[tuple[Steps, Callable[[int], int]]],
) -> None:
    fns = [p[0] for p in parts]
    values = [p[1] for p in parts]
    total = add(*fns)
    spread = combine(lambda *v: max(v) - min(v), *fns)
    diff = minus(fns[0], fns[-1])
    for h in HOURS:
        at = [v(h) for v in values]
        assert total.at(h) == sum(at)
        assert spread.at(h) == max(at) - min(at)
        assert diff.at(h) == at[0] - at[-1]
    levels = [spread.base, *spread.values]
    assert all(a != b for a, b in pairwise(levels))


@settings(max_examples=50)
@given(steps())
def test_a_constant_is_the_same_everywhere(pair: tuple[Steps, Callable[[int], int]]) -> None:
    _, value = pair
    c = Steps.constant(value(0))
    assert {c.at(h) for h in HOURS} == {value(0)}
    assert c.min_over(LOW, HIGH) == c.max_over(LOW, HIGH) == value(0)
