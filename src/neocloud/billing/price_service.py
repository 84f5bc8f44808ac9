"""Price books: list, read, create (checked for gaps and overlaps), set a price; and the
books rating reads, as plain `prices.PriceBook`s."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.billing import prices
from neocloud.billing.models import PriceBook, PriceEntry
from neocloud.billing.schemas import (
    PriceBookIn,
    PriceBookOut,
    PriceBookSummary,
    PriceEntryIn,
    PriceEntryOut,
    TierIn,
)
from neocloud.capacity.timeline import hour_of
from neocloud.core.errors import Conflict, InvalidInput, NotFound
from neocloud.core.paging import Page, PageRequest, paginate
from neocloud.core.timeutil import as_utc
from neocloud.tenants.models import Tenant

LIST_BOOK = "list-usd"


def list_books(session: Session, *, actor: Principal, page: PageRequest) -> Page[PriceBookSummary]:
    actor.demand(Permission.PRICES_READ)
    found = paginate(session, sa.select(PriceBook), PriceBook.id, page)
    ids = [b.id for b in found.items]
    counts = dict(
        session.execute(
            sa.select(PriceEntry.book_id, sa.func.count())
            .where(PriceEntry.book_id.in_(ids))
            .group_by(PriceEntry.book_id)
        ).all()
    )
    tenants = _tenant_names(session, [b.tenant_id for b in found.items])
    return Page(
        items=[
            PriceBookSummary(
                id=b.id,
                name=b.name,
                currency=b.currency,
                tenant=tenants.get(b.tenant_id) if b.tenant_id else None,
                description=b.description,
                entry_count=counts.get(b.id, 0),
            )
            for b in found.items
        ],
        next_cursor=found.next_cursor,
    )


def get_book(session: Session, *, actor: Principal, name: str) -> PriceBookOut:
    actor.demand(Permission.PRICES_READ)
    return _out(session, _book(session, name))


def create_book(
    session: Session, *, actor: Principal, body: PriceBookIn, dry_run: bool = False
) -> PriceBookOut:
    """A new book, its entries checked (422 naming the entry for a gap or an overlap)."""
    actor.demand(Permission.PRICES_WRITE)
    tenant_id = None
    if body.tenant is not None:
        tenant_id = session.scalar(sa.select(Tenant.id).where(Tenant.name == body.tenant))
        if tenant_id is None:
            raise InvalidInput(
                f"tenant: '{body.tenant}' is not a tenant",
                errors=[{"loc": ["body", "tenant"], "msg": "unknown tenant"}],
            )
    check(body.entries)
    if session.scalar(sa.select(PriceBook.id).where(PriceBook.name == body.name)) is not None:
        raise Conflict(f"price book '{body.name}' exists already")
    _forget(session)
    book = PriceBook(
        name=body.name, currency=body.currency, tenant_id=tenant_id, description=body.description
    )
    session.add(book)
    session.flush()
    session.add_all(_row(book.id, e) for e in body.entries)
    session.flush()
    out = _out(session, book)
    if dry_run:
        session.rollback()
        return out
    audit.record(
        session,
        actor,
        "price_book.create",
        "price_book",
        body.name,
        tenant_id=tenant_id,
        after={"currency": body.currency, "entries": len(body.entries)},
    )
    return out


def set_price(
    session: Session, *, actor: Principal, name: str, entry: PriceEntryIn
) -> PriceBookOut:
    """A new price for a key from `valid_from` on: the price in force then ends there."""
    actor.demand(Permission.PRICES_WRITE)
    book = _book(session, name, lock=True)
    rows = list(session.scalars(sa.select(PriceEntry).where(PriceEntry.book_id == book.id)))
    key = (entry.accelerator, entry.contract_type, entry.min_term_months)
    start = as_utc(entry.valid_from)
    for r in rows:
        if (r.accelerator, r.contract_type, r.min_term_months) != key:
            continue
        if as_utc(r.valid_from) < start and (r.valid_to is None or as_utc(r.valid_to) > start):
            r.valid_to = start
    everything = [_entry_in(r) for r in rows] + [entry]
    check(everything, new=len(rows))
    _forget(session)
    session.add(_row(book.id, entry))
    session.flush()
    audit.record(
        session,
        actor,
        "price_book.set",
        "price_book",
        name,
        tenant_id=book.tenant_id,
        after=entry.model_dump(mode="json"),
    )
    return _out(session, book)


def check(entries: list[PriceEntryIn], *, new: int | None = None) -> None:
    """422 naming each entry that is wrong, overlaps another, or leaves a gap. `new`: the
    position of a price being set among the book's entries (named apart from them)."""
    found = prices.problems([plain(e, i) for i, e in enumerate(entries)])
    if not found:
        return
    errors: list[dict[str, object]] = []
    for p in found:
        if new is None:
            loc: list[str | int] = ["body", "entries", p.index, p.field]
        elif p.index == new:
            loc = ["body", p.field]
        else:
            loc = ["book", "entries", p.index, p.field]
        errors.append({"loc": loc, "msg": p.msg})
    first = found[0]
    if new is None:
        label = f"entries[{first.index}].{first.field}"
    elif first.index == new:
        label = first.field
    else:
        label = f"the book's entry {first.index} ({first.field})"
    raise InvalidInput(f"{label}: {first.msg}", errors=errors)


def plain(e: PriceEntryIn, index: int = 0, ref: str = "") -> prices.PriceEntry:
    return prices.PriceEntry(
        accelerator=e.accelerator,
        contract_type=e.contract_type,
        unit=e.unit,
        price=e.price,
        valid_from_h=_hour(e.valid_from),
        valid_to_h=None if e.valid_to is None else _hour(e.valid_to),
        min_term_months=e.min_term_months,
        tiers=tuple(prices.Tier(t.from_gpu_hours, t.discount_pct) for t in e.tiers),
        ref=ref or f"entry {index}",
    )


class Books:
    """The books a run prices with: per currency the list book, per tenant its own."""

    def __init__(self, session: Session) -> None:
        books = list(session.scalars(sa.select(PriceBook)))
        entries: dict[int, list[prices.PriceEntry]] = defaultdict(list)
        for r in session.scalars(sa.select(PriceEntry)):
            entries[r.book_id].append(_plain_row(r, _name(books, r.book_id)))
        self._list: dict[str, prices.PriceBook] = {}
        self._own: dict[tuple[int, str], prices.PriceBook] = {}
        for b in sorted(books, key=lambda b: b.id):
            made = prices.PriceBook(b.name, b.currency, tuple(entries[b.id]))
            if b.tenant_id is None:
                self._list.setdefault(b.currency, made)
            else:
                self._own.setdefault((b.tenant_id, b.currency), made)

    def for_tenant(self, tenant_id: int, currency: str) -> prices.PriceBook:
        """The tenant's own book where it prices a key, the currency's list book elsewhere."""
        listed = self._list.get(currency, prices.PriceBook(f"none-{currency}", currency, ()))
        own = self._own.get((tenant_id, currency))
        if own is None:
            return listed
        keys = {e.key for e in own.entries}
        kept = tuple(e for e in listed.entries if e.key not in keys)
        return prices.PriceBook(own.name, currency, own.entries + kept)


def list_book(session: Session, currency: str = "USD") -> prices.PriceBook | None:
    """The currency's list book (the one no tenant holds), as quotes and bookings price from
    it; read once per session (a request), since a booking may ask for it many times."""
    key = f"neocloud.list_book.{currency}"
    if key in session.info:
        cached: prices.PriceBook | None = session.info[key]
        return cached
    found = session.execute(
        sa.select(PriceBook.id, PriceBook.name)
        .where(PriceBook.tenant_id.is_(None), PriceBook.currency == currency)
        .order_by(PriceBook.id)
        .limit(1)
    ).first()
    book = None
    if found is not None:
        book_id, name = found
        rows = session.scalars(sa.select(PriceEntry).where(PriceEntry.book_id == book_id))
        book = prices.PriceBook(name, currency, tuple(_plain_row(r, name) for r in rows))
    session.info[key] = book
    return book


def _forget(session: Session) -> None:
    for key in [k for k in session.info if str(k).startswith("neocloud.list_book.")]:
        del session.info[key]


def _plain_row(r: PriceEntry, book: str) -> prices.PriceEntry:
    return prices.PriceEntry(
        accelerator=r.accelerator,
        contract_type=r.contract_type,
        unit=r.unit,
        price=Decimal(r.price),
        valid_from_h=_hour(r.valid_from),
        valid_to_h=None if r.valid_to is None else _hour(r.valid_to),
        min_term_months=r.min_term_months,
        tiers=tuple(
            prices.Tier(int(t["from_gpu_hours"]), Decimal(str(t["discount_pct"])))
            for t in r.tiers or []
        ),
        ref=f"{book}#{r.id}",
    )


def _name(books: list[PriceBook], book_id: int) -> str:
    return next((b.name for b in books if b.id == book_id), str(book_id))


def _hour(value: datetime) -> int:
    return hour_of(as_utc(value)) if value.tzinfo is not None else hour_of(value)


def _book(session: Session, name: str, *, lock: bool = False) -> PriceBook:
    stmt = sa.select(PriceBook).where(PriceBook.name == name)
    if lock:
        stmt = stmt.with_for_update()
    book = session.scalar(stmt)
    if book is None:
        raise NotFound(f"price book '{name}' not found")
    return book


def _row(book_id: int, e: PriceEntryIn) -> PriceEntry:
    return PriceEntry(
        book_id=book_id,
        accelerator=e.accelerator,
        contract_type=e.contract_type,
        min_term_months=e.min_term_months,
        unit=e.unit,
        price=e.price,
        tiers=[t.model_dump(mode="json") for t in e.tiers],
        valid_from=as_utc(e.valid_from),
        valid_to=None if e.valid_to is None else as_utc(e.valid_to),
    )


def _entry_in(r: PriceEntry) -> PriceEntryIn:
    return PriceEntryIn(
        accelerator=r.accelerator,
        contract_type=r.contract_type,
        min_term_months=r.min_term_months,
        unit=r.unit,
        price=Decimal(r.price),
        tiers=[TierIn.model_validate(t) for t in r.tiers or []],
        valid_from=r.valid_from,
        valid_to=r.valid_to,
    )


def _out(session: Session, book: PriceBook) -> PriceBookOut:
    rows = session.scalars(
        sa.select(PriceEntry).where(PriceEntry.book_id == book.id).order_by(PriceEntry.id)
    )
    tenants = _tenant_names(session, [book.tenant_id])
    return PriceBookOut(
        id=book.id,
        name=book.name,
        currency=book.currency,
        tenant=tenants.get(book.tenant_id) if book.tenant_id else None,
        description=book.description,
        entries=[PriceEntryOut(id=r.id, **_entry_in(r).model_dump()) for r in rows],
    )


def _tenant_names(session: Session, ids: list[int | None]) -> dict[int | None, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    return dict(
        session.execute(sa.select(Tenant.id, Tenant.name).where(Tenant.id.in_(wanted))).all()
    )
