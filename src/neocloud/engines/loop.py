"""The background reconcile: every API process brings its fabrics' engines in step now and
then (every `Settings.engine_interval_s` seconds, NEOCLOUD_ENGINE_INTERVAL).

Several processes doing so is safe: each fabric is claimed with a lease, so one process at a
time talks to its engine and the others skip it. A fabric whose engine did not answer waits
out its backoff (`reconcile.backoff`). The engine's commands run in a worker thread with
timeouts, so a slow engine never holds up the API.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from neocloud.auth.principal import SYSTEM
from neocloud.engines import reconcile

log = logging.getLogger("neocloud.engines")


def reconcile_due(factory: sessionmaker[Session]) -> int:
    """One round over the fabrics that are due; returns how many engine objects changed."""
    with factory() as session:
        out = reconcile.reconcile(session, actor=SYSTEM, due_only=True)
    return sum(len(i.changes) for i in out.items)


async def run(factory: sessionmaker[Session], interval_s: float) -> None:
    """Reconcile every `interval_s` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            changed = await run_in_threadpool(reconcile_due, factory)
            if changed:
                log.info("engines: %d object(s) changed", changed)
        except Exception:  # the next round tries again
            log.exception("engines: the background reconcile failed")
