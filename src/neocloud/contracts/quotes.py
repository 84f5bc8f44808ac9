"""Quotes: ranked options for a request, or the earliest start that fits and what is missing.

A quote reads the cached calendar (no locks, nothing held); it is stored so that a booking
can refer to it, and booking checks everything again.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.billing.price_service import list_book
from neocloud.billing.prices import PriceBook
from neocloud.capacity import state
from neocloud.capacity.calendar import SiteBook
from neocloud.capacity.planner import Fit, Need, describe_uses, earliest_fit, shortfall
from neocloud.capacity.timeline import HOURS_PER_MONTH, Hour, at_hour, hour_of
from neocloud.contracts import pricing, relocation, resolve
from neocloud.contracts.models import ContractType, PriceModel, Quote
from neocloud.contracts.placing import Request
from neocloud.contracts.schemas import (
    MissingOut,
    PoolPart,
    QuoteCreate,
    QuoteOption,
    QuoteOut,
    RelocationOut,
    UnavailableOut,
    UseOut,
)
from neocloud.core.errors import NotFound
from neocloud.core.timeutil import as_utc, utcnow
from neocloud.fleet.models import Accelerator
from neocloud.tenants.models import Tenant, TenantKind

QUOTE_VALID_DAYS = 7
DEFAULT_WINDOW_HOURS = 90 * 24
SEARCH_YEARS = 5
MW_Q = Decimal("0.001")


def _duration(body: QuoteCreate) -> Hour | None:
    if body.months:
        return body.months * HOURS_PER_MONTH
    if body.days:
        return body.days * 24
    return body.hours


def create_quote(session: Session, *, actor: Principal, body: QuoteCreate) -> QuoteOut:
    actor.demand(Permission.QUOTES_WRITE)
    tenant = resolve.tenant(session, actor, body.tenant) if body.tenant or actor.tenant_id else None
    kind = body.type
    if tenant is not None and tenant.kind is TenantKind.INTERNAL and kind is ContractType.RESERVED:
        kind = ContractType.INTERNAL
    duration = _duration(body)
    if duration is None:
        if kind.holds_capacity:
            raise resolve.bad("months", "give the term: months, days or hours")
        duration = HOURS_PER_MONTH
    now = hour_of(utcnow()) + 1
    asked = resolve.hour(body.start_after, "start_after") if body.start_after else now
    latest = (
        resolve.hour(body.start_before, "start_before")
        if body.start_before
        else max(asked, now) + DEFAULT_WINDOW_HOURS
    )
    if latest < asked:
        raise resolve.bad("start_before", "must not be before start_after")
    if latest < now:
        raise resolve.bad(
            "start_before", "is in the past: a quote offers starts from the next hour"
        )
    earliest = max(asked, now)  # a quote offers what can still be sold: no start in the past
    allowed = resolve.sites(session, body.site, body.sites)
    site_ids = [s.id for s in allowed] if allowed else None
    books = state.CACHE.books(session, site_ids)
    if kind is ContractType.DEDICATED_SITE:
        if not allowed:
            raise resolve.bad("site", "name the site(s) to quote whole")
        options, unavailable = _dedicated(session, books, earliest, latest, duration)
        acc = None
    else:
        acc = resolve.accelerator(session, body.accelerator)
        if kind.holds_capacity and body.gpus is None and body.mw is None:
            raise resolve.bad("gpus", "give the number of GPUs (or mw)")
        req = Request(
            acc.id,
            acc.name,
            body.gpus,
            body.mw,
            site_ids,
            earliest,
            earliest + duration,
            body.same_fabric,
            body.unit,
            kind is ContractType.INTERNAL,
        )
        if kind.holds_capacity:
            options, unavailable = _committed(books, req, kind, acc, latest, list_book(session))
        else:
            options, unavailable = _uncommitted(books, req, kind, acc, list_book(session))
    options = options[: body.max_options]
    for i, o in enumerate(options, start=1):
        o.option = i
    request: dict[str, Any] = body.model_dump(mode="json", exclude_none=True)
    request.update(type=kind.value, tenant=tenant.name if tenant else None)
    quote = Quote(
        tenant_id=tenant.id if tenant else None,
        request=request,
        options=[o.model_dump(mode="json") for o in options],
        expires_at=utcnow() + timedelta(days=QUOTE_VALID_DAYS),
    )
    session.add(quote)
    session.flush()
    audit.record(
        session,
        actor,
        "quote.create",
        "quote",
        quote.id,
        tenant_id=quote.tenant_id,
        after={"request": request, "options": len(options)},
    )
    return _out(quote, tenant.name if tenant else None, kind, options, unavailable)


def _out(
    quote: Quote,
    tenant: str | None,
    kind: ContractType,
    options: list[QuoteOption],
    unavailable: UnavailableOut | None,
) -> QuoteOut:
    return QuoteOut(
        id=quote.id,
        tenant=tenant,
        type=kind,
        created_at=as_utc(quote.created_at),
        expires_at=as_utc(quote.expires_at),
        request=quote.request,
        options=options,
        unavailable=unavailable,
    )


def get_quote(session: Session, *, actor: Principal, quote_id: int) -> QuoteOut:
    actor.demand(Permission.CONTRACTS_READ)
    quote = session.get(Quote, quote_id)
    if quote is None or (actor.tenant_id is not None and quote.tenant_id != actor.tenant_id):
        raise NotFound(f"quote {quote_id} not found")
    tenant = session.get(Tenant, quote.tenant_id) if quote.tenant_id else None
    options = [QuoteOption.model_validate(o) for o in quote.options]
    return _out(
        quote, tenant.name if tenant else None, ContractType(quote.request["type"]), options, None
    )


def _mw(book: SiteBook, fit: Fit) -> Decimal:
    watts = sum(g * book.pools[k].watts_per_gpu for k, g in fit.parts)
    return (Decimal(watts) * book.site.pue / 1_000_000).quantize(MW_Q)


def _option(
    book: SiteBook, fit: Fit, need: Need, kind: ContractType, acc: Accelerator, rate: Decimal
) -> QuoteOption:
    hours = fit.end - fit.start
    return QuoteOption(
        option=0,
        site=book.site.name,
        accelerator=acc.name,
        start=at_hour(fit.start),
        end=at_hour(fit.end),
        gpus=fit.gpus,
        mw=_mw(book, fit),
        price_model=PriceModel.PER_GPU_HOUR,
        price=rate,
        currency="USD",
        contract_value=(rate * fit.gpus * hours).quantize(Decimal("0.01")),
        pools=[PoolPart(fabric=k[2], gpus=g) for k, g in fit.parts],
        uses=[
            UseOut(kind=u.kind, share=u.share, at=at_hour(u.at), detail=u.detail)
            for u in describe_uses(book, fit, need, acc.name)
        ],
    )


def _committed(
    books: dict[int, SiteBook],
    req: Request,
    kind: ContractType,
    acc: Accelerator,
    latest: Hour,
    prices: PriceBook | None,
) -> tuple[list[QuoteOption], UnavailableOut | None]:
    rate = pricing.gpu_hour_rate(
        kind, acc.name, acc.bf16_tflops, req.end - req.start, prices, req.start
    )
    found: list[tuple[tuple[Hour, int, str], QuoteOption]] = []
    needs: dict[int, Need] = {}
    for sid, book in books.items():
        need = req.need(book)
        if need is None:
            continue
        needs[sid] = need
        window = Need(
            need.accelerator_id,
            need.gpus,
            need.duration,
            req.start,
            latest,
            need.same_fabric,
            need.unit,
            need.internal,
        )
        fit = earliest_fit(book, window)
        if fit is not None:
            found.append(
                (
                    (fit.start, len(fit.parts), book.site.name),
                    _option(book, fit, need, kind, acc, rate),
                )
            )
    options = [o for _, o in sorted(found, key=lambda x: x[0])]
    if options:
        return options, None
    return [], _unavailable(books, needs, req, latest)


def _unavailable(
    books: dict[int, SiteBook], needs: dict[int, Need], req: Request, latest: Hour
) -> UnavailableOut:
    missing = [shortfall(books[sid], n, req.start) for sid, n in needs.items()]
    horizon = req.start + SEARCH_YEARS * 8760
    best: tuple[Hour, str] | None = None
    for sid, n in needs.items():
        later = Need(
            n.accelerator_id, n.gpus, n.duration, latest, horizon, n.same_fabric, n.unit, n.internal
        )
        fit = earliest_fit(books[sid], later)
        if fit is not None and (best is None or fit.start < best[0]):
            best = (fit.start, books[sid].site.name)
    what = f"{req.gpus} {req.accelerator} GPUs" if req.gpus else f"{req.mw} MW of {req.accelerator}"
    detail = f"no site can hold {what} for the term starting in the window"
    if not needs:
        detail = f"no site in the request has any {req.accelerator}"
    if best:
        detail += (
            f"; the earliest start that fits is {at_hour(best[0]):%Y-%m-%d %H:%M} UTC at {best[1]}"
        )
    return UnavailableOut(
        detail=detail,
        earliest_start=at_hour(best[0]) if best else None,
        earliest_site=best[1] if best else None,
        missing=[
            MissingOut(
                site=books[m.site_id].site.name,
                possible=m.possible,
                missing=m.missing,
                reason=m.reason,
            )
            for m in sorted(missing, key=lambda m: -m.possible)
        ],
    )


def _uncommitted(
    books: dict[int, SiteBook],
    req: Request,
    kind: ContractType,
    acc: Accelerator,
    prices: PriceBook | None,
) -> tuple[list[QuoteOption], UnavailableOut | None]:
    """On-demand and spot: no capacity is held; show what is free now and the price."""
    rate = pricing.gpu_hour_rate(
        kind, acc.name, acc.bf16_tflops, req.end - req.start, prices, req.start
    )
    options: list[tuple[int, QuoteOption]] = []
    for book in books.values():
        keys = book.accelerators.get(acc.id, [])
        free = {k: book.available(k, False).min_over(req.start, req.end) for k in keys}
        total = sum(max(0, v) for v in free.values())
        if total <= 0:
            continue
        gpus = min(total, req.gpus) if req.gpus else total
        parts, left = [], gpus
        for k in sorted(free, key=lambda k: -free[k]):
            if left > 0 and free[k] > 0:
                parts.append((k, min(left, free[k])))
                left -= parts[-1][1]
        fit = Fit(book.site.id, req.start, req.end, parts)
        need = Need(acc.id, gpus, req.end - req.start, req.start, req.start)
        opt = _option(book, fit, need, kind, acc, rate)
        opt.uses.insert(
            0,
            UseOut(
                kind="not-guaranteed",
                share=Decimal(0),
                at=at_hour(req.start),
                detail=f"{kind.value} holds no capacity: {total} GPUs are free "
                f"at {book.site.name} now, not promised",
            ),
        )
        options.append((-total, opt))
    return [o for _, o in sorted(options, key=lambda x: x[0])], None if options else UnavailableOut(
        detail=f"no {acc.name} capacity is free now at the requested sites",
        earliest_start=None,
        earliest_site=None,
        missing=[],
    )


def _dedicated(
    session: Session, books: dict[int, SiteBook], earliest: Hour, latest: Hour, duration: Hour
) -> tuple[list[QuoteOption], UnavailableOut | None]:
    everything = state.CACHE.books(session)
    holders = relocation.holders(session, everything)
    options: list[QuoteOption] = []
    missing: list[MissingOut] = []
    for sid, book in books.items():
        starts = sorted(
            {earliest}
            | {c.end for c in book.claims if earliest < c.end <= latest}
            | {f.end for f in book.floors if earliest < f.end <= latest}
        )
        plan = None
        for s in starts[:50]:
            plan = relocation.plan_dedicated(everything, sid, s, s + duration, holders)
            if not plan.blockers:
                break
        if plan is None or plan.blockers:
            missing.append(
                MissingOut(
                    site=book.site.name,
                    possible=0,
                    missing=0,
                    reason="; ".join(plan.blockers if plan else []),
                )
            )
            continue
        months = Decimal(duration) / HOURS_PER_MONTH
        monthly = sum(
            (
                pricing.gpu_hour_rate(
                    ContractType.RESERVED,
                    book.pools[c.pool].accelerator,
                    _tflops(session, c.pool[1]),
                    duration,
                    list_book(session),
                    plan.start,
                )
                * c.gpus
                * HOURS_PER_MONTH
                for c in plan.claims
            ),
            Decimal(0),
        )
        mw = book.site.power_mw
        per_mw = pricing.per_mw_month(monthly, mw)
        names = {b.site.id: b.site.name for b in everything.values()}
        options.append(
            QuoteOption(
                option=0,
                site=book.site.name,
                accelerator=None,
                start=at_hour(plan.start),
                end=at_hour(plan.end),
                gpus=plan.gpus,
                mw=mw,
                price_model=PriceModel.PER_MW_MONTH,
                price=per_mw,
                currency="USD",
                contract_value=(per_mw * mw * months).quantize(Decimal("0.01")),
                pools=[PoolPart(fabric=c.pool[2], gpus=c.gpus) for c in plan.claims],
                uses=[
                    UseOut(
                        kind="site",
                        share=Decimal(1),
                        at=at_hour(plan.start),
                        detail=f"takes all of {book.site.name}: {plan.gpus} GPUs, {mw} MW",
                    )
                ],
                relocations=[
                    RelocationOut(
                        contract=holders[m.contract_id].name,
                        gpus=m.gpus,
                        start=at_hour(m.start),
                        end=at_hour(m.end),
                        from_site=names[m.from_site],
                        to_site=names[m.to_site],
                        parts=[PoolPart(fabric=c.pool[2], gpus=c.gpus) for c in m.claims],
                    )
                    for m in plan.moves
                ],
            )
        )
    unavailable = None
    if not options:
        unavailable = UnavailableOut(
            detail="no requested site can be sold whole in the window",
            earliest_start=None,
            earliest_site=None,
            missing=missing,
        )
    return sorted(options, key=lambda o: o.start), unavailable


def _tflops(session: Session, acc_id: int) -> Decimal:
    acc = session.get(Accelerator, acc_id)
    return Decimal(acc.bf16_tflops) if acc else Decimal(989)
