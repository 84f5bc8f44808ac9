"""Request dependencies: a database session, the calling principal, permission checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from neocloud.auth import service as auth_service
from neocloud.auth.cache import TOKENS
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.auth.tokens import digest
from neocloud.core.errors import Unauthorized
from neocloud.core.paging import MAX_LIMIT, PageRequest


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session for the request. Async (run on the event loop, not in a worker thread):
    making one does no I/O, and every route ends its transactions before it returns, so
    closing it has nothing to roll back."""
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    with factory() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def bearer_token(request: Request) -> str:
    return _bearer(request)


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send 'Authorization: Bearer <token>'")
    return token.strip()


async def get_principal(request: Request) -> Principal:
    """The caller, from its bearer token: from this process's token cache when it has just
    seen the token (see `neocloud.auth.cache`), else read in a worker thread."""
    token = _bearer(request)
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    database = str(request.app.state.engine.url)
    found = TOKENS.get(database, digest(token))
    if found is not None:
        return found
    return await run_in_threadpool(_authenticate, factory, database, token)


def _authenticate(factory: sessionmaker[Session], database: str, token: str) -> Principal:
    with factory() as session, session.begin():
        principal, row = auth_service.authenticate_row(session, token)
        TOKENS.put(database, row.token_hash, principal, row.expires_at)
        return principal


def require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates and demands `permission`.

    The function carries `.permission` so that tests can enumerate every route's policy.
    """

    async def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        principal.demand(permission)
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    dependency.__name__ = f"require_{permission.value.replace(':', '_')}"
    return dependency


def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> PageRequest:
    return PageRequest.parse(limit, cursor)


PageDep = Annotated[PageRequest, Depends(page_request)]
