"""Contracts through the REST API: booking, topology, amendments, cancellation, floors,
uncommitted types, bad input and tenant scoping. Core flows run on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from tests.contracts import world as w
from tests.contracts.world import ACME, GLOBEX, INTERNAL, t

# --- every type, end to end -------------------------------------------------------------------

LIFECYCLE: list[tuple[str, dict[str, Any], bool]] = [
    ("reserved", {"tenant": ACME, "accelerator": "H100", "gpus": 8}, True),
    ("dedicated-site", {"tenant": GLOBEX, "site": "west"}, True),
    ("on-demand", {"tenant": ACME, "accelerator": "H100", "gpus": 8}, False),
    ("spot", {"tenant": GLOBEX, "accelerator": "H100", "gpus": 16}, False),
    ("internal", {"tenant": INTERNAL, "type": "reserved", "accelerator": "H100", "gpus": 8}, True),
]


def test_every_type_is_quoted_booked_amended_and_cancelled(fleet: TestClient) -> None:
    for kind, ask, holds in LIFECYCLE:
        request = {"type": kind, "months": 1, "start_after": t("2027-01-01"), **ask}
        q = w.quote(fleet, **request)
        assert q["type"] == kind and q["options"], f"{kind}: {q['unavailable']}"
        c = w.book(fleet, quote=q["id"], option=1, name=f"{kind}-1")
        assert (c["type"], c["state"], c["quote_id"]) == (kind, "booked", q["id"]), kind
        assert bool(c["claims"]) is holds, kind
        r = fleet.post(
            f"/v1/contracts/{kind}-1/amendments", json={"kind": "extend", "end": t("2027-03-01")}
        )
        assert r.status_code == 200, f"{kind}: {r.text}"
        assert r.json()["end"] == "2027-03-01T00:00:00Z"
        if holds:
            assert max(k["end"] for k in r.json()["claims"]) == "2027-03-01T00:00:00Z", kind
        r = fleet.post(f"/v1/contracts/{kind}-1/cancel", json={"reason": "test"})
        assert r.status_code == 200, f"{kind}: {r.text}"
        assert r.json()["state"] == "cancelled" and r.json()["claims"] == [], kind
        actions = [h["action"] for h in w.history(fleet, f"{kind}-1")]
        assert actions == ["book", "extend", "cancel"], kind
    listed = fleet.get("/v1/contracts", params={"state": "cancelled"}).json()["items"]
    assert sorted(x["type"] for x in listed) == sorted(k for k, _, _ in LIFECYCLE)
    report = w.capacity(fleet, t("2027-01-01"), t("2027-03-01"), step="month")
    assert all(b["committed"] == 0 for p in report["pools"] for b in p["series"])


# --- reserved ------------------------------------------------------------------------------


def test_a_direct_booking_holds_its_gpus_and_is_priced_from_the_list(fleet: TestClient) -> None:
    c = w.reserved(fleet, "acme-1", 48, "2027-01-01", "2028-01-01", site="east")
    assert (c["state"], c["type"], c["tenant"], c["site"], c["gpus"]) == (
        "booked",
        "reserved",
        ACME,
        "east",
        48,
    )
    # H100 list $3.99, a one-year term takes 35% off; take-or-pay by default.
    assert Decimal(c["price"]) == Decimal("2.5935") and c["price_model"] == "per-gpu-hour"
    assert Decimal(c["contract_value"]) == Decimal("2.5935") * 48 * 8760
    assert c["take_or_pay"] is True
    assert sum(k["gpus"] for k in c["claims"]) == 48 and w.held(c) == {"east": 48}
    assert [(h["revision"], h["action"]) for h in w.history(fleet, "acme-1")] == [(1, "book")]
    # The calendar counts it, and what is left is what the next customer can have.
    jan = w.capacity(fleet, t("2027-03-01"), t("2027-03-02"), site="east")
    assert sum(p["series"][0]["committed"] for p in jan["pools"]) == 48
    assert sum(p["series"][0]["free"] for p in jan["pools"]) == 80
    r = fleet.post(
        "/v1/contracts",
        json={
            "name": "globex-1",
            "tenant": GLOBEX,
            "type": "reserved",
            "accelerator": "H100",
            "gpus": 81,
            "site": "east",
            "start": t("2027-06-01"),
            "end": t("2027-07-01"),
        },
    )
    body = w.problem(r, 409, "not enough capacity for 81 H100 GPUs", "east: 80 possible, 1 missing")
    assert body["errors"][0]["loc"] == ["site", "east"]
    assert (
        w.reserved(fleet, "globex-1", 80, "2027-06-01", "2027-07-01", tenant=GLOBEX)["gpus"] == 80
    )
    assert "globex-1" in [x[0] for x in w.ledger(fleet)]


def test_whole_blocks_whole_nodes_one_fabric_and_allowed_sites(small: TestClient) -> None:
    blk = w.book(
        small,
        name="nvl",
        tenant=GLOBEX,
        type="reserved",
        accelerator="GB200",
        gpus=72,
        unit="block",
        start=t("2027-01-01"),
        end=t("2027-04-01"),
    )
    assert blk["unit"] == "block" and w.held(blk) == {"west": 72}
    assert [(k["fabric"], k["gpus"]) for k in blk["claims"]] == [("nvl", 72)]
    r = small.post(
        "/v1/contracts",
        json={**_body(GLOBEX, "GB200", 100, unit="block"), "name": "nvl-2"},
    )
    w.problem(r, 409, "west", "whole blocks")
    # Whole 8-GPU nodes: 12 GPUs is not a number of nodes anywhere.
    w.problem(small.post("/v1/contracts", json=_body(ACME, "H100", 12, unit="node")), 409, "nodes")
    node = w.book(small, **{**_body(ACME, "H100", 16, unit="node"), "name": "nodes"})
    assert node["gpus"] == 16 and node["unit"] == "node"
    # One fabric: 72 H100 exist at east (128) but no single fabric has more than 64.
    r = small.post("/v1/contracts", json=_body(ACME, "H100", 72, same_fabric=True, site="east"))
    w.problem(r, 409, "east", "in any one fabric")
    spread = w.book(small, **{**_body(ACME, "H100", 72, site="east"), "name": "spread"})
    assert len({k["fabric"] for k in spread["claims"]}) == 2
    one = w.book(small, **{**_body(GLOBEX, "H100", 32, same_fabric=True), "name": "one"})
    assert len({k["fabric"] for k in one["claims"]}) == 1
    # Allowed sites: west has 32 H100 before its delivery, east is excluded.
    r = small.post("/v1/contracts", json=_body(GLOBEX, "H100", 33, sites=["west", "north"]))
    w.problem(r, 409, "west: 32 possible")
    ok = w.book(small, **{**_body(GLOBEX, "H100", 32, sites=["west", "north"]), "name": "ws"})
    assert w.held(ok) == {"west": 32} and ok["sites"] == ["west", "north"]


def _body(tenant: str, acc: str, gpus: int, **extra: Any) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "type": "reserved",
        "accelerator": acc,
        "gpus": gpus,
        "start": t("2027-01-01"),
        "end": t("2027-04-01"),
        **extra,
    }


def test_book_by_megawatts(small: TestClient) -> None:
    """0.05 MW at east (PUE 1.2, 1,275 W per H100) runs 32 whole GPUs."""
    c = w.book(small, **{**_body(ACME, "H100", 1, site="east"), "gpus": None, "mw": "0.05"})
    assert c["gpus"] == 32 and w.held(c) == {"east": 32}


# --- amendments ----------------------------------------------------------------------------


def test_extend_grow_shrink_move_each_checked_and_kept_in_history(fleet: TestClient) -> None:
    w.reserved(fleet, "r1", 32, "2027-01-01", "2027-04-01", site="east", same_fabric=True)
    amend = _amend(fleet, "r1")
    c = amend({"kind": "extend", "end": t("2027-06-01"), "reason": "more training"})
    assert c["end"] == "2027-06-01T00:00:00Z" and c["revision"] == 2
    assert max(k["end"] for k in c["claims"]) == "2027-06-01T00:00:00Z"
    c = amend({"kind": "grow", "gpus": 48, "effective": t("2027-02-01")})
    assert c["gpus"] == 48
    assert _gpus_at(c, "2027-01-15") == 32 and _gpus_at(c, "2027-02-15") == 48
    c = amend({"kind": "shrink", "gpus": 16, "effective": t("2027-03-01")})
    assert _gpus_at(c, "2027-02-15") == 48 and _gpus_at(c, "2027-03-15") == 16
    c = amend({"kind": "move", "site": "west", "effective": t("2027-04-01")})
    assert c["site"] == "west"
    assert _gpus_at(c, "2027-03-15", "east") == 16 and _gpus_at(c, "2027-04-15", "west") == 16
    assert _gpus_at(c, "2027-04-15", "east") == 0
    hist = w.history(fleet, "r1")
    assert [(h["revision"], h["action"]) for h in hist] == [
        (1, "book"),
        (2, "extend"),
        (3, "grow"),
        (4, "shrink"),
        (5, "move"),
    ]
    assert hist[1]["reason"] == "more training" and hist[0]["snapshot"]["end"].startswith("2027-04")
    events = fleet.get("/v1/audit-events", params={"action": "contract.move"}).json()["items"]
    assert events and events[-1]["object_id"] == "r1"


def _amend(c: TestClient, name: str) -> Any:
    def amend(body: dict[str, Any]) -> dict[str, Any]:
        r = c.post(f"/v1/contracts/{name}/amendments", json=body)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    return amend


def _gpus_at(c: dict[str, Any], day: str, site: str | None = None) -> int:
    at = t(day)
    return sum(
        k["gpus"]
        for k in c["claims"]
        if k["start"] <= at < k["end"] and (site is None or k["site"] == site)
    )


def test_an_amendment_that_does_not_fit_changes_nothing(small: TestClient) -> None:
    w.reserved(small, "r1", 64, "2027-01-01", "2027-03-01", site="east")
    w.reserved(small, "r2", 64, "2027-01-01", "2027-03-01", site="east", tenant=GLOBEX)
    before = w.ledger(small)
    cases: list[tuple[dict[str, Any], int, tuple[str, ...]]] = [
        ({"kind": "grow", "gpus": 72}, 409, ("not enough capacity", "east")),
        ({"kind": "move", "site": "north"}, 409, ("north",)),  # north is not live until 2028
        ({"kind": "extend", "end": t("2027-02-01")}, 422, ("end", "after the current end")),
        ({"kind": "extend"}, 422, ("end", "required")),
        ({"kind": "extend", "end": "2027-04-01T00:30:00Z"}, 422, ("end", "not on the hour")),
        ({"kind": "grow", "gpus": 32}, 422, ("gpus", "more than the current 64")),
        ({"kind": "shrink", "gpus": 64}, 422, ("gpus", "fewer than the current 64")),
        ({"kind": "grow"}, 422, ("gpus", "required")),
        ({"kind": "move", "site": "nowhere"}, 422, ("site", "unknown site 'nowhere'")),
        ({"kind": "move"}, 422, ("site",)),
        ({"kind": "grow", "gpus": 72, "effective": t("2028-01-01")}, 422, ("effective",)),
        ({"kind": "split"}, 422, ("kind",)),
        ({"kind": "extend", "end": t("2027-05-01"), "colour": "red"}, 422, ("colour",)),
    ]
    for body, status, words in cases:
        w.problem(small.post("/v1/contracts/r1/amendments", json=body), status, *words)
    w.problem(small.post("/v1/contracts/nope/amendments", json={"kind": "extend"}), 404, "nope")
    assert w.ledger(small) == before
    assert len(w.history(small, "r1")) == 1


def test_cancel_releases_capacity_from_the_next_hour(fleet: TestClient) -> None:
    """An active contract (it started last month) gives its GPUs back from the next hour."""
    c = w.reserved(fleet, "live", 64, "2026-11-01", "2027-11-01", site="east", same_fabric=True)
    assert c["state"] == "active"
    fabric = c["claims"][0]["fabric"]
    assert w.free_at(fleet, "east", fabric, "2027-03-01")["committed"] == 64
    first = _next_hour()
    r = fleet.post("/v1/contracts/live/cancel", json={"reason": "customer left"})
    last = _next_hour()
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["state"] == "cancelled" and out["cancelled_at"]
    # What was used stays on the record; the rest of the term is released.
    (claim,) = out["claims"]
    assert claim["start"] == "2026-11-01T00:00:00Z"
    assert first <= datetime.fromisoformat(claim["end"]) <= last
    after = w.free_at(fleet, "east", fabric, "2027-03-01")
    assert (after["supply"], after["committed"], after["free"]) == (64, 0, 64)
    assert w.history(fleet, "live")[-1]["action"] == "cancel"
    assert w.history(fleet, "live")[-1]["reason"] == "customer left"
    # The freed capacity can be sold again.
    assert w.reserved(fleet, "next", 64, "2027-03-01", "2027-04-01", site="east")["gpus"] == 64
    w.problem(fleet.post("/v1/contracts/live/cancel", json={}), 409, "cancelled")


def _next_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def test_ended_and_cancelled_contracts_cannot_be_amended(small: TestClient) -> None:
    old = w.reserved(small, "old", 8, "2025-01-01", "2025-02-01", site="east")
    assert old["state"] == "ended"
    w.reserved(small, "gone", 8, "2027-01-01", "2027-02-01")
    assert small.post("/v1/contracts/gone/cancel", json={}).status_code == 200
    before = w.ledger(small)
    for name, state in (("old", "ended"), ("gone", "cancelled")):
        for body in (
            {"kind": "extend", "end": t("2028-01-01")},
            {"kind": "grow", "gpus": 16},
            {"kind": "shrink", "gpus": 4},
            {"kind": "move", "site": "west"},
        ):
            r = small.post(f"/v1/contracts/{name}/amendments", json=body)
            w.problem(r, 409, f"'{name}' is {state}")
    w.problem(small.post("/v1/contracts/old/cancel", json={}), 409, "ended")
    assert w.ledger(small) == before


def test_a_quoted_draft_holds_nothing_until_booked(small: TestClient) -> None:
    d = w.book(small, **{**_body(ACME, "H100", 8, site="east"), "name": "draft", "book": False})
    assert d["state"] == "quoted" and d["claims"] == []
    w.problem(
        small.post("/v1/contracts/draft/amendments", json={"kind": "grow", "gpus": 16}),
        409,
        "quoted",
    )
    r = small.post("/v1/contracts/draft/book")
    assert r.status_code == 200 and r.json()["state"] == "booked"
    assert w.held(r.json()) == {"east": 8}
    w.problem(small.post("/v1/contracts/draft/book"), 409, "only a quoted one can be booked")
    assert [h["action"] for h in w.history(small, "draft")] == ["quote", "book"]


# --- on-demand and spot ---------------------------------------------------------------------


def test_on_demand_and_spot_hold_no_capacity(small: TestClient) -> None:
    od = w.book(
        small,
        name="od",
        tenant=GLOBEX,
        type="on-demand",
        accelerator="H100",
        gpus=128,
        start=t("2027-01-01"),
        end=t("2027-02-01"),
    )
    spot = w.book(
        small,
        name="sp",
        tenant=ACME,
        type="spot",
        accelerator="H100",
        gpus=64,
        start=t("2027-01-01"),
        end=t("2027-02-01"),
    )
    assert od["claims"] == [] and spot["claims"] == []
    assert Decimal(od["price"]) == Decimal("3.99") and od["take_or_pay"] is False
    assert od["notice_minutes"] is None
    # Spot: 35% of list, preemptible with a notice period.
    assert Decimal(spot["price"]) == Decimal("1.3965") and spot["notice_minutes"] == 30
    assert spot["take_or_pay"] is False
    # Nothing is held: all of east can still be reserved over the same month.
    assert w.reserved(small, "all", 128, "2027-01-01", "2027-02-01", site="east")["gpus"] == 128
    notice = w.book(
        small,
        name="sp2",
        tenant=ACME,
        type="spot",
        accelerator="H100",
        gpus=8,
        notice_minutes=120,
        start=t("2027-01-01"),
        end=t("2027-02-01"),
    )
    assert notice["notice_minutes"] == 120
    r = small.post("/v1/contracts/od/amendments", json={"kind": "extend", "end": t("2027-03-01")})
    assert r.status_code == 200 and r.json()["end"] == "2027-03-01T00:00:00Z"
    r = small.post("/v1/contracts/sp/cancel", json={"reason": "done"})
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert [h["action"] for h in w.history(small, "sp")] == ["book", "cancel"]


# --- internal floors -----------------------------------------------------------------------


def test_customers_cannot_book_into_an_internal_floor(fleet: TestClient) -> None:
    floor = w.book(
        fleet,
        name="ops-floor",
        tenant=INTERNAL,
        type="internal",
        accelerator="H100",
        gpus=16,
        site="east",
        start=t("2027-01-01"),
        end=t("2028-01-01"),
        floors=[{"gpus": 96}],
    )
    assert floor["type"] == "internal" and floor["take_or_pay"] is False
    assert [(f["site"], f["gpus"]) for f in floor["floors"]] == [("east", 96)]
    # 128 H100 at east, 96 kept for the operator: customers may have 32.
    r = fleet.post("/v1/contracts", json=_body(ACME, "H100", 40, site="east"))
    w.problem(r, 409, "internal floor", "east: 32 possible, 8 missing")
    assert w.book(fleet, **{**_body(ACME, "H100", 32, site="east"), "name": "a32"})["gpus"] == 32
    w.problem(fleet.post("/v1/contracts", json=_body(GLOBEX, "H100", 8, site="east")), 409, "floor")
    # The operator's own team may use the floor.
    ops = w.book(
        fleet,
        name="ops-more",
        tenant=INTERNAL,
        type="internal",
        accelerator="H100",
        gpus=64,
        site="east",
        start=t("2027-01-01"),
        end=t("2027-04-01"),
    )
    assert w.held(ops) == {"east": 64}


def test_a_floor_over_what_customers_hold_is_refused(small: TestClient) -> None:
    w.reserved(small, "a64", 64, "2027-08-01", "2027-09-01", site="west")
    before = w.ledger(small)
    r = small.post(
        "/v1/contracts",
        json={
            "name": "ops-west",
            "tenant": INTERNAL,
            "type": "internal",
            "accelerator": "H100",
            "gpus": 8,
            "site": "west",
            "start": t("2027-08-01"),
            "end": t("2027-09-01"),
            "floors": [{"share": "0.5"}],
        },
    )
    # West has 96 H100 after its delivery; half is 48, but acme holds 64: 16 too many.
    body = w.problem(r, 409, "floor at west", "16 GPUs", "customers already hold")
    assert body["errors"][0]["loc"] == ["body", "floors"]
    assert w.ledger(small) == before
    # A share that leaves room for acme is fine.
    r = small.post(
        "/v1/contracts",
        json={
            "name": "ops-west",
            "tenant": INTERNAL,
            "type": "internal",
            "accelerator": "H100",
            "gpus": 8,
            "site": "west",
            "start": t("2027-08-01"),
            "end": t("2027-09-01"),
            "floors": [{"share": "0.25"}],
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["floors"][0]["share"] is not None


# --- bad input -----------------------------------------------------------------------------

GOOD: dict[str, Any] = {
    "name": "x",
    "tenant": ACME,
    "type": "reserved",
    "accelerator": "H100",
    "gpus": 8,
    "start": t("2027-01-01"),
    "end": t("2027-02-01"),
}
BAD: list[tuple[str, dict[str, Any], int, tuple[str, ...]]] = [
    ("end-before-start", {"end": t("2026-12-01")}, 422, ("end", "must be after start")),
    ("end-equals-start", {"end": t("2027-01-01")}, 422, ("end",)),
    ("zero-gpus", {"gpus": 0}, 422, ("gpus",)),
    ("negative-gpus", {"gpus": -8}, 422, ("gpus",)),
    ("no-gpus", {"gpus": None}, 422, ("gpus",)),
    ("gpus-and-mw", {"mw": "1"}, 422, ("mw", "not both")),
    ("zero-mw", {"gpus": None, "mw": "0"}, 422, ("mw",)),
    ("unknown-site", {"site": "atlantis"}, 422, ("site", "unknown site 'atlantis'")),
    ("unknown-site-in-list", {"sites": ["east", "atlantis"]}, 422, ("sites.1", "atlantis")),
    ("unknown-accelerator", {"accelerator": "Z9"}, 422, ("accelerator", "Z9")),
    ("no-accelerator", {"accelerator": None}, 422, ("accelerator",)),
    ("unknown-tenant", {"tenant": "nobody"}, 404, ("tenant", "nobody")),
    ("start-not-on-hour", {"start": "2027-01-01T00:30:00Z"}, 422, ("start", "on the hour")),
    ("end-not-on-hour", {"end": "2027-02-01T00:00:01Z"}, 422, ("end", "on the hour")),
    ("no-start", {"start": None}, 422, ("start", "required")),
    ("term-too-long", {"end": t("2060-01-01")}, 422, ("end", "20 years")),
    ("floors-on-reserved", {"floors": [{"gpus": 8}]}, 422, ("floors", "only internal")),
    ("internal-for-customer", {"type": "internal"}, 422, ("type", "customer")),
    ("reserved-for-internal-team", {"tenant": INTERNAL}, 422, ("type", "internal")),
    ("unknown-field", {"colour": "red"}, 422, ("colour",)),
    ("unknown-type", {"type": "lease"}, 422, ("type",)),
    ("no-type", {"type": None}, 422, ("type", "required")),
    ("unknown-unit", {"unit": "rack"}, 422, ("unit",)),
    ("bad-name", {"name": "Bad Name!"}, 422, ("name",)),
    ("bad-sla", {"sla_tier": "gold"}, 422, ("sla_tier",)),
    ("prepayment-over-100", {"prepayment_pct": "150"}, 422, ("prepayment_pct",)),
    ("per-mw-month-on-reserved", {"price_model": "per-mw-month"}, 422, ("price_model",)),
    ("monthly-fee-without-price", {"price_model": "monthly-fee"}, 422, ("price",)),
    ("dedicated-without-site", {"type": "dedicated-site", "gpus": None}, 422, ("site",)),
    (
        "dedicated-with-two-sites",
        {"type": "dedicated-site", "gpus": None, "site": "east", "sites": ["west"]},
        422,
        ("site", "exactly one site"),
    ),
    (
        "floor-with-gpus-and-share",
        {"type": "internal", "tenant": INTERNAL, "floors": [{"gpus": 8, "share": "0.5"}]},
        422,
        ("floors.0", "exactly one"),
    ),
    (
        "floor-at-unknown-site",
        {"type": "internal", "tenant": INTERNAL, "floors": [{"gpus": 8, "site": "atlantis"}]},
        422,
        ("floors.0.site", "atlantis"),
    ),
    (
        "floor-share-over-1",
        {"type": "internal", "tenant": INTERNAL, "floors": [{"share": "1.5"}]},
        422,
        ("floors.0.share",),
    ),
    ("unknown-quote", {"quote": 99999}, 404, ("quote 99999",)),
    ("quote-option-zero", {"quote": 1, "option": 0}, 422, ("option",)),
]


def test_bad_bookings_are_refused_and_write_nothing(small: TestClient) -> None:
    """Each case on the same database: none may write anything, so none can affect the next."""
    failures: list[str] = []
    for case, changes, status, words in BAD:
        body = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
        try:
            w.problem(small.post("/v1/contracts", json=body), status, *words)
            assert w.ledger(small) == [], "something was written"
        except AssertionError as exc:
            failures.append(f"{case}: {exc}")
    assert not failures, "\n".join(failures)
    events = small.get("/v1/audit-events", params={"action": "contract.create"}).json()
    assert events["items"] == []


def test_a_duplicate_contract_name_is_a_conflict(small: TestClient) -> None:
    w.reserved(small, "same", 8, "2027-01-01", "2027-02-01")
    before = w.ledger(small)
    r = small.post("/v1/contracts", json={**GOOD, "name": "same"})
    body = w.problem(r, 409, "'same' already exists")
    assert body["errors"][0]["loc"] == ["body", "name"]
    assert w.ledger(small) == before


# --- tenant scoping ------------------------------------------------------------------------


def test_a_tenant_admin_sees_only_its_own_and_cannot_book(small: TestClient) -> None:
    w.reserved(small, "mine", 8, "2027-01-01", "2027-02-01")
    w.reserved(small, "theirs", 8, "2027-01-01", "2027-02-01", tenant=GLOBEX)
    r = small.post(
        "/v1/tokens", json={"name": "acme-admin", "role": "tenant-admin", "tenant": ACME}
    )
    assert r.status_code == 201
    me = {"Authorization": f"Bearer {r.json()['token']}"}
    assert [c["name"] for c in small.get("/v1/contracts", headers=me).json()["items"]] == ["mine"]
    assert small.get("/v1/contracts", headers=me, params={"tenant": GLOBEX}).json()["items"] == []
    assert small.get("/v1/contracts/mine", headers=me).status_code == 200
    for path in ("/v1/contracts/theirs", "/v1/contracts/theirs/history"):
        w.problem(small.get(path, headers=me), 404, "theirs")
    before = w.ledger(small)
    w.problem(small.post("/v1/contracts", headers=me, json={**GOOD, "tenant": None}), 403)
    w.problem(small.post("/v1/contracts/mine/cancel", headers=me, json={}), 403)
    w.problem(
        small.post("/v1/contracts/mine/amendments", headers=me, json={"kind": "grow", "gpus": 16}),
        403,
    )
    assert w.ledger(small) == before
