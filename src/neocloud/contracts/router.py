"""/v1/contracts (book, amend, cancel, history) and /v1/quotes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from starlette.concurrency import run_in_threadpool

from neocloud.api.deps import PageDep, SessionDep, require
from neocloud.api.schemas import PageOut
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission as P
from neocloud.contracts import amendments, batching, booking, quotes, service
from neocloud.contracts.models import ContractState, ContractType
from neocloud.contracts.schemas import (
    AmendmentCreate,
    CancelIn,
    ContractCreate,
    ContractOut,
    QuoteCreate,
    QuoteOut,
    RevisionOut,
)
from neocloud.contracts.views import contract_out
from neocloud.db.engine import retrying

router = APIRouter(tags=["contracts"])
Reader = Annotated[Principal, Depends(require(P.CONTRACTS_READ))]
Writer = Annotated[Principal, Depends(require(P.CONTRACTS_WRITE))]
Quoter = Annotated[Principal, Depends(require(P.QUOTES_WRITE))]
ContractName = Annotated[str, Path(max_length=63)]


@router.get("/contracts", response_model=PageOut[ContractOut])
def list_contracts(
    session: SessionDep,
    page: PageDep,
    actor: Reader,
    tenant: Annotated[str | None, Query(max_length=63)] = None,
    type: ContractType | None = None,
    state: ContractState | None = None,
    site: Annotated[str | None, Query(max_length=63)] = None,
) -> PageOut[ContractOut]:
    """Contracts, newest last; tenants see only their own. `state=active` means in its term."""
    with session.begin():
        result = service.list_contracts(
            session, actor=actor, page=page, tenant=tenant, type=type, state=state, site=site
        )
        return PageOut(items=result.items, next_cursor=result.next_cursor)


@router.post("/contracts", status_code=status.HTTP_201_CREATED, response_model=ContractOut)
async def create_contract(
    body: ContractCreate, request: Request, session: SessionDep, actor: Writer
) -> ContractOut:
    """Book a contract (directly, or from a quote's option) atomically: it fits or it is 409.
    New bookings wait on the event loop for the next batch (`batching`); the others are
    booked alone in a worker thread."""
    if batching.batchable(body):
        queues: batching.BookingQueues = request.app.state.bookings
        return await queues.of(request.app.state.sessionmaker).book(actor, body)

    def work() -> ContractOut:
        return contract_out(session, booking.create_contract(session, actor=actor, body=body))

    return await run_in_threadpool(retrying, session, work)


@router.get("/contracts/{contract}", response_model=ContractOut)
def get_contract(contract: ContractName, session: SessionDep, actor: Reader) -> ContractOut:
    with session.begin():
        return service.get_contract(session, actor=actor, name=contract)


@router.get("/contracts/{contract}/history", response_model=list[RevisionOut])
def contract_history(
    contract: ContractName, session: SessionDep, actor: Reader
) -> list[RevisionOut]:
    """Every revision: booking, amendments, relocations, cancellation, with who and why."""
    with session.begin():
        return service.history(session, actor=actor, name=contract)


@router.post("/contracts/{contract}/amendments", response_model=ContractOut)
def amend_contract(
    contract: ContractName, body: AmendmentCreate, session: SessionDep, actor: Writer
) -> ContractOut:
    """Extend, grow, shrink or move a contract; checked like a new booking."""

    def work() -> ContractOut:
        row = amendments.amend(session, actor=actor, name=contract, body=body)
        return contract_out(session, row)

    return retrying(session, work)


@router.post("/contracts/{contract}/cancel", response_model=ContractOut)
def cancel_contract(
    contract: ContractName, body: CancelIn, session: SessionDep, actor: Writer
) -> ContractOut:
    """Cancel: capacity is released from the next hour; the history keeps what was."""

    def work() -> ContractOut:
        row = amendments.cancel(session, actor=actor, name=contract, reason=body.reason)
        return contract_out(session, row)

    return retrying(session, work)


@router.post("/contracts/{contract}/book", response_model=ContractOut)
def book_contract(contract: ContractName, session: SessionDep, actor: Writer) -> ContractOut:
    """Book a contract that was recorded as quoted."""

    def work() -> ContractOut:
        return contract_out(session, booking.book_quoted(session, actor=actor, name=contract))

    return retrying(session, work)


@router.post("/quotes", status_code=status.HTTP_201_CREATED, response_model=QuoteOut)
def create_quote(body: QuoteCreate, session: SessionDep, actor: Quoter) -> QuoteOut:
    """Ranked options (site, start, price, what each uses up), or the earliest start that fits."""
    with session.begin():
        return quotes.create_quote(session, actor=actor, body=body)


@router.get("/quotes/{quote_id}", response_model=QuoteOut)
def get_quote(
    quote_id: Annotated[int, Path(ge=1, le=2**31 - 1)], session: SessionDep, actor: Reader
) -> QuoteOut:
    with session.begin():
        return quotes.get_quote(session, actor=actor, quote_id=quote_id)
