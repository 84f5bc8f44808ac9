"""Why: the reason each deal was left out, and which constraint an infeasible scenario
cannot meet.

A rejection is explained by the cheapest test that settles it: a decision; no site with the
chip; a price below the cost of the capacity; no option that fits in what the sites have
at all (capacity or power, with the quarters where it falls short); otherwise the program
is solved again with the deal forced in, and the reason is what that costs: the margin
lost, and what it pushes out (internal demand or other deals) at which site and quarters.

An infeasible scenario is checked choice by choice against capacity (an accepted deal that
fits nowhere, a floor above supply) and then solved elastically: capacity, power and floor
rows may be exceeded at a price, and the rows that are exceeded are the answer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from neocloud.planning.data import Decisions, Scenario
from neocloud.planning.model import Model, Option, Row, build
from neocloud.planning.optimize import Plan, Solution, read_plan, relaxed_solve, solve_model
from neocloud.planning.quarters import HOURS_PER_QUARTER, label, span

MAX_RESOLVES = 40
"""Rejections explained by a second solve; beyond this, by the quick tests only."""
RESOLVE_SECONDS = 5.0
EXPLAIN_SECONDS = 60.0
"""All the second solves of one plan together; past it, the quick tests only."""


def _usd(x: float) -> str:
    sign = "-" if x < 0 else ""
    x = abs(x)
    if x >= 1e9:
        return f"{sign}${x / 1e9:.2f}B"
    if x >= 1e6:
        return f"{sign}${x / 1e6:.1f}M"
    return f"{sign}${x:,.0f}"


def _quarters(s: Scenario, qs: list[int]) -> str:
    if not qs:
        return ""
    return span(s.start + min(qs), s.start + max(qs))


def _shortfalls(model: Model, o: Option) -> tuple[list[int], list[int]]:
    """Quarters where the option alone exceeds the pool's capacity, and the site's power."""
    h = model.scenario.horizon
    cap_q: list[int] = []
    pow_q: list[int] = []
    for q in o.active(h):
        if o.pool is not None:
            p = model.pools[o.pool]
            if model.avail[o.pool, q] < o.gpus:
                cap_q.append(q)
            elif model.it_kw[o.site, q] + 1e-6 < o.gpus * p.kw:
                pow_q.append(q)
        elif model.it_kw[o.site, q] <= 0 or not any(
            model.avail[p.index, q] > 0 for p in model.pools_of(o.site)
        ):
            cap_q.append(q)
    return cap_q, pow_q


def _no_fit(model: Model, d_i: int, options: list[Option]) -> tuple[str, str] | None:
    """(kind, reason) if no option of the deal fits even on an empty fleet."""
    s = model.scenario
    deal = s.deals[d_i]
    worst: tuple[str, str] | None = None
    for o in options:
        cap_q, pow_q = _shortfalls(model, o)
        if not cap_q and not pow_q:
            return None
        if worst is None:
            if cap_q:
                acc = deal.accelerator or "GPUs"
                best = max(
                    (
                        int(model.avail[x.pool, q])
                        for x in options
                        if x.pool is not None
                        for q in cap_q
                    ),
                    default=0,
                )
                where = f"site {deal.site}" if deal.site else "any site"
                worst = (
                    "no-capacity",
                    f"no capacity of {acc} at {where} in {_quarters(s, cap_q)}: needs "
                    f"{o.gpus:,} GPUs, at most {best:,} free",
                )
            else:
                site = s.sites[o.site]
                need = (
                    o.gpus * model.pools[o.pool].kw * site.pue / 1000 if o.pool is not None else 0
                )
                worst = (
                    "power",
                    f"power limit of site {site.name} binds in {_quarters(s, pow_q)}: the deal "
                    f"needs {need:,.1f} MW of the site's {site.power_mw:,.0f} MW",
                )
    return worst


def _negative(model: Model, d_i: int, options: list[Option]) -> str | None:
    s = model.scenario
    deal = s.deals[d_i]
    best = max(options, key=lambda o: o.margin)
    if best.margin > 0:
        return None
    hours = max(best.gpus, 1) * max(len(best.active(s.horizon)), 1) * HOURS_PER_QUARTER
    price = best.revenue.sum() / hours
    cost = best.cost.sum() / hours
    site = s.sites[best.site].name
    _ = deal
    return (
        f"margin negative at this price: ${price:.2f} per GPU-hour against a cost of "
        f"${cost:.2f} (depreciation, power, operations) at {site}"
    )


def _binding(plan: Plan, o: Option, pushed: Sequence[Option] = ()) -> list[str]:
    """Capacity and power rows the option touches that are full in the plan, or that the
    deals it pushed out would overfill."""
    model = plan.model
    s = model.scenario
    h = s.horizon
    used = np.zeros((len(model.pools), h))
    kw = np.zeros((len(s.sites), h))
    for x in [*(model.options[o_i] for o_i in plan.chosen.values()), *pushed]:
        for q in x.active(h):
            if x.pool is not None:
                used[x.pool, q] += x.gpus
                kw[x.site, q] += x.gpus * model.pools[x.pool].kw
            else:
                for p in model.pools_of(x.site):
                    used[p.index, q] += model.avail[p.index, q]
                kw[x.site, q] += model.it_kw[x.site, q]
    used += plan.internal
    for p in model.pools:
        kw[p.site] += plan.internal[p.index] * p.kw
    out: list[str] = []
    pools = [o.pool] if o.pool is not None else [p.index for p in model.pools_of(o.site)]
    for p_i in pools:
        p = model.pools[p_i]
        full = [q for q in o.active(h) if used[p_i, q] >= model.avail[p_i, q] - p.block + 1]
        if full:
            out.append(
                f"capacity of {p.accelerator} at {s.sites[p.site].name} in {_quarters(s, full)}"
            )
    full = [q for q in o.active(h) if kw[o.site, q] >= model.it_kw[o.site, q] * 0.995]
    if full:
        out.append(f"power of {s.sites[o.site].name} in {_quarters(s, full)}")
    return out


def _held_whole(plan: Plan, d_i: int) -> str | None:
    """'every site with H100 is sold whole ...' when whole-site deals in the plan hold every
    site the deal could go to, for all of its start window."""
    model = plan.model
    s = model.scenario
    deal = s.deals[d_i]
    options = [o for o in model.options if o.deal == d_i]
    holders: dict[int, str] = {}
    for o_i in plan.chosen.values():
        o = model.options[o_i]
        if o.pool is None:
            holders[o.site] = s.deals[o.deal].name
    for o in options:
        if o.site not in holders:
            return None
        whole = next(
            model.options[x]
            for x in plan.chosen.values()
            if model.options[x].site == o.site and model.options[x].pool is None
        )
        if not set(o.active(s.horizon)) & set(whole.active(s.horizon)):
            return None
    names = sorted({holders[o.site] for o in options})
    sites = sorted({s.sites[o.site].name for o in options})
    what = deal.accelerator or "capacity"
    return (
        f"every site with {what} ({', '.join(sites)}) is held whole by {', '.join(names)} "
        f"during the deal's term"
    )


def _local(model: Model, keep: dict[int, tuple[int, int]], free: int | None) -> Solution:
    """The program where every deal but `free` may only keep its option of the plan or be
    dropped, with internal units continuous: a handful of binaries, solved in milliseconds."""
    upper = model.upper.copy()
    for o_i, o in enumerate(model.options):
        if o.deal != free and keep.get(o.deal) != (o.site, o.start):
            upper[o_i] = 0.0
    integer = model.integer.copy()
    integer[model.n_options :] = False
    return solve_model(
        replace(model, upper=upper, integer=integer), time_limit=RESOLVE_SECONDS, mip_gap=1e-7
    )


def _kept(plan: Plan) -> dict[int, tuple[int, int]]:
    return {
        d: (plan.model.options[o_i].site, plan.model.options[o_i].start)
        for d, o_i in plan.chosen.items()
    }


def _forced(plan: Plan, d_i: int, base: float) -> tuple[str, str, float, list[str]]:
    """The deal taken, the rest of the plan kept where it still fits: (kind, reason, change
    of the expected margin, binding rows). `base` is the plan's value on the same terms.
    If nothing of the plan can make room, the whole program is solved again."""
    s = plan.scenario
    deal = s.deals[d_i]
    dec = s.decisions
    forced = replace(
        s,
        decisions=Decisions(
            (*dec.accept, deal.name),
            tuple(r for r in dec.reject if r != deal.name),
            dec.place,
            dec.start,
            dec.others if dec.others == "optimize" else "reject",
        ),
    )
    model = build(forced)
    sol = _local(model, _kept(plan), d_i)
    if sol.status not in ("optimal", "time-limit"):
        sol = relaxed_solve(
            model,
            time_limit=min(RESOLVE_SECONDS, s.settings.time_limit_s),
            mip_gap=s.settings.mip_gap,
        )
        base = plan.solution.objective if plan.relaxed_objective is None else plan.relaxed_objective
    if sol.status not in ("optimal", "time-limit"):
        held = _held_whole(plan, d_i)
        if held is not None:
            return "no-capacity", held, float("-inf"), []
        problems = explain_infeasible(forced)
        text = problems[0]["message"] if problems else "it cannot fit beside the decisions"
        return "no-capacity", f"cannot be taken with the other choices: {text}", float("-inf"), []
    other = read_plan(model, sol)
    delta = sol.objective - base
    o = model.options[other.chosen[d_i]]
    pushed_deals = [x for x in plan.chosen if x not in other.chosen and x != d_i]
    pushed = [s.deals[x].name for x in pushed_deals]
    # The plan's model and this one share pools and sites: the pushed options fit its rows.
    binding = _binding(other, o, [plan.model.options[plan.chosen[x]] for x in pushed_deals])
    lost_cover = float((plan.covered - other.covered).clip(min=0).sum())
    acc = deal.accelerator or "capacity"
    where = f" ({'; '.join(binding)} binds)" if binding else ""
    if delta >= -max(abs(base), 1.0) * 1e-6:
        return (
            "no-gain",
            f"no better than leaving it out: taking it changes the expected margin by "
            f"{_usd(delta)}",
            delta,
            binding,
        )
    if pushed and lost_cover <= 0:
        return (
            "displaces-deals",
            f"displaces deals worth more ({', '.join(pushed)}): taking it lowers the expected "
            f"margin by {_usd(-delta)}{where}",
            delta,
            binding,
        )
    if lost_cover > 0:
        extra = f" and deals {', '.join(pushed)}" if pushed else ""
        return (
            "displaces-internal",
            f"displaces internal demand worth more ({lost_cover / max(len(o.active(s.horizon)), 1):,.0f} "
            f"GPUs of {acc} a quarter on average{extra}): taking it lowers the expected margin "
            f"by {_usd(-delta)}{where}",
            delta,
            binding,
        )
    return (
        "worse",
        f"taking it lowers the expected margin by {_usd(-delta)}{where}",
        delta,
        binding,
    )


def rejection_reasons(plan: Plan) -> list[dict[str, Any]]:
    """One entry per deal the plan leaves out, with `kind`, `reason` and, where a second
    solve measured it, `margin_delta` (expected margin lost by taking it) and `binding`."""
    model = plan.model
    s = model.scenario
    by_deal: dict[int, list[Option]] = {}
    for o in model.options:
        by_deal.setdefault(o.deal, []).append(o)
    out: list[dict[str, Any]] = []
    resolves = 0
    began = time.perf_counter()
    base: float | None = None
    for d_i, deal in enumerate(s.deals):
        if d_i in plan.chosen:
            continue
        entry: dict[str, Any] = {"deal": deal.name, "customer": deal.customer}
        if deal.name in s.decisions.reject:
            entry.update(
                kind="decision",
                reason=f"rejected by decision ({s.where(f'decisions.reject.{deal.name}')})",
            )
        elif s.decisions.others == "reject" and deal.name not in s.decisions.accept:
            entry.update(kind="decision", reason="not considered: decisions.others is 'reject'")
        elif d_i not in by_deal:
            acc = deal.accelerator or "the site"
            where = s.decisions.place.get(deal.name) or deal.site
            entry.update(
                kind="no-site",
                reason=f"no site can hold it: no {acc} at {where or 'any site'} in a whole unit",
            )
        else:
            options = by_deal[d_i]
            no_fit = _no_fit(model, d_i, options)
            negative = _negative(model, d_i, options)
            if negative is not None:
                entry.update(kind="negative-margin", reason=negative)
            elif no_fit is not None:
                entry.update(kind=no_fit[0], reason=no_fit[1])
            elif (
                s.settings.explain
                and resolves < MAX_RESOLVES
                and time.perf_counter() - began < EXPLAIN_SECONDS
            ):
                resolves += 1
                if base is None:
                    base = _local(model, _kept(plan), None).objective
                kind, reason, delta, binding = _forced(plan, d_i, base)
                entry.update(kind=kind, reason=reason, binding=binding)
                if delta != float("-inf"):
                    entry["margin_delta"] = round(delta, 2)
            else:
                best = max(options, key=lambda o: o.margin)
                entry.update(
                    kind="not-chosen",
                    reason=f"not in the best plan found (its margin alone: {_usd(best.margin)})",
                )
        out.append(entry)
    return out


# --- infeasible scenarios -----------------------------------------------------------------


def _row_text(model: Model, row: Row, excess: float) -> dict[str, Any]:
    s = model.scenario
    q = label(s.start + row.quarter)
    if row.kind == "capacity":
        p = model.pools[row.pool]
        have = int(model.avail[row.pool, row.quarter])
        site = s.sites[p.site].name
        users = _users(model, row)
        return {
            "constraint": "capacity",
            "site": site,
            "accelerator": p.accelerator,
            "quarter": q,
            "needed": round(have + excess),
            "available": have,
            "message": f"capacity of {p.accelerator} at {site} in {q}: needs {have + excess:,.0f} GPUs, "
            f"{have:,} planned{users}",
        }
    if row.kind == "power":
        at = s.sites[row.site]
        have_mw = float(model.it_kw[row.site, row.quarter]) * at.pue / 1000
        need = have_mw + excess * at.pue / 1000
        return {
            "constraint": "power",
            "site": at.name,
            "quarter": q,
            "needed_mw": round(need, 3),
            "available_mw": round(have_mw, 3),
            "message": f"power of {at.name} in {q}: needs {need:,.1f} MW, {have_mw:,.1f} MW available"
            f"{_users(model, row)}",
        }
    d = s.demand[row.demand]
    floor = d.floor[row.quarter]
    return {
        "constraint": "floor",
        "demand": d.name,
        "accelerator": d.accelerator,
        "quarter": q,
        "needed": floor,
        "available": round(floor - excess),
        "message": f"internal floor of {d.name} ({s.where(f'internal.demand.{d.name}')}) in {q}: "
        f"{floor:,} {d.accelerator} GPUs, only {floor - excess:,.0f} can be kept",
    }


def _users(model: Model, row: Row) -> str:
    """The decisions and floors that put load on a row."""
    s = model.scenario
    names = []
    for name in s.decisions.accept:
        d_i = next(i for i, d in enumerate(s.deals) if d.name == name)
        for o in model.options:
            if o.deal != d_i or row.quarter not in o.active(s.horizon):
                continue
            if (
                row.kind == "capacity"
                and (
                    o.pool == row.pool or (o.pool is None and o.site == model.pools[row.pool].site)
                )
            ) or (row.kind == "power" and o.site == row.site):
                where = s.lines.get(f"decisions.accept.{name}") and s.where(
                    f"decisions.accept.{name}"
                )
                names.append(f"accepted {name} ({where or s.where(f'deals.{name}')})")
                break
    if row.kind == "capacity":
        acc = model.pools[row.pool].accelerator
        site = model.pools[row.pool].site
    else:
        accs = {p.accelerator for p in model.pools_of(row.site)}
        site = row.site
    site_name = s.sites[site].name
    floors = [
        d.name
        for d in s.demand
        if d.floor[row.quarter] > 0
        and (d.accelerator == acc if row.kind == "capacity" else d.accelerator in accs)
        and (not d.sites or site_name in d.sites)
    ]
    if floors:
        names.append("internal floors of " + ", ".join(floors))
    return f" (held by {'; '.join(names)})" if names else ""


def _precheck(s: Scenario, model: Model) -> list[dict[str, Any]]:
    """Each accepted deal and each floor against capacity on its own."""
    out: list[dict[str, Any]] = []
    for name in s.decisions.accept:
        d_i = next(i for i, d in enumerate(s.deals) if d.name == name)
        options = [o for o in model.options if o.deal == d_i]
        where = s.where(f"decisions.accept.{name}")
        if not options:
            out.append(
                {
                    "constraint": "decision",
                    "deal": name,
                    "message": f"accepted {name} ({where}) has no site it can go to",
                }
            )
            continue
        no_fit = _no_fit(model, d_i, options)
        if no_fit is not None:
            out.append(
                {
                    "constraint": "decision",
                    "deal": name,
                    "message": f"accepted {name} ({where}): {no_fit[1]}",
                }
            )
    site_index = {site.name: i for i, site in enumerate(s.sites)}
    for d in s.demand:
        allowed = {site_index[n] for n in d.sites} if d.sites else None
        pools = [
            p
            for p in model.pools
            if p.accelerator == d.accelerator and (allowed is None or p.site in allowed)
        ]
        for q in range(s.horizon):
            have = sum(int(model.avail[p.index, q]) // p.block * p.block for p in pools)
            if d.floor[q] > have:
                out.append(
                    {
                        "constraint": "floor",
                        "demand": d.name,
                        "quarter": label(s.start + q),
                        "needed": d.floor[q],
                        "available": have,
                        "message": f"internal floor of {d.name} ({s.where(f'internal.demand.{d.name}')}) "
                        f"in {label(s.start + q)}: {d.floor[q]:,} {d.accelerator} GPUs, supply at its "
                        f"sites is {have:,}",
                    }
                )
                break
    return out


def explain_infeasible(s: Scenario) -> list[dict[str, Any]]:
    """The constraints an infeasible scenario cannot meet, most specific first."""
    model = build(s)
    out = _precheck(s, model)
    elastic = build(s, elastic=True)
    sol = solve_model(elastic, time_limit=min(30.0, s.settings.time_limit_s), mip_gap=0.0)
    if sol.status in ("optimal", "time-limit"):
        base = elastic.shortfall_col0 + len(elastic.shortfall)
        seen = {m["message"] for m in out}
        for j, r in enumerate(elastic.slack_rows):
            excess = float(sol.values[base + j])
            if excess > 1e-6:
                item = _row_text(elastic, elastic.rows[r], excess)
                if item["message"] not in seen:
                    out.append(item)
    elif not out:
        out.append(
            {
                "constraint": "decision",
                "message": "the accepted deals cannot all be placed together, even with every "
                "capacity, power and floor limit relaxed (a whole-site deal beside another deal "
                "forced onto the same site?)",
            }
        )
    return out
