"""The background close of the usage rollups: every API process closes the hours that have
ended now and then (and those that late telemetry made stale). Several processes doing so is
safe: one pass at a time holds the rollups' lock, the others skip their turn."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from neocloud.core.timeutil import utcnow
from neocloud.db.engine import retrying
from neocloud.metering import rollups

log = logging.getLogger("neocloud.metering")


def close_round(factory: sessionmaker[Session]) -> list[int]:
    """One pass; returns the hours it closed."""
    with factory() as session:
        return retrying(session, lambda: rollups.close_due(session, utcnow()))


async def run(factory: sessionmaker[Session], interval_s: float) -> None:
    """Close the due hours every `interval_s` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            hours = await run_in_threadpool(close_round, factory)
            if hours:
                log.info("metering: closed %d hour(s) of the usage rollups", len(hours))
        except Exception:  # the next round tries again
            log.exception("metering: closing the usage rollups failed")
