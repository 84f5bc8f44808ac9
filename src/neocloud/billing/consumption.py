"""Revenue recognized on consumption: on-demand and spot contracts earn what their billable
usage comes to under their terms, in the hour it was used.

The amounts are rating's (`neocloud.billing.rating`), never a second pricing of our own, so
the revenue reports and the invoices cannot disagree about what usage is worth.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.orm import Session

from neocloud.billing.obligations import Booked
from neocloud.capacity.timeline import Hour

RATED = False
"""Whether consumption is rated yet: rating (billing/rating.py) is being built; until it is,
usage contracts recognize nothing here and the reports say so (`consumption` stays 0)."""


def recognized(
    session: Session, contracts: list[Booked], spans: list[tuple[Hour, Hour]], as_of: Hour
) -> Iterator[tuple[Booked, int, str, int]]:
    """(contract, period index, site, cents) for each usage contract's rated usage in the
    periods `spans` before `as_of`."""
    del session, contracts, spans, as_of
    yield from ()
