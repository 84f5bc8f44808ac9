"""/v1/price-books and /v1/invoices: thin — parse, authorize, call one service, shape."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response, status

from neocloud.api.deps import PageDep, SessionDep, require
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission as P
from neocloud.billing import invoicing, lifecycle, price_service, render, views
from neocloud.billing.models import DocumentKind, InvoiceStatus
from neocloud.billing.schemas import (
    CreditNoteIn,
    InvoiceOut,
    InvoicesOut,
    PriceBookIn,
    PriceBookOut,
    PriceBooksOut,
    PriceEntryIn,
    ReasonIn,
    RunIn,
    RunOut,
)
from neocloud.core.timeutil import utcnow
from neocloud.db.engine import retrying
from neocloud.metering.export import operator_name

router = APIRouter(tags=["billing"])
PriceReader = Annotated[Principal, Depends(require(P.PRICES_READ))]
PriceWriter = Annotated[Principal, Depends(require(P.PRICES_WRITE))]
Reader = Annotated[Principal, Depends(require(P.INVOICES_READ))]
Writer = Annotated[Principal, Depends(require(P.INVOICES_WRITE))]
BookName = Annotated[str, Path(max_length=63)]
InvoiceId = Annotated[int, Path(ge=1, le=2**31 - 1)]
FILE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "the document as a file",
        "content": {
            render.MEDIA_TYPES["html"]: {"schema": {"type": "string"}},
            render.MEDIA_TYPES["pdf"]: {"schema": {"type": "string", "format": "binary"}},
            render.MEDIA_TYPES["csv"]: {"schema": {"type": "string"}},
        },
    }
}


@router.get("/price-books", response_model=PriceBooksOut)
def list_price_books(session: SessionDep, page: PageDep, actor: PriceReader) -> PriceBooksOut:
    """Price books: the list book of each currency and those negotiated for a tenant."""
    with session.begin():
        found = price_service.list_books(session, actor=actor, page=page)
        return PriceBooksOut(items=found.items, next_cursor=found.next_cursor)


@router.post("/price-books", status_code=status.HTTP_201_CREATED, response_model=PriceBookOut)
def create_price_book(
    body: PriceBookIn, session: SessionDep, actor: PriceWriter, dry_run: bool = False
) -> PriceBookOut:
    """A new book; its entries must not overlap or leave gaps (422 naming the entry).
    `dry_run=true` checks it and writes nothing."""
    return retrying(
        session,
        lambda: price_service.create_book(session, actor=actor, body=body, dry_run=dry_run),
    )


@router.get("/price-books/{book}", response_model=PriceBookOut)
def get_price_book(book: BookName, session: SessionDep, actor: PriceReader) -> PriceBookOut:
    with session.begin():
        return price_service.get_book(session, actor=actor, name=book)


@router.post("/price-books/{book}/prices", response_model=PriceBookOut)
def set_price(
    book: BookName, body: PriceEntryIn, session: SessionDep, actor: PriceWriter
) -> PriceBookOut:
    """A new price from `valid_from` (the first of a month): the one in force ends there."""
    return retrying(
        session, lambda: price_service.set_price(session, actor=actor, name=book, entry=body)
    )


@router.post("/invoices/run", response_model=RunOut)
def run_period(body: RunIn, session: SessionDep, actor: Writer) -> RunOut:
    """Rate a period (YYYY-MM) for every tenant (or one) and write its drafts, replacing
    earlier drafts; finalized documents are kept (409 if nothing else is left to do)."""

    def work() -> RunOut:
        result = invoicing.run(
            session, actor=actor, period=body.period, tenant=body.tenant, now=utcnow()
        )
        return RunOut(
            period=result.period.label,
            documents=views.summaries(session, result.documents),
            kept=views.summaries(session, result.kept),
            replaced_drafts=result.replaced_drafts,
        )

    return retrying(session, work)


@router.get("/invoices", response_model=InvoicesOut)
def list_invoices(
    session: SessionDep,
    page: PageDep,
    actor: Reader,
    period: Annotated[str | None, Query(max_length=7, description="YYYY-MM")] = None,
    tenant: Annotated[str | None, Query(max_length=63)] = None,
    status: InvoiceStatus | None = None,
    kind: DocumentKind | None = None,
) -> InvoicesOut:
    """Invoices, credit notes and showback statements, oldest first (tenants: their own)."""
    with session.begin():
        found = lifecycle.list_invoices(
            session,
            actor=actor,
            page=page,
            period=period,
            tenant=tenant,
            status=status,
            kind=kind,
        )
        return InvoicesOut(
            items=views.summaries(session, found.items), next_cursor=found.next_cursor
        )


@router.get("/invoices/{invoice_id}", response_model=InvoiceOut)
def get_invoice(invoice_id: InvoiceId, session: SessionDep, actor: Reader) -> InvoiceOut:
    """One document with every line, its contract, what it rates and where it came from."""
    with session.begin():
        return views.detail(session, lifecycle.get(session, actor=actor, invoice_id=invoice_id))


@router.get("/invoices/{invoice_id}/document", response_class=Response, responses=FILE_RESPONSES)
def invoice_document(
    invoice_id: InvoiceId,
    session: SessionDep,
    actor: Reader,
    format: Literal["html", "pdf", "csv"] = "html",
) -> Response:
    """The document as HTML, PDF or CSV (`Content-Disposition` names the file)."""
    with session.begin():
        doc = views.detail(session, lifecycle.get(session, actor=actor, invoice_id=invoice_id))
    issuer = operator_name()
    return Response(
        content=render.render(doc, format, issuer),
        media_type=render.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{render.filename(doc, format)}"'},
    )


@router.post("/invoices/{invoice_id}/issue", response_model=InvoiceOut)
def issue_invoice(invoice_id: InvoiceId, session: SessionDep, actor: Writer) -> InvoiceOut:
    """Number and issue a draft (its period must be over); final from then on."""
    return retrying(
        session,
        lambda: views.detail(
            session, lifecycle.issue(session, actor=actor, invoice_id=invoice_id, now=utcnow())
        ),
    )


@router.post("/invoices/{invoice_id}/pay", response_model=InvoiceOut)
def pay_invoice(invoice_id: InvoiceId, session: SessionDep, actor: Writer) -> InvoiceOut:
    """Record that an issued invoice was paid."""
    return retrying(
        session,
        lambda: views.detail(
            session, lifecycle.pay(session, actor=actor, invoice_id=invoice_id, now=utcnow())
        ),
    )


@router.post("/invoices/{invoice_id}/void", response_model=InvoiceOut)
def void_invoice(
    invoice_id: InvoiceId, body: ReasonIn, session: SessionDep, actor: Writer
) -> InvoiceOut:
    """Void a draft or an issued invoice (409 once paid: write a credit note)."""
    return retrying(
        session,
        lambda: views.detail(
            session,
            lifecycle.void(
                session, actor=actor, invoice_id=invoice_id, reason=body.reason, now=utcnow()
            ),
        ),
    )


@router.post(
    "/invoices/{invoice_id}/credit-notes",
    status_code=status.HTTP_201_CREATED,
    response_model=InvoiceOut,
)
def credit_invoice(
    invoice_id: InvoiceId, body: CreditNoteIn, session: SessionDep, actor: Writer
) -> InvoiceOut:
    """A credit note against an issued or paid invoice (default: all that is left)."""
    return retrying(
        session,
        lambda: views.detail(
            session,
            lifecycle.credit_note(
                session,
                actor=actor,
                invoice_id=invoice_id,
                reason=body.reason,
                amount=body.amount,
                now=utcnow(),
            ),
        ),
    )
