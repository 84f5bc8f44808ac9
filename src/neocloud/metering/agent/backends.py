"""Choosing the GPU backend: `auto` takes NVML when it starts and otherwise says why and
stops, so a node with a broken driver never reports fake numbers by accident; the fake
backend is only ever used when asked for by name."""

from __future__ import annotations

from enum import StrEnum

from neocloud.metering.agent.fake import FakeBackend, Profile
from neocloud.metering.agent.gpus import BackendUnavailable, GpuBackend
from neocloud.metering.agent.nvml import NvmlBackend


class BackendKind(StrEnum):
    AUTO = "auto"
    NVML = "nvml"
    FAKE = "fake"


def open_backend(
    kind: BackendKind,
    *,
    node: str,
    fake_gpus: int = 8,
    fake_seed: int = 0,
    fake_profile: Profile = Profile.MIXED,
) -> GpuBackend:
    """The backend asked for; BackendUnavailable (one line) when it cannot start."""
    if kind is BackendKind.FAKE:
        return FakeBackend(node=node, gpus=fake_gpus, seed=fake_seed, profile=fake_profile)
    try:
        return NvmlBackend()
    except BackendUnavailable as exc:
        if kind is BackendKind.AUTO:
            raise BackendUnavailable(
                f"no GPU backend: {exc}; use --backend fake for a demo or a test"
            ) from exc
        raise
