"""The fake backend: the same options give the same readings, readings are plausible for an
H100, they change over time, and the profiles mean what they say."""

from __future__ import annotations

from neocloud.metering.agent.fake import MEMORY_MIB, FakeBackend, Profile
from neocloud.metering.agent.gpus import GpuFault, GpuReading

T0 = 1_790_000_000


def readings(backend: FakeBackend, at: int) -> list[GpuReading]:
    out = backend.read(at)
    assert all(isinstance(r, GpuReading) for r in out)
    return [r for r in out if isinstance(r, GpuReading)]


def test_the_same_seed_node_and_time_give_the_same_readings() -> None:
    a = FakeBackend(node="n1", gpus=8, seed=3)
    b = FakeBackend(node="n1", gpus=8, seed=3)
    times = [T0 + 10 * i for i in range(50)]
    assert [a.read(t) for t in times] == [b.read(t) for t in times]
    assert [a.read(t) for t in times] != [
        FakeBackend(node="n1", gpus=8, seed=4).read(t) for t in times
    ]
    assert a.read(T0) != FakeBackend(node="n2", gpus=8, seed=3).read(T0)


def test_readings_are_plausible_and_change_over_time() -> None:
    backend = FakeBackend(node="n1", gpus=8)
    series = [readings(backend, T0 + 10 * i) for i in range(360)]  # an hour
    assert all(len(round_) == 8 for round_ in series)
    flat = [r for round_ in series for r in round_]
    assert {r.gpu for r in flat} == set(range(8))
    for r in flat:
        assert 0 <= r.utilization_pct <= 100
        assert 0 <= r.memory_used_mib <= MEMORY_MIB
        assert 60 <= r.power_w <= 700
        assert 25 <= r.temperature_c <= 80
    # Mixed: over an hour each GPU is both busy and idle, and no two rounds are equal.
    for gpu in range(8):
        utils = [round_[gpu].utilization_pct for round_ in series]
        assert min(utils) < 5 and max(utils) > 80
    assert len({tuple(round_) for round_ in series}) == len(series)
    # Power follows the load.
    busy = [r.power_w for r in flat if r.utilization_pct > 80]
    idle = [r.power_w for r in flat if r.utilization_pct < 5]
    assert min(busy) > max(idle)


def test_the_idle_and_busy_profiles() -> None:
    idle = [
        r
        for i in range(100)
        for r in readings(FakeBackend(node="n", gpus=4, profile=Profile.IDLE), T0 + 10 * i)
    ]
    busy = [
        r
        for i in range(100)
        for r in readings(FakeBackend(node="n", gpus=4, profile=Profile.BUSY), T0 + 10 * i)
    ]
    assert max(r.utilization_pct for r in idle) <= 2
    assert max(r.power_w for r in idle) < 100
    assert min(r.utilization_pct for r in busy) >= 80
    assert min(r.memory_used_mib for r in busy) > MEMORY_MIB // 2


def test_a_broken_gpu_is_a_fault_and_the_others_are_read() -> None:
    out = FakeBackend(node="n1", gpus=4, broken=frozenset({2})).read(T0)
    assert [type(r) for r in out] == [GpuReading, GpuReading, GpuFault, GpuReading]
    assert out[2] == GpuFault(2, "fake fault: this GPU is set to fail")
