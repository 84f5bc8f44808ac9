"""Where the Alibaba GPU v2023 trace is, and samples of it for fast replays."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NODES = "openb_node_list_all_node.csv"


def _trace_dir() -> Path:
    """NEOCLOUD_TRACES if set; else the `shared/traces` beside the checkout, or the one of
    the machine's workspace (/work/shared, where a CI checkout elsewhere still finds it)."""
    if os.environ.get("NEOCLOUD_TRACES"):
        return Path(os.environ["NEOCLOUD_TRACES"]) / "alibaba-gpu-v2023"
    candidates = [REPO.parent / "shared" / "traces", Path("/work/shared/traces")]
    for base in candidates:
        if (base / "alibaba-gpu-v2023" / NODES).exists():
            return base / "alibaba-gpu-v2023"
    return candidates[0] / "alibaba-gpu-v2023"


TRACE_DIR = _trace_dir()
POD_FILES = ("openb_pod_list_default.csv", "openb_pod_list_gpuspec33.csv")
SAMPLE_EVERY = 20
"""Every 20th pod: about 400 of the 8,152, with all the trace's shapes and QoS classes."""


@pytest.fixture(scope="session")
def trace_dir() -> Path:
    if not (TRACE_DIR / NODES).exists():
        pytest.skip(f"the Alibaba v2023 trace is not at {TRACE_DIR} (set NEOCLOUD_TRACES)")
    return TRACE_DIR


def sample_pods(source: Path, target: Path, every: int = SAMPLE_EVERY) -> list[dict[str, str]]:
    """Write every `every`-th pod of `source` to `target`; returns the rows written."""
    with source.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [row for n, row in enumerate(reader) if n % every == 0]
        fields = reader.fieldnames
    assert fields is not None
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return rows
