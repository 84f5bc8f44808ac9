"""Solve a scenario's program with HiGHS and read the plan back: which option of each deal
is taken, the units kept for internal demand, the shortfall.

`solve_model` is the one place that talks to highspy; `optimize` builds and solves, and
when the program is infeasible says which rows cannot be met (see `explain`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field, replace

import highspy
import numpy as np

from neocloud.planning.data import Scenario
from neocloud.planning.model import Floats, Model, build

_banner = threading.Lock()
_banner_shown = False


def new_highs() -> highspy.Highs:
    """A silent solver. HiGHS prints a banner to file descriptor 1 the first time one is
    made in a process, which would corrupt `neocloud plan --json`; it goes to /dev/null."""
    global _banner_shown
    with _banner:
        if _banner_shown:
            h = highspy.Highs()  # type: ignore[no-untyped-call]
        else:
            sys.stdout.flush()
            saved = os.dup(1)
            try:
                with open(os.devnull, "wb") as null:
                    os.dup2(null.fileno(), 1)
                    h = highspy.Highs()  # type: ignore[no-untyped-call]
            finally:
                os.dup2(saved, 1)
                os.close(saved)
            _banner_shown = True
    h.silent()
    return h


@dataclass
class Solution:
    status: str
    """"optimal", "time-limit" (the best plan found in time), "infeasible" or "error"."""
    objective: float
    bound: float
    gap: float
    seconds: float
    values: Floats
    nodes: int = 0


@dataclass
class Plan:
    """A solved scenario: the model and the values of its columns."""

    model: Model
    solution: Solution
    chosen: dict[int, int] = field(default_factory=dict)
    """Deal index -> option index taken."""
    internal: Floats = field(default_factory=lambda: np.zeros(0))
    """[pool, quarter] GPUs kept for internal demand."""
    covered: Floats = field(default_factory=lambda: np.zeros(0))
    """[demand, quarter] GPUs of each internal demand kept for it."""
    relaxed_objective: float | None = None
    """The best value with internal units continuous (the first step of `optimize`), the
    yardstick of the quick re-solves that explain rejections."""

    @property
    def scenario(self) -> Scenario:
        return self.model.scenario

    @property
    def feasible(self) -> bool:
        return self.solution.status in ("optimal", "time-limit")


def solve_model(
    model: Model, *, time_limit: float, mip_gap: float, start: Floats | None = None
) -> Solution:
    """Maximise the model's objective with HiGHS (deterministic; one thread)."""
    began = time.perf_counter()
    n = len(model.cost)
    m = len(model.rows)
    if n == 0:
        # Nothing to choose (every deal rejected, no internal demand): the plan is empty.
        return Solution("optimal", 0.0, 0.0, 0.0, time.perf_counter() - began, np.zeros(0))
    r, c, v = model.entries
    order = np.lexsort((r, c))
    r, c, v = r[order], c[order], v[order]
    starts = np.searchsorted(c, np.arange(n + 1)).astype(np.int32)

    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = m
    lp.col_cost_ = model.cost
    lp.col_lower_ = model.lower
    lp.col_upper_ = np.where(np.isinf(model.upper), highspy.kHighsInf, model.upper)
    lp.row_lower_ = np.where(np.isinf(model.row_lower), -highspy.kHighsInf, model.row_lower)
    lp.row_upper_ = np.where(np.isinf(model.row_upper), highspy.kHighsInf, model.row_upper)
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = starts
    lp.a_matrix_.index_ = r.astype(np.int32)
    lp.a_matrix_.value_ = v
    lp.a_matrix_.num_col_ = n
    lp.a_matrix_.num_row_ = m
    lp.integrality_ = [
        highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
        for i in model.integer
    ]
    h = new_highs()
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", float(mip_gap))
    h.setOptionValue("threads", 1)
    h.setOptionValue("random_seed", 0)
    h.passModel(lp)
    if start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = list(start)
        sol.value_valid = True
        h.setSolution(sol)
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    seconds = time.perf_counter() - began
    values = np.asarray(h.getSolution().col_value, dtype=np.float64)
    has_solution = info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
    if status in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kModelEmpty):
        name = "optimal"
    elif status == highspy.HighsModelStatus.kInfeasible:
        name = "infeasible"
    elif has_solution:
        name = "time-limit"
    else:
        name = "error" if status != highspy.HighsModelStatus.kTimeLimit else "time-limit"
    if name in ("infeasible", "error") or values.size != n:
        values = np.zeros(n)
    objective = float(info.objective_function_value) if has_solution else float("nan")
    bound = float(info.mip_dual_bound) if model.integer.any() else objective
    gap = float(info.mip_gap) if model.integer.any() and has_solution else 0.0
    if not np.isfinite(gap) or gap > 1e6:
        gap = (
            float("inf") if not has_solution else abs(bound - objective) / max(abs(objective), 1.0)
        )
    return Solution(name, objective, bound, gap, seconds, values, int(info.mip_node_count))


def read_plan(model: Model, solution: Solution) -> Plan:
    plan = Plan(model, solution)
    values = solution.values
    for o_i, o in enumerate(model.options):
        if values[o_i] > 0.5:
            plan.chosen[o.deal] = o_i
    h = model.scenario.horizon
    internal = np.zeros((len(model.pools), h))
    covered = np.zeros((len(model.scenario.demand), h))
    base = model.n_options
    for k, (e_i, p_i, q) in enumerate(model.internal):
        units = round(values[base + k]) if solution.status != "infeasible" else 0
        internal[p_i, q] += units * model.pools[p_i].block
        covered[e_i, q] += units * model.pools[p_i].block
    plan.internal = internal
    plan.covered = covered
    return plan


def optimize(scenario: Scenario, *, time_limit: float | None = None) -> Plan:
    plan, relaxed = _optimize(scenario, time_limit)
    plan.relaxed_objective = relaxed
    return plan


def relaxed_solve(model: Model, *, time_limit: float, mip_gap: float) -> Solution:
    """The program with the deals binary and the internal units continuous."""
    integer = model.integer.copy()
    integer[model.n_options :] = False
    return solve_model(replace(model, integer=integer), time_limit=time_limit, mip_gap=mip_gap)


def _optimize(scenario: Scenario, time_limit: float | None) -> tuple[Plan, float | None]:
    """The best plan for the scenario and its decisions (see `model` for the program).

    Solved in two steps, because the integer units kept for internal demand make HiGHS slow
    to prove a gap while they hardly change which deals are worth taking: first with the
    internal units continuous (the deals still binary), then with the deals fixed as chosen
    and the internal units integer. The gap reported is against the first step's bound,
    which bounds the whole program too; if it is above the scenario's `mip_gap`, the full
    program is solved from the two-step plan for the time left and the better plan kept.
    """
    began = time.perf_counter()
    model = build(scenario)
    s = scenario.settings
    limit = time_limit or s.time_limit_s
    n = model.n_options
    first = relaxed_solve(model, time_limit=limit, mip_gap=s.mip_gap)
    if first.status not in ("optimal", "time-limit"):
        return read_plan(model, first), None
    relaxed = first.objective
    lower = model.lower.copy()
    upper = model.upper.copy()
    lower[:n] = upper[:n] = np.round(first.values[:n])
    left = max(limit - (time.perf_counter() - began), 1.0)
    second = solve_model(
        replace(model, lower=lower, upper=upper), time_limit=left, mip_gap=s.mip_gap
    )
    if second.status in ("optimal", "time-limit"):
        bound = max(first.bound, second.objective)
        gap = (bound - second.objective) / max(abs(second.objective), 1.0)
        best = Solution(
            second.status if first.status == "optimal" else "time-limit",
            second.objective,
            bound,
            gap,
            time.perf_counter() - began,
            second.values,
            first.nodes + second.nodes,
        )
        if gap <= s.mip_gap + 1e-9:
            return read_plan(model, best), relaxed
        start = second.values
    else:
        best, start = None, None
    left = max(limit - (time.perf_counter() - began), 1.0)
    full = solve_model(model, time_limit=left, mip_gap=s.mip_gap, start=start)
    full.seconds = time.perf_counter() - began
    if best is None or (
        full.status in ("optimal", "time-limit") and full.objective > best.objective
    ):
        return read_plan(model, full), relaxed
    best.bound = (
        min(best.bound, full.bound) if full.status in ("optimal", "time-limit") else best.bound
    )
    best.gap = (best.bound - best.objective) / max(abs(best.objective), 1.0)
    return read_plan(model, best), relaxed
