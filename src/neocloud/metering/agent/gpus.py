"""What a GPU backend reads, and the protocol every backend follows.

A round of readings holds one entry per GPU: a reading, or a fault saying why that GPU could
not be read, so one bad GPU never keeps the others' samples from being sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One GPU's state at one instant, in the units of `neocloud.telemetry.v1`."""

    gpu: int
    utilization_pct: float
    memory_used_mib: int
    power_w: float
    temperature_c: float


@dataclass(frozen=True, slots=True)
class GpuFault:
    """A GPU that failed a read this round (its index and why)."""

    gpu: int
    error: str


class BackendUnavailable(Exception):
    """The backend cannot start on this machine (no driver, no GPU): a one-line reason."""


class GpuBackend(Protocol):
    """Reads every GPU of the node. `read` gets the round's time (whole Unix seconds), which
    the fake backend uses to vary its values deterministically and NVML ignores."""

    name: str

    def gpu_count(self) -> int: ...

    def read(self, at: int) -> list[GpuReading | GpuFault]: ...

    def close(self) -> None: ...
