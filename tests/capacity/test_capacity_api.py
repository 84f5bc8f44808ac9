"""The capacity calendar through the REST API: supply, committed and free per pool (JSON and
CSV), and the conflicts supply changes cause, reported without touching any contract."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient

from tests.contracts import world as w
from tests.contracts.world import ACME, DELIVERY, GLOBEX, t


def series(report: dict[str, Any], site: str, fabric: str) -> list[tuple[str, int, int, int]]:
    for p in report["pools"]:
        if (p["site"], p["fabric"]) == (site, fabric):
            return [(b["start"][:10], b["supply"], b["committed"], b["free"]) for b in p["series"]]
    raise AssertionError(f"no pool {site}/{fabric}")


def test_supply_follows_deliveries_and_site_dates_and_commitments_follow_bookings(
    fleet: TestClient,
) -> None:
    w.reserved(fleet, "west-96", 96, "2027-08-01", "2027-09-01", site="west")
    report = w.capacity(fleet, t("2027-05-01"), t("2027-10-01"), step="month", site="west")
    assert (report["start"], report["end"], report["step"]) == (
        "2027-05-01T00:00:00Z",
        "2027-10-01T00:00:00Z",
        "month",
    )
    assert {(p["accelerator"], p["fabric"]) for p in report["pools"]} == {
        ("GB200", "nvl"),
        ("H100", "h01"),
        ("H100", "h02"),
    }
    # The 64 H100 of the delivery count from its date, July 1st; the booking needs them.
    assert series(report, "west", "h02") == [
        ("2027-05-01", 0, 0, 0),
        ("2027-06-01", 0, 0, 0),
        ("2027-07-01", 64, 0, 64),
        ("2027-08-01", 64, 64, 0),
        ("2027-09-01", 64, 0, 64),
    ]
    assert series(report, "west", "h01")[3] == ("2027-08-01", 32, 32, 0)
    hours = w.capacity(fleet, t("2027-06-30", 23), t("2027-07-01", 1), step="hour", site="west")
    assert [s[1] for s in series(hours, "west", "h02")] == [0, 64]
    # A planned site supplies nothing before the day it goes live.
    north = w.capacity(fleet, t("2027-12-31"), t("2028-01-02"), step="day", site="north")
    assert [s[1] for s in series(north, "north", "n01")] == [0, 32]
    nvl = w.capacity(fleet, t("2027-01-01"), t("2027-01-02"), accelerator="GB200")["pools"]
    assert [(p["site"], p["gpus_per_node"], p["block_gpus"]) for p in nvl] == [("west", 4, 72)]


def test_a_row_per_site_and_accelerator_sums_its_fabrics_hour_by_hour(fleet: TestClient) -> None:
    """`group=accelerator` (the console's calendar): one row per site x accelerator, summed
    before each bucket takes its extremes, so fabrics tight at different times in a month do
    not add up to a tightness that never happens."""
    # h01 (32 GPUs) is busy in the first half of August, h02 (64) in the second half.
    w.reserved(fleet, "hold-h02", 64, "2027-08-01", "2027-08-15", site="west", same_fabric=True)
    w.reserved(fleet, "first-half", 32, "2027-08-01", "2027-08-15", site="west", same_fabric=True)
    assert fleet.post("/v1/contracts/hold-h02/cancel", json={}).status_code == 200
    w.reserved(fleet, "second-half", 64, "2027-08-15", "2027-09-01", site="west", same_fabric=True)
    span = (t("2027-06-01"), t("2027-10-01"))
    per_pool = w.capacity(fleet, *span, step="month", site="west", accelerator="H100")
    assert {p["fabric"] for p in per_pool["pools"]} == {"h01", "h02"}
    august = [p["series"][2] for p in per_pool["pools"]]
    assert sum(b["committed"] for b in august) == 96 and sum(b["free"] for b in august) == 0
    grouped = w.capacity(fleet, *span, step="month", site="west", group="accelerator")
    rows = {(p["accelerator"], p["fabric"]): p for p in grouped["pools"]}
    assert set(rows) == {("H100", "*"), ("GB200", "*")}
    h100 = rows[("H100", "*")]
    assert [(b["start"][:10], b["supply"], b["committed"], b["free"]) for b in h100["series"]] == [
        ("2027-06-01", 32, 0, 32),
        ("2027-07-01", 96, 0, 96),  # the delivery's 64 GPUs from July 1st
        ("2027-08-01", 96, 64, 32),
        ("2027-09-01", 96, 0, 96),
    ]
    assert h100["gpus_per_node"] == 8
    csv_rows = list(
        csv.DictReader(
            io.StringIO(
                fleet.get(
                    "/v1/capacity",
                    params={
                        "start": span[0],
                        "end": span[1],
                        "step": "month",
                        "site": "west",
                        "accelerator": "H100",
                        "group": "accelerator",
                        "format": "csv",
                    },
                ).text
            )
        )
    )
    assert [(r["fabric"], r["committed"]) for r in csv_rows] == [
        ("*", "0"),
        ("*", "0"),
        ("*", "64"),
        ("*", "0"),
    ]
    w.problem(
        fleet.get("/v1/capacity", params={"start": span[0], "end": span[1], "group": "rack"}),
        422,
        "group",
    )


def test_buckets_show_the_least_supply_and_free_and_the_most_committed(small: TestClient) -> None:
    w.reserved(small, "week", 64, "2027-01-04", "2027-01-11", site="east", same_fabric=True)
    report = w.capacity(small, t("2027-01-01"), t("2027-01-15"), step="week", site="east")
    rows = [s for p in report["pools"] for s in series(report, "east", p["fabric"])]
    # The first week holds the booking's first three days, the second its last four.
    assert ("2027-01-01", 64, 64, 0) in rows and ("2027-01-08", 64, 64, 0) in rows
    odd = w.capacity(small, t("2027-01-15"), t("2027-03-10"), step="month", site="east")
    spans = [(b["start"][:10], b["end"][:10]) for b in odd["pools"][0]["series"]]
    assert spans == [
        ("2027-01-15", "2027-02-01"),
        ("2027-02-01", "2027-03-01"),
        ("2027-03-01", "2027-03-10"),
    ]


def test_csv_for_spreadsheets(small: TestClient) -> None:
    w.reserved(small, "r", 16, "2027-01-01", "2027-02-01", site="east", same_fabric=True)
    params = {"start": t("2027-01-01"), "end": t("2027-01-03"), "step": "day"}
    as_json = small.get("/v1/capacity", params=params).json()
    for r in (
        small.get("/v1/capacity", params={**params, "format": "csv"}),
        small.get("/v1/capacity", params=params, headers={"Accept": "text/csv"}),
    ):
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert r.text.splitlines()[0] == (
            "site,accelerator,fabric,start,end,supply,committed,free,out_of_service"
        )
        assert len(rows) == sum(len(p["series"]) for p in as_json["pools"]) == 6 * 2
        east = [x for x in rows if x["site"] == "east" and x["committed"] != "0"]
        assert len(east) == 2 and {x["committed"] for x in east} == {"16"}
        assert {x["free"] for x in east} == {"48"} and east[0]["supply"] == "64"
    r = small.get(
        "/v1/capacity", params={**params, "format": "json"}, headers={"Accept": "text/csv"}
    )
    assert r.json() == as_json
    r = small.get("/v1/capacity", params={**params, "format": "xlsx"})
    w.problem(r, 422, "format")


def test_bad_capacity_requests(small: TestClient) -> None:
    five_years = {"start": t("2027-01-01"), "end": t("2032-01-01"), "step": "hour"}
    body = w.problem(small.get("/v1/capacity", params=five_years), 422, "cells", "coarser step")
    assert "6 pools" in body["detail"]
    # Filtering to one site brings it under the limit.
    fewer = {**five_years, "end": t("2030-01-01"), "site": "east"}
    assert small.get("/v1/capacity", params=fewer).status_code == 200
    cases: list[tuple[dict[str, str], tuple[str, ...]]] = [
        ({"start": t("2027-02-01"), "end": t("2027-01-01")}, ("end", "after start")),
        ({"start": t("2027-01-01"), "end": t("2027-01-01")}, ("end",)),
        ({"start": "soon", "end": t("2027-01-01")}, ("start",)),
        ({"end": t("2027-01-01")}, ("start",)),
        ({"start": t("2027-01-01"), "end": t("2027-02-01"), "step": "fortnight"}, ("step",)),
        ({"start": t("2027-01-01"), "end": t("2027-02-01"), "site": "atlantis"}, ("site",)),
        (
            {"start": t("2027-01-01"), "end": t("2027-02-01"), "accelerator": "Z9"},
            ("accelerator",),
        ),
    ]
    for params, words in cases:
        w.problem(small.get("/v1/capacity", params=params), 422, *words)
    century = {"start": t("1950-01-01"), "end": t("2027-01-01"), "step": "month"}
    w.problem(small.get("/v1/capacity", params=century), 422, "end", "40 years")
    conflicts = "/v1/capacity/conflicts"
    w.problem(small.get(conflicts, params={"start": "soon"}), 422, "start")
    backwards = {"start": t("2027-02-01"), "end": t("2027-01-01")}
    w.problem(small.get(conflicts, params=backwards), 422, "end", "after start")


def test_tenants_do_not_see_the_operators_calendar(small: TestClient) -> None:
    r = small.post("/v1/tokens", json={"name": "t", "role": "tenant-admin", "tenant": ACME})
    me = {"Authorization": f"Bearer {r.json()['token']}"}
    params = {"start": t("2027-01-01"), "end": t("2027-01-02")}
    w.problem(small.get("/v1/capacity", params=params, headers=me), 403)
    w.problem(small.get("/v1/capacity/conflicts", headers=me), 403)


# --- conflicts -----------------------------------------------------------------------------


def test_a_slipped_delivery_reports_the_short_contract_and_keeps_it(fleet: TestClient) -> None:
    booked = w.reserved(fleet, "needs-delivery", 96, "2027-08-01", "2027-12-01", site="west")
    assert fleet.get("/v1/capacity/conflicts").json() == []
    r = fleet.patch(f"/v1/deliveries/{DELIVERY}", json={"expected_on": "2027-10-01"})
    assert r.status_code == 200, r.text
    (conflict,) = fleet.get("/v1/capacity/conflicts").json()
    assert (conflict["kind"], conflict["site"], conflict["accelerator"], conflict["fabric"]) == (
        "oversold",
        "west",
        "H100",
        "h02",
    )
    assert (conflict["start"], conflict["end"]) == ("2027-08-01T00:00:00Z", "2027-10-01T00:00:00Z")
    assert (conflict["amount"], conflict["unit"]) == ("64", "gpus")
    assert conflict["contracts"] == [
        {"contract": "needs-delivery", "tenant": ACME, "short_gpus": 64}
    ]
    assert "64 H100 GPUs more are committed in west/h02" in conflict["detail"]
    # The contract is not dropped or shrunk: it is exactly as booked.
    assert w.get(fleet, "needs-delivery") == booked
    aug = w.free_at(fleet, "west", "h02", "2027-08-15")
    assert (aug["supply"], aug["committed"], aug["free"]) == (0, 64, -64)
    # Conflicts can be asked for a period; the delivery back on time clears them.
    later = fleet.get("/v1/capacity/conflicts", params={"start": t("2027-10-01")})
    assert later.status_code == 200 and later.json() == []
    fleet.patch(f"/v1/deliveries/{DELIVERY}", json={"expected_on": "2027-07-15"})
    assert fleet.get("/v1/capacity/conflicts").json() == []


def test_failed_and_retired_nodes_leave_contracts_short(small: TestClient) -> None:
    booked = w.reserved(small, "all-east", 128, "2027-01-01", "2027-02-01", site="east")
    r = small.patch("/v1/nodes/east-e02-b1-n1", json={"state": "failed", "reason": "XID 79"})
    assert r.status_code == 200, r.text
    (conflict,) = small.get("/v1/capacity/conflicts").json()
    assert (conflict["kind"], conflict["fabric"], conflict["amount"]) == ("oversold", "e02", "8")
    assert conflict["contracts"] == [{"contract": "all-east", "tenant": ACME, "short_gpus": 8}]
    report = w.capacity(small, t("2027-01-01"), t("2027-01-02"), site="east")
    e02 = next(p for p in report["pools"] if p["fabric"] == "e02")
    assert e02["out_of_service"] == 8 and e02["series"][0]["supply"] == 56
    assert small.patch("/v1/nodes/east-e02-b1-n1", json={"state": "repair"}).status_code == 200
    assert small.patch("/v1/nodes/east-e02-b1-n1", json={"state": "available"}).status_code == 200
    assert small.get("/v1/capacity/conflicts").json() == []
    # The fleet file drops one node from each of east's four blocks: 16 GPUs per fabric.
    fewer = w.FLEET.replace(
        'nodes: {name: "east-{fabric}-{block}-n{i}", count: 4,',
        'nodes: {name: "east-{fabric}-{block}-n{i}", count: 3,',
    )
    assert fewer != w.FLEET
    r = small.post("/v1/fleet/apply", content=fewer, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 200 and r.json()["applied"] is True, r.text
    found = small.get("/v1/capacity/conflicts").json()
    assert sorted((c["fabric"], c["amount"]) for c in found) == [("e01", "16"), ("e02", "16")]
    assert all(c["contracts"][0]["contract"] == "all-east" for c in found)
    assert w.get(small, "all-east") == booked


def test_a_power_cut_reports_the_contracts_it_leaves_short(small: TestClient) -> None:
    w.book(
        small,
        name="nvl-all",
        tenant=GLOBEX,
        type="reserved",
        accelerator="GB200",
        gpus=144,
        unit="block",
        start=t("2027-08-01"),
        end=t("2027-10-01"),
    )
    h100 = w.reserved(small, "h100-all", 96, "2027-08-01", "2027-10-01", site="west")
    assert small.get("/v1/capacity/conflicts").json() == []
    # 0.34 MW still powers the nodes installed today (0.334 MW), not the delivery's too.
    r = small.patch("/v1/sites/west", json={"power_mw": "0.34"})
    assert r.status_code == 200, r.text
    (conflict,) = small.get("/v1/capacity/conflicts").json()
    assert (conflict["kind"], conflict["site"], conflict["unit"]) == ("power", "west", "mw")
    assert (conflict["start"], conflict["end"]) == ("2027-08-01T00:00:00Z", "2027-10-01T00:00:00Z")
    # 144 x 1,650 W + 96 x 1,275 W = 360 kW of IT load against 283.3 kW: 0.092 MW at PUE 1.2.
    assert conflict["amount"] == "0.092"
    assert conflict["contracts"][0]["contract"] == "h100-all"  # the newest is short first
    assert w.get(small, "h100-all") == h100
