"""Node health from an engine into neocloud (pure decisions; the service carries them out
through placement's fail and repair, so healing follows as for any failure).

A node the engine reports down or drained by someone else (a reason not starting with
`neocloud:`) is failed in neocloud, once per report: a report is its reason and the engine's
time stamp, remembered in the fabric's state, so an operator who repairs the node in neocloud
is not overruled by the same old report. A node failed this way comes back (repaired) when
the engine reports it healthy again. Nodes neocloud itself failed are left to the operator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from neocloud.engines.protocol import DRAIN_PREFIX, IN_SERVICE, NodeHealth

DOWN_STATES = frozenset({"failed", "repair"})


@dataclass(frozen=True, slots=True)
class HealthMemory:
    seen: Mapping[str, str] = field(default_factory=dict)
    """Node -> the report (reason@stamp) already acted on."""
    failed: frozenset[str] = frozenset()
    """Nodes neocloud failed because the engine said so."""

    def to_json(self) -> dict[str, object]:
        return {"seen": dict(self.seen), "failed": sorted(self.failed)}

    @classmethod
    def from_json(cls, data: Mapping[str, object] | None) -> HealthMemory:
        data = data or {}
        seen = data.get("seen")
        failed = data.get("failed")
        return cls(
            seen={str(k): str(v) for k, v in seen.items()} if isinstance(seen, dict) else {},
            failed=frozenset(str(n) for n in failed) if isinstance(failed, list) else frozenset(),
        )


@dataclass(frozen=True, slots=True)
class HealthStep:
    node: str
    op: str
    """`fail` or `repair`."""
    reason: str


def health_steps(
    reports: Sequence[NodeHealth],
    states: Mapping[str, str],
    memory: HealthMemory,
    *,
    engine: str,
) -> tuple[list[HealthStep], HealthMemory]:
    """What to fail and repair in neocloud, and the memory to keep for next time."""
    seen = dict(memory.seen)
    failed = set(memory.failed)
    steps: list[HealthStep] = []
    for h in sorted(reports, key=lambda r: r.name):
        state = states.get(h.name)
        if state is None:
            continue
        if h.bad and not h.reason.startswith(DRAIN_PREFIX):
            report = f"{h.reason}@{h.since}"
            if seen.get(h.name) != report:
                seen[h.name] = report
                if state in IN_SERVICE:
                    steps.append(HealthStep(h.name, "fail", f"{engine}: {h.reason}"[:500]))
                    failed.add(h.name)
        elif not h.bad:
            seen.pop(h.name, None)
            if h.name in failed:
                failed.discard(h.name)
                if state in DOWN_STATES:
                    steps.append(HealthStep(h.name, "repair", f"{engine}: node is back"))
    for name in list(failed):
        if states.get(name) in IN_SERVICE and not any(s.node == name for s in steps):
            failed.discard(name)  # the operator repaired it meanwhile
    return steps, HealthMemory(seen=seen, failed=frozenset(failed))
