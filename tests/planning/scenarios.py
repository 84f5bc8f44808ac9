"""Small scenarios for the planner's tests, written as YAML (the way people write them)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from neocloud.planning.data import Scenario
from neocloud.planning.scenario import load_scenario

BASE = textwrap.dedent(
    """\
    name: small
    start: 2026Q3
    horizon: 4
    sites:
      - name: alpha
        power_mw: 20
        pue: 1.2
        accelerators:
          - {accelerator: H100, gpus: 1000, block_gpus: 8, kw_per_gpu: 1.3}
      - name: beta
        power_mw: 30
        pue: 1.1
        accelerators:
          - {accelerator: GB200, gpus: 1440, block_gpus: 72, kw_per_gpu: 1.7}
    costs:
      power_usd_per_mwh: 70
      operations_per_gpu_hour: 0.1
      depreciation_per_gpu_quarter: {H100: 1500, GB200: 3000}
    optimizer: {mip_gap: 0.0}
    """
)


def scenario(extra: str = "", base: str = BASE, source: str = "small.yaml") -> Scenario:
    return load_scenario(base + textwrap.dedent(extra), source=source)


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return path
