"""Kueue's capabilities, declared against the engine protocol: every capability is either
declared or said to be missing with a reason (a new one in the protocol fails this test
until Kueue takes a position on it)."""

from __future__ import annotations

from neocloud.engines.kueue.capabilities import CAPABILITIES, LACKS
from neocloud.engines.protocol import Capability


def test_every_capability_is_declared_or_explained() -> None:
    assert CAPABILITIES | set(LACKS) == set(Capability)
    assert not CAPABILITIES & set(LACKS)
    assert all(reason for reason in LACKS.values())


def test_kueue_caps_quotas_and_preempts_spot() -> None:
    assert {Capability.QUOTAS, Capability.PREEMPTION} <= CAPABILITIES
    assert Capability.RESERVATIONS not in CAPABILITIES
