"""Creating and booking contracts: all or nothing, in the caller's one transaction."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.billing.price_service import list_book
from neocloud.capacity import state
from neocloud.capacity.calendar import Floor
from neocloud.capacity.planner import Unit
from neocloud.capacity.timeline import HOURS_PER_MONTH, at_hour, hour_of
from neocloud.contracts import pricing, relocation, resolve
from neocloud.contracts.models import Contract, ContractState, ContractType, PriceModel, Quote
from neocloud.contracts.placing import Request, place, write_claims, write_floors
from neocloud.contracts.schemas import ContractCreate, FloorIn
from neocloud.contracts.views import record_revision
from neocloud.core.errors import Conflict, InvalidInput, NotFound
from neocloud.core.timeutil import as_utc, utcnow
from neocloud.fleet.models import Accelerator, Site
from neocloud.tenants.models import Tenant, TenantKind

QUOTE_FIELDS = ("type", "accelerator", "same_fabric", "unit")
SPOT_NOTICE_MINUTES = 30


@dataclass
class Draft:
    """A new contract, checked and resolved but not yet written."""

    contract: Contract
    tenant: Tenant
    accelerator: Accelerator | None
    sites: list[Site] | None


def create_contract(session: Session, *, actor: Principal, body: ContractCreate) -> Contract:
    """Record a contract and (unless `book` is false) book its capacity, atomically."""
    actor.demand(Permission.CONTRACTS_WRITE)
    body = _from_quote(session, actor, body) if body.quote else body
    d = draft_contract(
        session,
        actor,
        body,
        taken=lambda name: (
            session.scalar(sa.select(Contract.id).where(Contract.name == name)) is not None
        ),
    )
    contract = d.contract
    session.add(contract)
    session.flush()
    if body.book:
        ids = [s.id for s in d.sites] if d.sites else None
        book(session, actor=actor, contract=contract, relocate=body.relocate_internal, site_ids=ids)
    if body.price is None:
        contract.price = default_price(session, contract, d.accelerator)
    snap = record_revision(session, actor, contract, "book" if body.book else "quote", None)
    audit.record(
        session,
        actor,
        "contract.create",
        "contract",
        contract.name,
        tenant_id=d.tenant.id,
        after=snap,
    )
    return contract


def draft_contract(
    session: Session,
    actor: Principal,
    body: ContractCreate,
    *,
    taken: Callable[[str], bool],
    lookup: resolve.Names | None = None,
) -> Draft:
    """Check a new contract and resolve its names; write nothing. `taken`: whether a
    contract of that name exists."""
    actor.demand(Permission.CONTRACTS_WRITE)
    tenant = resolve.tenant(session, actor, body.tenant, lookup)
    if body.type is None:
        raise resolve.bad("type", "required: reserved, dedicated-site, on-demand, spot or internal")
    _check_kind(body.type, tenant, body)
    start, end = resolve.term(body.start, body.end)
    if body.name:
        name = body.name
        if taken(name):
            raise Conflict(
                f"a contract named '{name}' already exists",
                errors=[{"loc": ["body", "name"], "msg": "duplicate"}],
            )
    else:
        name = f"{tenant.name[:39]}-{body.type.value}-{secrets.token_hex(4)}"
        while taken(name):
            name = f"{tenant.name[:39]}-{body.type.value}-{secrets.token_hex(4)}"
    acc = (
        resolve.accelerator(session, body.accelerator, lookup=lookup)
        if body.accelerator
        or (body.type.holds_capacity and body.type is not ContractType.DEDICATED_SITE)
        else None
    )
    allowed = resolve.sites(session, body.site, body.sites, lookup=lookup)
    contract = Contract(
        name=name,
        tenant_id=tenant.id,
        type=body.type,
        state=ContractState.QUOTED,
        accelerator_id=acc.id if acc else None,
        gpus=body.gpus,
        mw=body.mw,
        site_id=allowed[0].id if allowed and len(allowed) == 1 else None,
        sites=[s.name for s in allowed] if allowed else None,
        same_fabric=body.same_fabric,
        unit=body.unit.value,
        start_at=at_hour(start),
        end_at=at_hour(end),
        price_model=body.price_model or _default_model(body.type),
        price=body.price if body.price is not None else Decimal(0),
        currency=body.currency,
        commitment=body.commitment,
        take_or_pay=(
            body.take_or_pay
            if body.take_or_pay is not None
            else body.type in (ContractType.RESERVED, ContractType.DEDICATED_SITE)
        ),
        prepayment_pct=body.prepayment_pct,
        sla_tier=body.sla_tier.value,
        lendable=body.lendable,
        notice_minutes=(
            body.notice_minutes
            if body.notice_minutes is not None or body.type is not ContractType.SPOT
            else SPOT_NOTICE_MINUTES
        ),
        floors=[f.model_dump(mode="json", exclude_none=True) for f in body.floors or []] or None,
        quote_id=body.quote,
        notes=body.notes,
        revision=1,
    )
    return Draft(contract, tenant, acc, allowed)


def book(
    session: Session,
    *,
    actor: Principal,
    contract: Contract,
    relocate: bool = True,
    site_ids: list[int] | None = None,
) -> None:
    """Take the capacity a contract needs (none for on-demand and spot) and mark it booked.
    `site_ids`: the ids of `contract.sites`, when the caller has them at hand."""
    start, end = resolve.hour(contract.start_at, "start"), resolve.hour(contract.end_at, "end")
    kind = contract.type
    touched: list[int] = []
    if kind is ContractType.DEDICATED_SITE:
        if contract.site_id is None:
            raise resolve.bad("site", "a dedicated-site contract names exactly one site")
        result = relocation.book_dedicated(
            session, actor=actor, contract=contract, start=start, end=end, relocate=relocate
        )
        contract.gpus, contract.mw = result.gpus, result.mw
        touched = result.sites
    elif kind.holds_capacity:
        acc = session.get(Accelerator, contract.accelerator_id)
        assert acc is not None
        sites = site_ids if site_ids is not None else _site_ids(session, contract)
        req = capacity_request(contract, acc, sites)
        fit = place(session, req, contract_id=contract.id, new=True)
        claims = fit.claims(contract.id, internal=req.internal)
        touched = write_claims(session, claims)
        contract.site_id, contract.gpus = fit.site_id, fit.gpus
        if kind is ContractType.INTERNAL and contract.floors:
            touched += set_floors(session, contract, fit.site_id, acc.id, start, end)
    state.bump_ledgers(session, touched)
    contract.state = ContractState.BOOKED
    contract.booked_at = utcnow()


def capacity_request(contract: Contract, acc: Accelerator, site_ids: list[int] | None) -> Request:
    """What a reserved or internal contract asks of the calendar."""
    return Request(
        acc.id,
        acc.name,
        contract.gpus,
        contract.mw,
        site_ids,
        resolve.hour(contract.start_at, "start"),
        resolve.hour(contract.end_at, "end"),
        contract.same_fabric,
        Unit(contract.unit),
        contract.type is ContractType.INTERNAL,
    )


def set_floors(
    session: Session, contract: Contract, home: int, acc_id: int, start: int, end: int
) -> list[int]:
    """Write an internal contract's floors, refusing any that customers already hold."""
    floors: list[Floor] = []
    for i, spec in enumerate(FloorIn.model_validate(f) for f in contract.floors or []):
        sid = resolve.site(session, spec.site, ["floors", str(i), "site"]).id if spec.site else home
        a = resolve.hour(spec.start, f"floors.{i}.start") if spec.start else start
        b = resolve.hour(spec.end, f"floors.{i}.end") if spec.end else end
        if b <= a:
            raise resolve.bad(["floors", str(i), "end"], "must be after its start")
        floors.append(Floor(contract.id, sid, acc_id, a, b, spec.gpus, spec.share))
    check_floors(session, floors)
    return write_floors(session, floors)


def check_floors(session: Session, floors: list[Floor]) -> None:
    """Refuse floors that would take capacity customers already hold, under the floor
    sites' locks (a new floor, or one an amendment stretches or moves)."""
    sites = sorted({f.site_id for f in floors})
    state.lock_sites(session, sites)
    books = state.CACHE.books(session, sites)
    for sid in sites:
        mine = [f for f in floors if f.site_id == sid]
        after = books[sid].with_changes(add_floors=mine)
        broken = [
            v
            for v in after.violations(min(f.start for f in mine), max(f.end for f in mine))
            if v.kind == "floor"
        ]
        if broken:
            v = broken[0]
            raise Conflict(
                f"the floor at {books[sid].site.name} would take {v.amount} GPUs that customers "
                f"already hold from {at_hour(v.start):%Y-%m-%d}",
                errors=[{"loc": ["body", "floors"], "msg": "customers already hold it"}],
            )


def book_quoted(session: Session, *, actor: Principal, name: str) -> Contract:
    """Book a contract recorded as quoted (a draft that held nothing)."""
    actor.demand(Permission.CONTRACTS_WRITE)
    contract = locked_contract(session, actor, name)
    if contract.state is not ContractState.QUOTED:
        raise Conflict(
            f"contract '{name}' is {contract.state.value}; only a quoted one can be booked"
        )
    book(session, actor=actor, contract=contract)
    contract.revision += 1
    snap = record_revision(session, actor, contract, "book", None)
    audit.record(
        session, actor, "contract.book", "contract", name, tenant_id=contract.tenant_id, after=snap
    )
    return contract


def locked_contract(session: Session, actor: Principal, name: str) -> Contract:
    contract = session.scalar(sa.select(Contract).where(Contract.name == name).with_for_update())
    if contract is None:
        raise NotFound(f"contract '{name}' not found")
    actor.check_tenant(contract.tenant_id, f"contract '{name}'")
    return contract


def _site_ids(session: Session, contract: Contract) -> list[int] | None:
    if not contract.sites:
        return None
    found = resolve.sites(session, None, contract.sites)
    return [s.id for s in found] if found else None


def _default_model(kind: ContractType) -> PriceModel:
    return (
        PriceModel.PER_MW_MONTH if kind is ContractType.DEDICATED_SITE else PriceModel.PER_GPU_HOUR
    )


def default_price(session: Session, c: Contract, acc: Accelerator | None) -> Decimal:
    hours = int((as_utc(c.end_at) - as_utc(c.start_at)).total_seconds() // 3600)
    if c.price_model is PriceModel.MONTHLY_FEE:
        raise resolve.bad("price", "required with the monthly-fee price model")
    if c.type is ContractType.DEDICATED_SITE:
        monthly = relocation.site_value_per_month(session, c, hours)
        per_mw = pricing.per_mw_month(monthly, c.mw or Decimal(1))
        if c.price_model is PriceModel.PER_MW_MONTH:
            return per_mw
        return (monthly / Decimal(max(c.gpus or 1, 1)) / HOURS_PER_MONTH).quantize(pricing.CENT)
    if acc is None:
        return Decimal(0)
    rate = pricing.gpu_hour_rate(
        c.type, acc.name, acc.bf16_tflops, hours, list_book(session), hour_of(c.start_at)
    )
    if c.price_model is PriceModel.PER_MW_MONTH:
        raise resolve.bad("price_model", "per-mw-month is for dedicated-site contracts")
    return rate


def _check_kind(kind: ContractType, tenant: Tenant, body: ContractCreate) -> None:
    internal = tenant.kind is TenantKind.INTERNAL
    if kind is ContractType.INTERNAL and not internal:
        raise resolve.bad(
            "type",
            f"tenant '{tenant.name}' is a customer; internal contracts are "
            "for the operator's own teams",
        )
    if internal and kind in (ContractType.RESERVED, ContractType.DEDICATED_SITE):
        raise resolve.bad("type", f"tenant '{tenant.name}' is internal: book an internal contract")
    if body.floors and kind is not ContractType.INTERNAL:
        raise resolve.bad("floors", "only internal contracts carry a floor")
    if kind is ContractType.DEDICATED_SITE:
        if not body.site or body.sites:
            raise resolve.bad("site", "a dedicated-site contract names exactly one site")
    elif kind.holds_capacity and body.gpus is None and body.mw is None:
        raise resolve.bad("gpus", "give the number of GPUs (or mw)")
    if body.gpus is not None and body.mw is not None:
        raise resolve.bad("mw", "give gpus or mw, not both")


def _from_quote(session: Session, actor: Principal, body: ContractCreate) -> ContractCreate:
    """Fill a booking from a stored quote's option; explicit fields win."""
    quote = session.get(Quote, body.quote)
    if quote is None or (actor.tenant_id is not None and quote.tenant_id != actor.tenant_id):
        raise NotFound(f"quote {body.quote} not found")
    if as_utc(quote.expires_at) <= utcnow():
        raise Conflict(
            f"quote {quote.id} expired at {as_utc(quote.expires_at).isoformat()}; ask for a new one"
        )
    options = {o["option"]: o for o in quote.options}
    if body.option not in options:
        raise InvalidInput(
            f"quote {quote.id} has no option {body.option} (it has {len(options)})",
            errors=[{"loc": ["body", "option"], "msg": "no such option"}],
        )
    opt = options[body.option]
    req = quote.request
    given = body.model_dump(exclude_unset=True)
    merged: dict[str, Any] = {
        "tenant": req.get("tenant"),
        "type": req.get("type"),
        "accelerator": opt.get("accelerator"),
        "same_fabric": req.get("same_fabric", False),
        "unit": req.get("unit", "gpu"),
        "site": opt["site"],
        "start": opt["start"],
        "end": opt["end"],
        "price_model": opt["price_model"],
        "price": opt["price"],
        "currency": opt["currency"],
    }
    if req.get("type") != ContractType.DEDICATED_SITE.value:
        merged["gpus"] = opt["gpus"]
    merged.update(given)
    return ContractCreate.model_validate(merged)
