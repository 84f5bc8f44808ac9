"""/v1/tokens and /v1/audit-events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from neocloud.api.deps import PageDep, SessionDep, require
from neocloud.api.schemas import PageOut
from neocloud.auth import service
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission as P
from neocloud.auth.schemas import AuditEventOut, TokenCreate, TokenCreated, TokenOut

router = APIRouter(tags=["auth"])
# The id column is a 32-bit integer: a larger id is invalid input, not a database error.
TokenId = Annotated[int, Path(ge=1, le=2_147_483_647)]


@router.post("/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenCreated)
def create_token(
    body: TokenCreate,
    session: SessionDep,
    actor: Annotated[Principal, Depends(require(P.TOKENS_WRITE))],
) -> TokenCreated:
    with session.begin():
        row, secret = service.create_token(
            session,
            actor=actor,
            name=body.name,
            role=body.role,
            tenant=body.tenant,
            expires_at=body.expires_at,
        )
        return TokenCreated(**TokenOut.model_validate(row).model_dump(), token=secret)


@router.get("/tokens", response_model=PageOut[TokenOut])
def list_tokens(
    session: SessionDep, page: PageDep, actor: Annotated[Principal, Depends(require(P.TOKENS_READ))]
) -> PageOut[TokenOut]:
    with session.begin():
        result = service.list_tokens(session, actor=actor, page=page)
        return PageOut(
            items=[TokenOut.model_validate(t) for t in result.items], next_cursor=result.next_cursor
        )


@router.get("/tokens/{token_id}", response_model=TokenOut)
def get_token(
    token_id: TokenId,
    session: SessionDep,
    actor: Annotated[Principal, Depends(require(P.TOKENS_READ))],
) -> TokenOut:
    with session.begin():
        return TokenOut.model_validate(service.get_token(session, actor=actor, token_id=token_id))


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(
    token_id: TokenId,
    session: SessionDep,
    actor: Annotated[Principal, Depends(require(P.TOKENS_WRITE))],
) -> TokenOut:
    """Revoke a token. It stays listed, with `revoked_at`, for the audit trail."""
    with session.begin():
        return TokenOut.model_validate(
            service.revoke_token(session, actor=actor, token_id=token_id)
        )


@router.get("/audit-events", response_model=PageOut[AuditEventOut])
def list_audit_events(
    session: SessionDep,
    page: PageDep,
    actor: Annotated[Principal, Depends(require(P.AUDIT_READ))],
    action: Annotated[str | None, Query(max_length=64, description="e.g. tenant.create")] = None,
) -> PageOut[AuditEventOut]:
    with session.begin():
        result = service.list_audit_events(session, actor=actor, page=page, action=action)
        return PageOut(
            items=[AuditEventOut.model_validate(e) for e in result.items],
            next_cursor=result.next_cursor,
        )
