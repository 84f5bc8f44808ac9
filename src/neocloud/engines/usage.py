"""Job runs from an engine's accounting as metering's usage events (pure).

Each run is cut per node and at every hour, and a piece is sent once it is final: its hour
is over, or the run has ended. A piece's id is made of the job id, the run's start, the node
and the piece's start, so the same piece always has the same id: sending it again (the next
pass reads an overlapping window, the API restarted, Slurm answered twice) is a duplicate
that metering drops. A requeued job's runs start at different times, so each run counts.
A run's GPUs are split evenly over its nodes (Slurm's `-X` line gives the total).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from neocloud.engines.protocol import JobRun

HOUR = timedelta(hours=1)
USAGE_TYPE = "neocloud.usage.v1"


@dataclass(frozen=True, slots=True)
class Skipped:
    job_id: str
    reason: str


def events(
    runs: list[JobRun],
    *,
    source: str,
    contract_of: Callable[[JobRun], str | None],
    since: datetime,
    now: datetime,
) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """Usage events for the final pieces that end after `since` (earlier ones were sent by
    an earlier pass), and the runs left out with why."""
    out: list[dict[str, Any]] = []
    skipped: list[Skipped] = []
    for run in runs:
        if run.gpus <= 0 or not run.nodes:
            continue  # no GPUs, nothing to meter
        contract = contract_of(run)
        if contract is None:
            skipped.append(Skipped(run.job_id, f"no contract for account '{run.account}'"))
            continue
        shares = _split(run.gpus, len(run.nodes))
        end = run.end if run.end is not None else now
        for a, b in _pieces(run.start, min(end, now)):
            final = b == _hour_end(a) or run.end is not None
            if not final or b <= since:
                continue
            for node, gpus in zip(run.nodes, shares, strict=True):
                if gpus <= 0:
                    continue
                out.append(
                    {
                        "specversion": "1.0",
                        "id": f"{run.job_id}.{int(run.start.timestamp())}.{node}.{int(a.timestamp())}",
                        "source": source,
                        "type": USAGE_TYPE,
                        "time": _z(b),
                        "data": {
                            "contract": contract,
                            "node": node,
                            "gpus": gpus,
                            "start": _z(a),
                            "end": _z(b),
                        },
                    }
                )
    return out, skipped


def _pieces(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    start, end = _whole(start), _whole(end)
    out = []
    a = start
    while a < end:
        b = min(_hour_end(a), end)
        out.append((a, b))
        a = b
    return out


def _hour_end(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0) + HOUR


def _whole(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(microsecond=0)


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _z(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
