"""The demo's invoices: every month of its usage history that is over is run and issued, so
`neocloud invoices list` shows each customer's invoices — the whole-site sale's fixed fee, the
reserved blocks' take-or-pay, the on-demand and spot usage — and the training team's
showback statements. Called by `neocloud demo` after the usage history is loaded."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth.principal import SYSTEM
from neocloud.billing import invoicing, lifecycle, months
from neocloud.billing.models import Invoice
from neocloud.demo.usage import history_start


def is_loaded(session: Session) -> bool:
    return session.scalar(sa.select(Invoice.id).limit(1)) is not None


def load(session: Session, now: datetime) -> int:
    """Run and issue each full month since the usage history began (in the caller's
    transaction); answers how many documents were issued."""
    issued = 0
    p = months.month_of(history_start(now))
    while p.end <= now:
        result = invoicing.run(session, actor=SYSTEM, period=p.label, tenant=None, now=now)
        for doc in result.documents:
            lifecycle.issue(session, actor=SYSTEM, invoice_id=doc.id, now=now)
            issued += 1
        p = p.next()
    return issued
