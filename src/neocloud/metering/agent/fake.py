"""A fake GPU backend for tests and demos: plausible H100-like readings, deterministic.

A reading depends only on (seed, node, GPU, time), never on what was read before, so two
agents with the same options report the same values, a test can predict every sample, and a
restarted agent carries on where it left off. Values change over time: in the `mixed` profile
each GPU runs jobs and sits idle in five-minute stretches, with jitter on every sample.
"""

from __future__ import annotations

import random
from enum import StrEnum

from neocloud.metering.agent.gpus import GpuFault, GpuReading

MEMORY_MIB = 81_559
"""What an H100 SXM reports as its memory (80 GiB less the driver's reserve)."""
IDLE_W = 70.0
MAX_W = 700.0
STRETCH_S = 300
"""How long a fake GPU stays busy or idle in the mixed profile."""


class Profile(StrEnum):
    """How loaded the fake GPUs are."""

    BUSY = "busy"
    """Every GPU runs a job all the time (85-100% utilization)."""
    IDLE = "idle"
    """Every GPU sits idle (0-2%, idle power)."""
    MIXED = "mixed"
    """Each GPU is busy about two stretches in three, idle otherwise."""


class FakeBackend:
    """`gpus` fake GPUs of node `node`; `broken` GPUs fail every read (to show the fault
    path in demos and tests)."""

    name = "fake"

    def __init__(
        self,
        *,
        node: str,
        gpus: int = 8,
        seed: int = 0,
        profile: Profile = Profile.MIXED,
        broken: frozenset[int] = frozenset(),
    ) -> None:
        if gpus < 1:
            raise ValueError("a fake node has at least one GPU")
        self.node = node
        self.gpus = gpus
        self.seed = seed
        self.profile = profile
        self.broken = broken

    def gpu_count(self) -> int:
        return self.gpus

    def read(self, at: int) -> list[GpuReading | GpuFault]:
        return [
            GpuFault(gpu, "fake fault: this GPU is set to fail")
            if gpu in self.broken
            else self._reading(gpu, at)
            for gpu in range(self.gpus)
        ]

    def close(self) -> None:
        """Nothing to release."""

    def _busy(self, gpu: int, at: int) -> float:
        """The job's load during this GPU's current stretch (0 when idle)."""
        if self.profile is Profile.IDLE:
            return 0.0
        stretch = random.Random(f"{self.seed}:{self.node}:{gpu}:stretch:{at // STRETCH_S}")
        if self.profile is Profile.MIXED and stretch.random() < 1 / 3:
            return 0.0
        return stretch.uniform(0.85, 1.0)

    def _reading(self, gpu: int, at: int) -> GpuReading:
        load = self._busy(gpu, at)
        jitter = random.Random(f"{self.seed}:{self.node}:{gpu}:sample:{at}")
        if load == 0.0:
            util = round(jitter.uniform(0.0, 2.0), 1)
            memory = jitter.randint(0, 600)
        else:
            util = round(min(100.0, load * 100 * jitter.uniform(0.96, 1.04)), 1)
            job = random.Random(f"{self.seed}:{self.node}:{gpu}:mem:{at // STRETCH_S}")
            memory = min(MEMORY_MIB, int(job.uniform(0.55, 0.97) * MEMORY_MIB))
        power = IDLE_W + (MAX_W - IDLE_W) * util / 100 * jitter.uniform(0.9, 1.0)
        temperature = 32.0 + 42.0 * util / 100 + jitter.uniform(-1.5, 1.5)
        return GpuReading(
            gpu=gpu,
            utilization_pct=util,
            memory_used_mib=memory,
            power_w=round(power, 1),
            temperature_c=round(temperature, 1),
        )
