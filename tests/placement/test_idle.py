"""The idleness decision (pure): which nodes of lendable contracts spot may borrow, and when
the owner's workload has resumed on a lent one."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from neocloud.placement.idle import NodeTelemetry, Thresholds, is_busy, is_idle
from neocloud.placement.lending import Loan, owner_needs_back

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TH = Thresholds()  # 30 minutes, 5 %, 1 GiB
QUIET = NodeTelemetry(
    samples=24,
    gpus_seen=8,
    max_util_pct=0.0,
    max_memory_mib=300,
    first_at=NOW - timedelta(minutes=29),
    last_at=NOW - timedelta(minutes=1),
)


def test_a_quiet_node_seen_throughout_the_window_is_idle() -> None:
    assert is_idle(QUIET, 8, TH, NOW)
    assert not is_busy(QUIET, TH)


def test_what_we_cannot_see_is_never_idle() -> None:
    assert not is_idle(None, 8, TH, NOW)  # no telemetry
    assert not is_idle(replace(QUIET, gpus_seen=7), 8, TH, NOW)  # a GPU never reported
    assert not is_idle(replace(QUIET, samples=23), 8, TH, NOW)  # too few samples
    late_start = replace(QUIET, first_at=NOW - timedelta(minutes=20))
    assert not is_idle(late_start, 8, TH, NOW)  # the agent only just started
    gone_quiet = replace(QUIET, last_at=NOW - timedelta(minutes=10))
    assert not is_idle(gone_quiet, 8, TH, NOW)  # nothing heard lately


def test_work_or_memory_in_use_is_busy() -> None:
    assert is_busy(replace(QUIET, max_util_pct=5.0), TH)
    assert is_busy(replace(QUIET, max_memory_mib=2048), TH)
    assert not is_idle(replace(QUIET, max_util_pct=40.0), 8, TH, NOW)
    assert not is_busy(None, TH)  # silence is no sign of the owner's work


@given(
    util=st.floats(0, 100),
    memory=st.integers(0, 200_000),
    more_util=st.floats(0, 100),
    more_memory=st.integers(0, 200_000),
)
def test_more_load_never_makes_a_node_idle(
    util: float, memory: int, more_util: float, more_memory: int
) -> None:
    t = replace(QUIET, max_util_pct=util, max_memory_mib=memory)
    heavier = replace(t, max_util_pct=max(util, more_util), max_memory_mib=memory + more_memory)
    assert is_idle(heavier, 8, TH, NOW) <= is_idle(t, 8, TH, NOW)
    assert is_idle(t, 8, TH, NOW) == (not is_busy(t, TH))


@given(owner_ran=st.booleans(), spot_ran=st.booleans(), busy=st.booleans())
def test_busy_gpus_are_the_owners_only_when_spot_ran_nothing_there(
    owner_ran: bool, spot_ran: bool, busy: bool
) -> None:
    t = replace(QUIET, max_util_pct=90.0) if busy else QUIET
    back = owner_needs_back(Loan(t, owner_ran=owner_ran, spot_ran=spot_ran), TH)
    assert back == (owner_ran or (busy and not spot_ran))
