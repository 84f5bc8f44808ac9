"""The background reconcile: every API process brings placement up to date now and then.

Contracts start and end on the hour, nodes fail between requests: a loop in each process
reconciles every site every `Settings.placement_interval_s` seconds (as the system, in a
worker thread). Several processes doing so is safe (each site is reconciled under its row
lock) and merely repeats work; a failed round is logged and the next one tries again.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from neocloud.auth.principal import SYSTEM
from neocloud.db.engine import retrying
from neocloud.placement import job_service, service

log = logging.getLogger("neocloud.placement")


def reconcile_all(factory: sessionmaker[Session]) -> int:
    """One round over every site; returns how many nodes changed hands."""
    with factory() as session:

        def work() -> int:
            out = service.reconcile(session, actor=SYSTEM)
            job_service.background_pass(session)
            return sum(len(s.changes) for s in out.sites)

        return retrying(session, work)


async def run(factory: sessionmaker[Session], interval_s: float) -> None:
    """Reconcile every `interval_s` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            changed = await run_in_threadpool(reconcile_all, factory)
            if changed:
                log.info("placement: %d node(s) changed hands", changed)
        except Exception:  # the next round tries again
            log.exception("placement: the background reconcile failed")
