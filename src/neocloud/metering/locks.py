"""The advisory lock between ingests (shared) and what rewrites stored usage (exclusive):
an operator's recorded exclusion, a rollup rebuild. SQLite has one writer at a time."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

LOCK_KEY = 0x6D65746572


def lock(session: Session, *, exclusive: bool) -> None:
    if session.get_bind().dialect.name == "postgresql":
        kind = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        session.execute(sa.text(f"SELECT {kind}(:key)"), {"key": LOCK_KEY})
