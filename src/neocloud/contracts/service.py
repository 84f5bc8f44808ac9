"""Reading contracts: lists with filters, one contract, its history. Tenants see their own."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.contracts.models import Contract, ContractRevision, ContractState, ContractType
from neocloud.contracts.schemas import ContractOut, RevisionOut
from neocloud.contracts.views import contract_out, contracts_out
from neocloud.core.errors import NotFound
from neocloud.core.paging import Page, PageRequest, paginate
from neocloud.core.timeutil import as_utc, utcnow
from neocloud.fleet.models import Site
from neocloud.tenants.models import Tenant


def _state_filter(
    stmt: sa.Select[Contract], wanted: ContractState, now: datetime
) -> sa.Select[Contract]:
    booked = Contract.state == ContractState.BOOKED
    if wanted is ContractState.ACTIVE:
        return stmt.where(booked, Contract.start_at <= now, Contract.end_at > now)
    if wanted is ContractState.ENDED:
        return stmt.where(booked, Contract.end_at <= now)
    if wanted is ContractState.BOOKED:
        return stmt.where(booked, Contract.start_at > now)
    return stmt.where(Contract.state == wanted)


def list_contracts(
    session: Session,
    *,
    actor: Principal,
    page: PageRequest,
    tenant: str | None = None,
    type: ContractType | None = None,
    state: ContractState | None = None,
    site: str | None = None,
) -> Page[ContractOut]:
    actor.demand(Permission.CONTRACTS_READ)
    stmt = actor.scope(sa.select(Contract), Contract.tenant_id)
    if tenant:
        stmt = stmt.join(Tenant, Contract.tenant_id == Tenant.id).where(Tenant.name == tenant)
    if type:
        stmt = stmt.where(Contract.type == type)
    if state:
        stmt = _state_filter(stmt, state, utcnow())
    if site:
        stmt = stmt.join(Site, Contract.site_id == Site.id).where(Site.name == site)
    result = paginate(session, stmt, Contract.id, page)
    return Page(contracts_out(session, result.items), result.next_cursor)


def contract_by_name(session: Session, actor: Principal, name: str) -> Contract:
    contract = session.scalar(sa.select(Contract).where(Contract.name == name))
    if contract is None:
        raise NotFound(f"contract '{name}' not found")
    actor.check_tenant(contract.tenant_id, f"contract '{name}'")
    return contract


def get_contract(session: Session, *, actor: Principal, name: str) -> ContractOut:
    actor.demand(Permission.CONTRACTS_READ)
    return contract_out(session, contract_by_name(session, actor, name))


def history(session: Session, *, actor: Principal, name: str) -> list[RevisionOut]:
    actor.demand(Permission.CONTRACTS_READ)
    contract = contract_by_name(session, actor, name)
    rows = session.scalars(
        sa.select(ContractRevision)
        .where(ContractRevision.contract_id == contract.id)
        .order_by(ContractRevision.revision, ContractRevision.id)
    )
    return [
        RevisionOut(
            revision=r.revision,
            action=r.action,
            reason=r.reason,
            actor=r.actor,
            at=as_utc(r.at),
            snapshot=r.snapshot,
        )
        for r in rows
    ]
