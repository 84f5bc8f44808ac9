"""The planning problem as arrays: pools, the options of each deal (a site and a start
quarter), and the rows of the mixed-integer program. Pure; `optimize` hands it to HiGHS.

Columns:
- y[o] binary: deal option o (deal x site x start quarter) is taken. A deal holds
  ceil(GPUs / unit) units of its pool for its term; a whole-site deal holds all of a site.
- x[e, s, q] integer: units of site s kept for internal demand e in quarter q.
- u[e, q] >= 0: GPUs of internal demand e left unmet in quarter q (costed).

Rows:
- one per deal: at most one option (exactly one if a decision accepts it);
- capacity per pool and quarter: deals + internal <= planned supply - already sold;
- power per site and quarter: IT kW of deals + internal <= site MW / PUE - already sold;
- coverage per demand and quarter: internal + shortfall >= demand;
- floor per demand and quarter: internal >= floor.

The objective, maximised: expected margin of the deals (closing probability x (revenue -
power - depreciation - operations of the capacity they hold)) - cost of internal capacity
- cost of internal shortfall, all within the horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from neocloud.planning.data import Deal, Scenario, Site
from neocloud.planning.quarters import HOURS_PER_QUARTER, MONTHS_PER_QUARTER

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


@dataclass(frozen=True)
class PoolInfo:
    index: int
    site: int
    """Index into scenario.sites."""
    accelerator: str
    block: int
    kw: float
    """IT kW per GPU."""
    cost: float
    """USD per GPU-quarter in use: depreciation + operations + power at the site's PUE."""


@dataclass(frozen=True)
class Option:
    deal: int
    site: int
    start: int
    pool: int | None
    """None for a whole-site deal."""
    gpus: int
    """GPUs held (rounded up to whole units); a whole-site deal: its first quarter's."""
    end: int
    """First quarter after the term (may be past the horizon)."""
    revenue: Floats
    """Per quarter of the horizon, if it closes."""
    cost: Floats
    tail_revenue: float
    """Revenue of the term's quarters after the horizon (backlog beyond the plan)."""

    @property
    def margin(self) -> float:
        return float(self.revenue.sum() - self.cost.sum())

    def active(self, horizon: int) -> range:
        return range(self.start, min(self.end, horizon))


@dataclass
class Row:
    kind: str
    """"deal", "capacity", "power", "coverage" or "floor"."""
    quarter: int = -1
    site: int = -1
    pool: int = -1
    deal: int = -1
    demand: int = -1


@dataclass
class Model:
    scenario: Scenario
    pools: list[PoolInfo]
    supply: Ints
    """[pool, quarter] planned supply (deliveries at the planning confidence)."""
    avail: Ints
    """[pool, quarter] supply less what is already sold."""
    it_kw: Floats
    """[site, quarter] IT kW the site can still power."""
    options: list[Option]
    internal: list[tuple[int, int, int]]
    """Columns of x: (demand, pool, quarter)."""
    shortfall: list[tuple[int, int]] = field(default_factory=list)
    """Columns of u: (demand, quarter)."""
    slack_rows: list[int] = field(default_factory=list)
    """Elastic models: the row of each slack column (after the shortfall columns)."""
    # The program, column-major triplets and bounds.
    cost: Floats = field(default_factory=lambda: np.zeros(0))
    lower: Floats = field(default_factory=lambda: np.zeros(0))
    upper: Floats = field(default_factory=lambda: np.zeros(0))
    integer: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    rows: list[Row] = field(default_factory=list)
    row_lower: list[float] = field(default_factory=list)
    row_upper: list[float] = field(default_factory=list)
    entries: tuple[Ints, Ints, Floats] = field(
        default_factory=lambda: (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    )
    """(row, column, value)."""

    @property
    def n_options(self) -> int:
        return len(self.options)

    @property
    def shortfall_col0(self) -> int:
        return len(self.options) + len(self.internal)

    def pools_of(self, site: int) -> list[PoolInfo]:
        return [p for p in self.pools if p.site == site]


def unit_cost(scenario: Scenario, site: Site, accelerator: str, kw: float) -> float:
    """USD per GPU-quarter of capacity in use."""
    power = kw * site.pue * HOURS_PER_QUARTER / 1000 * site.power_usd_per_mwh
    ops = scenario.costs.operations_per_gpu_hour * HOURS_PER_QUARTER
    return scenario.costs.depreciation_per_gpu_quarter.get(accelerator, 0.0) + ops + power


def planned_supply(scenario: Scenario, pools: list[PoolInfo], arrival: Ints) -> Ints:
    """[pool, quarter] GPUs installed when each delivery arrives at quarter `arrival[i]`."""
    h = scenario.horizon
    out = np.zeros((len(pools), h), dtype=np.int64)
    index = {(p.site, p.accelerator): p.index for p in pools}
    site_index = {s.name: i for i, s in enumerate(scenario.sites)}
    for p in pools:
        site = scenario.sites[p.site]
        pool = site.pool(p.accelerator)
        out[p.index] = pool.gpus if pool else 0
    for i, d in enumerate(scenario.deliveries):
        p_i = index[(site_index[d.site], d.accelerator)]
        q = max(int(arrival[i]), 0)
        if q < h:
            out[p_i, q:] += d.gpus
    return out


def build_pools(scenario: Scenario) -> list[PoolInfo]:
    pools: list[PoolInfo] = []
    for s_i, site in enumerate(scenario.sites):
        for pool in site.pools:
            cost = unit_cost(scenario, site, pool.accelerator, pool.kw_per_gpu)
            pools.append(
                PoolInfo(len(pools), s_i, pool.accelerator, pool.block_gpus, pool.kw_per_gpu, cost)
            )
    return pools


def _round_up(gpus: float, block: int) -> int:
    return math.ceil(gpus / block - 1e-9) * block


def deal_options(model: Model, d_i: int, deal: Deal) -> list[Option]:
    """Every (site, start) the deal could take, with its revenue and cost per quarter."""
    s = model.scenario
    h = s.horizon
    out: list[Option] = []
    placed = s.decisions.place.get(deal.name)
    fixed_start = s.decisions.start.get(deal.name)
    starts = [fixed_start] if fixed_start is not None else list(deal.starts)
    for s_i, site in enumerate(s.sites):
        if (deal.site or placed) not in (None, site.name):
            continue
        if deal.whole_site:
            pools = model.pools_of(s_i)
            for t in starts:
                out.append(_whole_site(model, d_i, deal, s_i, pools, t))
            continue
        assert deal.accelerator is not None
        pool = next((p for p in model.pools_of(s_i) if p.accelerator == deal.accelerator), None)
        if pool is None:
            continue
        if deal.gpus is not None:
            gpus = _round_up(deal.gpus, pool.block)
        else:
            assert deal.mw is not None
            gpus = int(deal.mw * 1000 / (pool.kw * site.pue) // pool.block) * pool.block
        if gpus <= 0:
            continue
        for t in starts:
            end = t + deal.term_quarters
            rev = np.zeros(h)
            cost = np.zeros(h)
            if deal.price_per_mw_month is not None:
                mw = deal.mw if deal.mw is not None else gpus * pool.kw * site.pue / 1000
                per_q = mw * deal.price_per_mw_month * MONTHS_PER_QUARTER
            else:
                assert deal.price_per_gpu_hour is not None
                billed = deal.gpus if deal.gpus is not None else gpus
                per_q = billed * deal.price_per_gpu_hour * HOURS_PER_QUARTER
            rev[t : min(end, h)] = per_q
            cost[t : min(end, h)] = gpus * pool.cost
            tail = per_q * max(0, end - max(h, t))
            out.append(Option(d_i, s_i, t, pool.index, gpus, end, rev, cost, tail))
    return out


def _whole_site(
    model: Model, d_i: int, deal: Deal, s_i: int, pools: list[PoolInfo], t: int
) -> Option:
    s = model.scenario
    h = s.horizon
    site = s.sites[s_i]
    end = t + deal.term_quarters
    rev = np.zeros(h)
    cost = np.zeros(h)
    gpus_first = 0
    for q in range(t, min(end, h)):
        gpus = sum(int(model.avail[p.index, q]) for p in pools)
        if q == t:
            gpus_first = gpus
        if deal.price_per_mw_month is not None:
            rev[q] = site.power_mw * deal.price_per_mw_month * MONTHS_PER_QUARTER
        else:
            assert deal.price_per_gpu_hour is not None
            rev[q] = gpus * deal.price_per_gpu_hour * HOURS_PER_QUARTER
        # Capacity in use is what the site can power of what it holds.
        it = sum(int(model.avail[p.index, q]) * p.kw for p in pools)
        share = min(1.0, float(model.it_kw[s_i, q]) / it) if it > 0 else 0.0
        cost[q] = share * sum(int(model.avail[p.index, q]) * p.cost for p in pools)
    last = rev[min(end, h) - 1] if t < h else 0.0
    tail = float(last) * max(0, end - max(h, t))
    return Option(d_i, s_i, t, None, gpus_first, end, rev, cost, tail)


def _supply(scenario: Scenario, pools: list[PoolInfo]) -> tuple[Ints, Ints, Floats]:
    conf = scenario.settings.delivery_confidence
    arrival = np.array(
        [d.planned_quarter(conf) for d in scenario.deliveries], dtype=np.int64
    ).reshape(-1)
    supply = planned_supply(scenario, pools, arrival)
    h = scenario.horizon
    sold = np.zeros_like(supply)
    for p in pools:
        pool = scenario.sites[p.site].pool(p.accelerator)
        if pool is not None:
            sold[p.index] = [pool.committed_at(q) for q in range(h)]
    avail = np.maximum(supply - sold, 0)
    it_kw = np.zeros((len(scenario.sites), h))
    for s_i, site in enumerate(scenario.sites):
        it_kw[s_i] = site.it_kw
    for p in pools:
        it_kw[p.site] -= sold[p.index] * p.kw
    return supply, avail, np.maximum(it_kw, 0.0)


def build(scenario: Scenario, *, elastic: bool = False) -> Model:
    """The program of a scenario with its decisions. `elastic`: capacity, power and floor
    rows may be violated at a cost, and only that cost is minimised (to find which rows an
    infeasible scenario cannot meet)."""
    pools = build_pools(scenario)
    supply, avail, it_kw = _supply(scenario, pools)
    h = scenario.horizon
    model = Model(scenario, pools, supply, avail, it_kw, [], [])
    dec = scenario.decisions
    accepted = set(dec.accept)
    rejected = set(dec.reject)
    for d_i, deal in enumerate(scenario.deals):
        if deal.name in rejected or (dec.others == "reject" and deal.name not in accepted):
            continue
        model.options.extend(deal_options(model, d_i, deal))
    site_index = {s.name: i for i, s in enumerate(scenario.sites)}
    for e_i, demand in enumerate(scenario.demand):
        allowed = {site_index[n] for n in demand.sites} if demand.sites else None
        for p in pools:
            if p.accelerator != demand.accelerator or (
                allowed is not None and p.site not in allowed
            ):
                continue
            for q in range(h):
                if demand.gpus[q] or demand.floor[q]:
                    model.internal.append((e_i, p.index, q))

    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []

    def add_row(row: Row, lo: float, hi: float) -> int:
        model.rows.append(row)
        model.row_lower.append(lo)
        model.row_upper.append(hi)
        return len(model.rows) - 1

    inf = math.inf
    by_deal: dict[int, list[int]] = {}
    for o_i, o in enumerate(model.options):
        by_deal.setdefault(o.deal, []).append(o_i)
    for d_i, opts in by_deal.items():
        forced = scenario.deals[d_i].name in accepted
        r = add_row(Row("deal", deal=d_i), 1.0 if forced else 0.0, 1.0)
        for o_i in opts:
            rows.append(r)
            cols.append(o_i)
            vals.append(1.0)

    cap_row = np.full((len(pools), h), -1, dtype=np.int64)
    for p in pools:
        for q in range(h):
            cap_row[p.index, q] = add_row(
                Row("capacity", quarter=q, site=p.site, pool=p.index),
                -inf,
                float(avail[p.index, q]),
            )
    pow_row = np.full((len(scenario.sites), h), -1, dtype=np.int64)
    for s_i in range(len(scenario.sites)):
        for q in range(h):
            pow_row[s_i, q] = add_row(Row("power", quarter=q, site=s_i), -inf, float(it_kw[s_i, q]))

    for o_i, o in enumerate(model.options):
        for q in o.active(h):
            if o.pool is not None:
                p = pools[o.pool]
                rows += [int(cap_row[p.index, q]), int(pow_row[o.site, q])]
                cols += [o_i, o_i]
                vals += [float(o.gpus), o.gpus * p.kw]
            else:
                for p in model.pools_of(o.site):
                    if avail[p.index, q] > 0:
                        rows.append(int(cap_row[p.index, q]))
                        cols.append(o_i)
                        vals.append(float(avail[p.index, q]))
                if it_kw[o.site, q] > 0:
                    rows.append(int(pow_row[o.site, q]))
                    cols.append(o_i)
                    vals.append(float(it_kw[o.site, q]))

    n_opt = len(model.options)
    for k, (_e, p_i, q) in enumerate(model.internal):
        p = pools[p_i]
        c = n_opt + k
        rows += [int(cap_row[p_i, q]), int(pow_row[p.site, q])]
        cols += [c, c]
        vals += [float(p.block), p.block * p.kw]

    shortfall: list[tuple[int, int]] = []
    for e_i, demand in enumerate(scenario.demand):
        mine = [k for k, (e, _, _) in enumerate(model.internal) if e == e_i]
        for q in range(h):
            at_q = [k for k in mine if model.internal[k][2] == q]
            if demand.gpus[q] > 0:
                r = add_row(Row("coverage", quarter=q, demand=e_i), float(demand.gpus[q]), inf)
                for k in at_q:
                    rows.append(r)
                    cols.append(n_opt + k)
                    vals.append(float(pools[model.internal[k][1]].block))
                rows.append(r)
                cols.append(model.shortfall_col0 + len(shortfall))
                vals.append(1.0)
                shortfall.append((e_i, q))
            if demand.floor[q] > 0:
                r = add_row(Row("floor", quarter=q, demand=e_i), float(demand.floor[q]), inf)
                for k in at_q:
                    rows.append(r)
                    cols.append(n_opt + k)
                    vals.append(float(pools[model.internal[k][1]].block))
    model.shortfall = shortfall

    n_cols = model.shortfall_col0 + len(shortfall)
    cost = np.zeros(n_cols)
    lower = np.zeros(n_cols)
    upper = np.ones(n_cols)
    integer = np.ones(n_cols, dtype=bool)
    for o_i, o in enumerate(model.options):
        cost[o_i] = scenario.deals[o.deal].probability * o.margin
    for k, (_e, p_i, q) in enumerate(model.internal):
        p = pools[p_i]
        cost[n_opt + k] = -p.block * p.cost
        upper[n_opt + k] = float(avail[p_i, q] // p.block)
    for j, (e_i, q) in enumerate(shortfall):
        c = model.shortfall_col0 + j
        demand = scenario.demand[e_i]
        cost[c] = -demand.shortfall_cost_per_gpu_hour * HOURS_PER_QUARTER
        upper[c] = float(demand.gpus[q])
        integer[c] = False

    if elastic:
        cost[:] = 0.0
        slack_rows = [
            r for r, row in enumerate(model.rows) if row.kind in ("capacity", "power", "floor")
        ]
        model.slack_rows = slack_rows
        extra_cost = []
        for j, r in enumerate(slack_rows):
            kind = model.rows[r].kind
            c = n_cols + j
            rows.append(r)
            cols.append(c)
            # Capacity and power rows are <=: the slack adds room; a floor row is >=.
            vals.append(1.0 if kind == "floor" else -1.0)
            extra_cost.append(-(1.0 / 1.5 if kind == "power" else 1.0))
        cost = np.concatenate((cost, np.array(extra_cost)))
        lower = np.concatenate((lower, np.zeros(len(slack_rows))))
        upper = np.concatenate((upper, np.full(len(slack_rows), inf)))
        integer = np.concatenate((integer, np.zeros(len(slack_rows), dtype=bool)))

    model.cost, model.lower, model.upper, model.integer = cost, lower, upper, integer
    model.entries = (
        np.asarray(rows, dtype=np.int64),
        np.asarray(cols, dtype=np.int64),
        np.asarray(vals, dtype=np.float64),
    )
    return model
