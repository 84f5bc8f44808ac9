"""Manual choices, the reason for every rejection, and infeasible scenarios explained."""

from __future__ import annotations

from typing import Any

import pytest

from neocloud.planning.service import plan_report
from tests.planning.scenarios import scenario


def report(extra: str) -> dict[str, Any]:
    return plan_report(scenario(extra))


def rejected(r: dict[str, Any], name: str) -> dict[str, Any]:
    return next(x for x in r["rejected"] if x["deal"] == name)


def accepted(r: dict[str, Any], name: str) -> dict[str, Any]:
    return next(x for x in r["accepted"] if x["deal"] == name)


CHEAP = """\
deals:
  - {name: cheap, customer: broker, accelerator: H100, gpus: 400, start: 2026Q4, term_quarters: 2, price_per_gpu_hour: 0.40}
  - {name: fair, customer: lab, accelerator: H100, gpus: 400, start: 2026Q4, term_quarters: 2, price_per_gpu_hour: 2.50}
"""


def test_a_price_below_cost_is_rejected_and_an_accept_decision_takes_it_anyway() -> None:
    free = report(CHEAP)
    assert [a["deal"] for a in free["accepted"]] == ["fair"]
    reason = rejected(free, "cheap")
    assert reason["kind"] == "negative-margin"
    assert reason["reason"].startswith("margin negative at this price: $0.40 per GPU-hour")
    forced = report(CHEAP + "decisions: {accept: [cheap]}\n")
    taken = accepted(forced, "cheap")
    assert taken["decided"] == "decision" and taken["margin"] < 0
    assert accepted(forced, "fair")["decided"] == "optimizer"
    assert forced["totals"]["margin"] < free["totals"]["margin"]


def test_reject_place_start_and_others() -> None:
    r = report(CHEAP + "decisions: {reject: [fair]}\n")
    assert r["accepted"] == []
    assert rejected(r, "fair")["reason"] == "rejected by decision (small.yaml:23)"
    r = report(
        """\
        deals:
          - {name: d, customer: c, accelerator: H100, gpus: 80, start: [2026Q3, 2027Q1], term_quarters: 1, price_per_gpu_hour: 3}
          - {name: e, customer: c, accelerator: H100, gpus: 80, start: 2026Q3, term_quarters: 1, price_per_gpu_hour: 3}
        decisions:
          accept: [d]
          start: {d: 2027Q1}
          others: reject
        """
    )
    assert [(a["deal"], a["start"]) for a in r["accepted"]] == [("d", "2027Q1")]
    assert rejected(r, "e")["kind"] == "decision"


def test_place_puts_a_deal_at_the_site_chosen() -> None:
    two = """\
    sites:
      - name: near
        power_mw: 10
        accelerators: [{accelerator: H100, gpus: 800}]
      - name: far
        power_mw: 10
        power_usd_per_mwh: 500
        accelerators: [{accelerator: H100, gpus: 800}]
    deals:
      - {name: d, customer: c, accelerator: H100, gpus: 400, start: 2026Q3, term_quarters: 2, price_per_gpu_hour: 3}
    """
    base = "name: two\nstart: 2026Q3\nhorizon: 4\n"
    free = plan_report(scenario(two, base=base))
    assert accepted(free, "d")["site"] == "near"  # cheaper power
    placed = plan_report(scenario(two + "decisions: {place: {d: far}}\n", base=base))
    assert accepted(placed, "d")["site"] == "far"
    assert placed["totals"]["margin"] < free["totals"]["margin"]


def test_no_capacity_and_power_limits_are_named_with_their_quarters() -> None:
    r = report(
        """\
        deals:
          - {name: big, customer: c, accelerator: H100, gpus: 2000, start: 2026Q4, term_quarters: 2, price_per_gpu_hour: 3}
        """
    )
    assert rejected(r, "big")["reason"] == (
        "no capacity of H100 at any site in 2026Q4-2027Q1: needs 2,000 GPUs, at most 1,000 free"
    )
    # alpha has 20 MW at PUE 1.2: 16,667 kW of IT load, 12,820 GPUs of 1.3 kW.
    r = report(
        """\
        deliveries:
          - {name: more, site: alpha, accelerator: H100, gpus: 19000, quarter: 2026Q3}
        deals:
          - {name: hot, customer: c, accelerator: H100, gpus: 14000, start: 2026Q4, term_quarters: 1, price_per_gpu_hour: 3}
        """
    )
    assert rejected(r, "hot")["reason"] == (
        "power limit of site alpha binds in 2026Q4: the deal needs 21.8 MW of the site's 20 MW"
    )


def test_a_deal_that_would_push_out_internal_work_worth_more_says_so() -> None:
    r = report(
        """\
        deals:
          - {name: d, customer: c, accelerator: GB200, gpus: 720, start: 2026Q3, term_quarters: 4, price_per_gpu_hour: 3.5}
        internal:
          demand:
            - {name: train, accelerator: GB200, gpus: 1440, shortfall_cost_per_gpu_hour: 9}
        """
    )
    reason = rejected(r, "d")
    assert reason["kind"] == "displaces-internal"
    assert reason["reason"].startswith("displaces internal demand worth more (720 GPUs of GB200")
    assert "capacity of GB200 at beta in 2026Q3-2027Q2" in reason["reason"]
    assert reason["margin_delta"] < 0


def test_a_deal_that_would_push_out_a_better_deal_names_it() -> None:
    r = report(
        """\
        deals:
          - {name: good, customer: a, accelerator: H100, gpus: 800, start: 2026Q3, term_quarters: 2, price_per_gpu_hour: 3}
          - {name: worse, customer: b, accelerator: H100, gpus: 800, start: 2026Q3, term_quarters: 2, price_per_gpu_hour: 2}
        """
    )
    assert [a["deal"] for a in r["accepted"]] == ["good"]
    assert rejected(r, "worse")["reason"] == (
        "displaces deals worth more (good): taking it lowers the expected margin by $3.5M "
        "(capacity of H100 at alpha in 2026Q3-2026Q4 binds)"
    )


def test_a_site_sold_whole_holds_nothing_else() -> None:
    r = report(
        """\
        deals:
          - {name: whole, customer: lab, whole_site: true, site: beta, start: 2026Q3, term_quarters: 4, price_per_mw_month: 400000}
          - {name: small, customer: c, accelerator: GB200, gpus: 72, start: 2026Q4, term_quarters: 1, price_per_gpu_hour: 4}
        decisions: {accept: [whole]}
        """
    )
    whole = accepted(r, "whole")
    assert whole["gpus"] == 1440 and whole["revenue"] == pytest.approx(400_000 * 30 * 12)
    assert rejected(r, "small")["reason"] == (
        "every site with GB200 (beta) is held whole by whole during the deal's term"
    )


def test_accepted_deals_that_overcommit_say_which_capacity_and_who_holds_it() -> None:
    r = report(
        """\
        deals:
          - {name: one, customer: a, accelerator: H100, gpus: 600, start: 2026Q4, term_quarters: 1, price_per_gpu_hour: 3}
          - {name: two, customer: b, accelerator: H100, gpus: 600, start: 2026Q4, term_quarters: 1, price_per_gpu_hour: 3}
        decisions: {accept: [one, two]}
        """
    )
    assert r["status"] == "infeasible"
    [problem] = r["infeasible"]
    assert problem["constraint"] == "capacity"
    assert problem["message"] == (
        "capacity of H100 at alpha in 2026Q4: needs 1,200 GPUs, 1,000 planned "
        "(held by accepted one (small.yaml:23); accepted two (small.yaml:23))"
    )
    assert r["message"].startswith("the scenario cannot be planned: capacity of H100 at alpha")


def test_a_floor_above_supply_and_power_overcommitted_are_explained() -> None:
    r = report(
        """\
        internal:
          demand:
            - {name: train, accelerator: GB200, gpus: 2000, floor: {2027Q1: 1512}}
        """
    )
    assert r["status"] == "infeasible"
    assert r["infeasible"][0]["message"] == (
        "internal floor of train (small.yaml:22) in 2027Q1: 1,512 GB200 GPUs, supply at its "
        "sites is 1,440"
    )
    r = report(
        """\
        deliveries:
          - {name: more, site: alpha, accelerator: H100, gpus: 19000, quarter: 2026Q3}
        deals:
          - {name: hot, customer: c, accelerator: H100, gpus: 14000, start: 2026Q4, term_quarters: 1, price_per_gpu_hour: 3}
        decisions: {accept: [hot]}
        """
    )
    assert r["status"] == "infeasible"
    messages = [p["message"] for p in r["infeasible"]]
    assert messages[0].startswith("accepted hot (small.yaml:24): power limit of site alpha binds")
    assert any(
        m.startswith("power of alpha in 2026Q4: needs 21.8 MW, 20.0 MW available") for m in messages
    )


def test_nothing_to_choose_is_an_empty_plan_not_an_error() -> None:
    r = report(CHEAP + "decisions: {others: reject}\n")
    assert r["status"] == "optimal" and r["accepted"] == []
    assert {x["kind"] for x in r["rejected"]} == {"decision"}
    assert r["totals"]["revenue"] == 0
