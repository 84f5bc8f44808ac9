"""The supply generation of sites: bumped by every change to what a site can supply.

The capacity calendar caches each site's supply (a GROUP BY over its nodes is too slow to
repeat for every quote) and reloads it when this number moves. Every writer of nodes,
deliveries or site power/dates calls `bump` in its own transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.fleet.models import Site


def bump(session: Session, site_ids: Iterable[int] | None = None) -> None:
    """Mark the supply of these sites (all sites when None) as changed."""
    stmt = sa.update(Site).values(supply_generation=Site.supply_generation + 1)
    if site_ids is not None:
        ids = sorted(set(site_ids))
        if not ids:
            return
        stmt = stmt.where(Site.id.in_(ids))
    session.execute(stmt.execution_options(synchronize_session=False))
