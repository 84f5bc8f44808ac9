"""Request dependencies: a database session, the calling principal, permission checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session, sessionmaker

from neocloud.auth import service as auth_service
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.core.errors import Unauthorized
from neocloud.core.paging import MAX_LIMIT, PageRequest


def get_session(request: Request) -> Iterator[Session]:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    with factory() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send 'Authorization: Bearer <token>'")
    return token.strip()


def get_principal(request: Request, session: SessionDep) -> Principal:
    token = bearer_token(request)
    with session.begin():
        return auth_service.authenticate(session, token)


def require(permission: Permission) -> Callable[..., Principal]:
    """A dependency that authenticates and demands `permission`.

    The function carries `.permission` so that tests can enumerate every route's policy.
    """

    def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
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
