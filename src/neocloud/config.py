"""Server settings, from arguments or the environment (NEOCLOUD_*)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from neocloud.db.engine import sqlite_url

DEFAULT_DATA_DIR = Path(os.environ.get("NEOCLOUD_DATA_DIR", ".neocloud"))


@dataclass(frozen=True)
class Settings:
    db_url: str
    bootstrap_token: str | None = None
    placement_interval_s: float = 0.0
    """How often each API process reconciles placement in the background (0: never; `serve`
    reads NEOCLOUD_PLACEMENT_INTERVAL, default 60 s)."""
    rollup_interval_s: float = 0.0
    """How often each API process closes the hours of the usage rollups that have ended (0:
    never; `serve` reads NEOCLOUD_ROLLUP_INTERVAL, default 60 s)."""
    engine_interval_s: float = 0.0
    """How often each API process reconciles the fabrics' engines (Slurm) in the background
    (0: never; `serve` reads NEOCLOUD_ENGINE_INTERVAL, default 30 s)."""
    plan_interval_s: float = 0.0
    """How often each API process looks for queued plans to run in its planner thread (0:
    no planner thread; `serve` reads NEOCLOUD_PLAN_INTERVAL, default 2 s)."""

    @classmethod
    def from_env(cls, db_url: str | None = None, data_dir: Path | None = None) -> Settings:
        url = (
            db_url or os.environ.get("NEOCLOUD_DB_URL") or sqlite_url(data_dir or DEFAULT_DATA_DIR)
        )
        return cls(
            db_url=url,
            bootstrap_token=os.environ.get("NEOCLOUD_BOOTSTRAP_TOKEN") or None,
            placement_interval_s=float(os.environ.get("NEOCLOUD_PLACEMENT_INTERVAL", "60")),
            rollup_interval_s=float(os.environ.get("NEOCLOUD_ROLLUP_INTERVAL", "60")),
            engine_interval_s=float(os.environ.get("NEOCLOUD_ENGINE_INTERVAL", "30")),
            plan_interval_s=float(os.environ.get("NEOCLOUD_PLAN_INTERVAL", "2")),
        )
