"""Quotes through the REST API: ranked, priced options and what they use up; the earliest
start when nothing fits; booking from a quote; bad input and tenant scoping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from neocloud.contracts.models import Quote
from neocloud.db.engine import make_engine
from tests.contracts import world as w
from tests.contracts.world import ACME, GLOBEX, INTERNAL, t


def test_options_are_ranked_by_start_priced_and_say_what_they_use(fleet: TestClient) -> None:
    w.reserved(fleet, "busy", 120, "2027-01-01", "2027-02-01", site="east")
    q = w.quote(
        fleet, tenant=ACME, accelerator="H100", gpus=32, months=12, start_after=t("2027-01-01")
    )
    assert q["tenant"] == ACME and q["type"] == "reserved" and q["unavailable"] is None
    opts = q["options"]
    # West fits at once; east only once 'busy' ends; north is not live before 2028.
    assert [(o["option"], o["site"], o["start"][:10]) for o in opts] == [
        (1, "west", "2027-01-01"),
        (2, "east", "2027-02-01"),
    ]
    for o in opts:
        assert o["gpus"] == 32 and o["accelerator"] == "H100"
        assert o["price_model"] == "per-gpu-hour" and o["currency"] == "USD"
        # $3.99 list, 35% off for a one-year term; the value is over the whole term.
        assert Decimal(o["price"]) == Decimal("2.5935")
        assert Decimal(o["contract_value"]) == Decimal("2.5935") * 32 * 8760
        assert sum(p["gpus"] for p in o["pools"]) == 32
    west = opts[0]
    # 32 H100 at 10.2 kW per 8-GPU node and PUE 1.2: 0.049 MW.
    assert Decimal(west["mw"]) == Decimal("0.049")
    uses = {u["kind"]: u for u in west["uses"]}
    assert Decimal(uses["free-capacity"]["share"]) == 1
    assert "takes 100% of the free H100 capacity at west" in uses["free-capacity"]["detail"]
    assert "power" in uses and Decimal(uses["power"]["share"]) < Decimal("0.1")
    # The quote is stored as answered.
    again = fleet.get(f"/v1/quotes/{q['id']}").json()
    assert again["options"] == opts and again["request"]["gpus"] == 32
    one = w.quote(fleet, tenant=ACME, accelerator="H100", gpus=32, months=12, max_options=1)
    assert len(one["options"]) == 1


@pytest.mark.parametrize(
    ("term", "price"),
    [
        ({"days": 30}, "3.99"),  # under a month: list price
        ({"months": 1}, "3.591"),  # 10% off
        ({"months": 6}, "2.9925"),  # 25% off
        ({"months": 36}, "1.7955"),  # 55% off
        ({"hours": 8760}, "2.5935"),  # a year, however it is written
    ],
)
def test_the_term_discount_grows_with_the_term(
    small: TestClient, term: dict[str, int], price: str
) -> None:
    q = w.quote(small, tenant=ACME, accelerator="H100", gpus=8, site="east", **term)
    assert Decimal(q["options"][0]["price"]) == Decimal(price)


def test_an_internal_team_is_quoted_the_transfer_price(small: TestClient) -> None:
    q = w.quote(small, tenant=INTERNAL, accelerator="H100", gpus=8, months=12, site="east")
    assert q["type"] == "internal" and Decimal(q["options"][0]["price"]) == Decimal("1.596")


def test_whole_nvl72_blocks_are_quoted_from_the_gb200_pool(small: TestClient) -> None:
    q = w.quote(small, tenant=ACME, accelerator="GB200", gpus=144, unit="block", months=3)
    (o,) = q["options"]
    assert o["site"] == "west" and o["pools"] == [{"fabric": "nvl", "gpus": 144}]
    assert Decimal(o["price"]) == (Decimal("10.50") * Decimal("0.85")).quantize(Decimal("0.0001"))
    q = w.quote(small, tenant=ACME, accelerator="GB200", gpus=100, unit="block", months=3)
    assert q["options"] == []
    west = {m["site"]: m for m in q["unavailable"]["missing"]}["west"]
    assert "whole blocks" in west["reason"]


def test_when_nothing_fits_the_quote_gives_the_earliest_start_and_what_is_missing(
    fleet: TestClient,
) -> None:
    w.reserved(fleet, "busy", 100, "2027-01-01", "2027-09-01", site="east")
    q = w.quote(
        fleet,
        tenant=GLOBEX,
        accelerator="H100",
        gpus=64,
        months=3,
        start_after=t("2027-01-01"),
        start_before=t("2027-02-01"),
    )
    assert q["options"] == []
    u = q["unavailable"]
    # West's delivery of 64 H100 lands on 2027-07-01; east frees up only in September.
    assert u["earliest_start"] == "2027-07-01T00:00:00Z" and u["earliest_site"] == "west"
    assert "earliest start that fits is 2027-07-01" in u["detail"]
    missing = {m["site"]: (m["possible"], m["missing"]) for m in u["missing"]}
    assert missing["west"] == (32, 32) and missing["east"] == (28, 36)
    assert missing["north"] == (0, 64)
    assert all(m["reason"] for m in u["missing"])
    # More than any one site will ever have: no start fits, and the quote says so.
    q = w.quote(fleet, tenant=GLOBEX, accelerator="H100", gpus=500, months=3)
    assert q["options"] == [] and q["unavailable"]["earliest_start"] is None
    assert "no site can hold 500 H100 GPUs" in q["unavailable"]["detail"]


def test_floor_headroom_shows_in_what_an_option_uses(small: TestClient) -> None:
    w.book(
        small,
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
    q = w.quote(
        small,
        tenant=ACME,
        accelerator="H100",
        gpus=16,
        site="east",
        months=1,
        start_after=t("2027-04-01"),
    )
    uses = {u["kind"]: u for u in q["options"][0]["uses"]}
    # 128 GPUs, 96 kept for the operator: the 32 above the floor are the headroom.
    assert Decimal(uses["floor-headroom"]["share"]) == Decimal("0.5")
    assert uses["floor-headroom"]["detail"] == (
        "takes 50% of the internal floor's headroom at east in 2027-Q2"
    )
    q = w.quote(
        small,
        tenant=ACME,
        accelerator="H100",
        gpus=40,
        site="east",
        months=1,
        start_after=t("2027-04-01"),
        start_before=t("2027-05-01"),
    )
    assert q["options"] == []
    (east,) = q["unavailable"]["missing"]
    assert (east["possible"], east["missing"]) == (32, 8) and "floor" in east["reason"]


def test_booking_from_a_quote_takes_the_option_and_checks_again(fleet: TestClient) -> None:
    w.reserved(fleet, "busy", 120, "2027-01-01", "2027-02-01", site="east")
    q = w.quote(
        fleet, tenant=ACME, accelerator="H100", gpus=32, months=12, start_after=t("2027-01-01")
    )
    east = q["options"][1]
    c = w.book(fleet, quote=q["id"], option=2, name="from-quote")
    assert (c["tenant"], c["type"], c["site"], c["gpus"], c["quote_id"]) == (
        ACME,
        "reserved",
        "east",
        32,
        q["id"],
    )
    assert (c["start"], c["end"]) == (east["start"], east["end"])
    assert Decimal(c["price"]) == Decimal(east["price"])
    assert Decimal(c["contract_value"]) == Decimal(east["contract_value"])
    assert w.held(c) == {"east": 32}
    # Explicit fields win over the quote's, and the booking checks everything again.
    c = w.book(fleet, quote=q["id"], option=2, name="cheaper", price="2.00")
    assert Decimal(c["price"]) == Decimal("2.00")
    w.reserved(fleet, "rest", 64, "2027-02-01", "2028-02-01", site="east", tenant=GLOBEX)
    before = w.ledger(fleet)
    r = fleet.post("/v1/contracts", json={"quote": q["id"], "option": 2, "name": "too-late"})
    w.problem(r, 409, "not enough capacity for 32 H100 GPUs", "east")
    assert w.ledger(fleet) == before


def test_quote_options_that_do_not_exist_and_expired_quotes(
    small: TestClient, sqlite_url: str
) -> None:
    q = w.quote(small, tenant=ACME, accelerator="H100", gpus=8, months=1, site="east")
    assert len(q["options"]) == 1
    w.problem(
        small.post("/v1/contracts", json={"quote": q["id"], "option": 2}),
        422,
        f"quote {q['id']} has no option 2",
    )
    w.problem(small.post("/v1/contracts", json={"quote": 424242}), 404, "quote 424242")
    w.problem(small.get("/v1/quotes/424242"), 404, "quote 424242")
    w.problem(small.get("/v1/quotes/0"), 422, "quote_id")
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(
            sa.update(Quote)
            .where(Quote.id == q["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(hours=1))
        )
    engine.dispose()
    w.problem(small.post("/v1/contracts", json={"quote": q["id"]}), 409, "expired")
    assert w.ledger(small) == []


def test_on_demand_and_spot_quotes_promise_nothing(small: TestClient) -> None:
    for kind, price in (("on-demand", "3.99"), ("spot", "1.3965")):
        q = w.quote(small, tenant=ACME, type=kind, accelerator="H100", gpus=8)
        assert q["type"] == kind and q["unavailable"] is None
        assert [o["site"] for o in q["options"]] == ["east", "west"]  # most free first
        for o in q["options"]:
            assert Decimal(o["price"]) == Decimal(price)
            first = o["uses"][0]
            assert first["kind"] == "not-guaranteed" and "not promised" in first["detail"]
            assert f"{kind} holds no capacity" in first["detail"]
    # With every H100 reserved, there is nothing idle to offer.
    w.reserved(small, "e", 128, "2027-01-01", "2027-02-01", site="east")
    w.reserved(small, "w", 32, "2027-01-01", "2027-02-01", site="west")
    q = w.quote(
        small,
        tenant=ACME,
        type="spot",
        accelerator="H100",
        gpus=8,
        start_after=t("2027-01-01"),
        hours=24,
        sites=["east", "west"],
    )
    assert q["options"] == [] and "no H100 capacity is free" in q["unavailable"]["detail"]


def test_a_quote_never_offers_a_start_in_the_past(fleet: TestClient) -> None:
    q = w.quote(
        fleet, tenant=ACME, accelerator="H100", gpus=8, months=1, start_after=t("2025-01-01")
    )
    now = datetime.now(UTC)
    assert q["options"], q
    for option in q["options"]:
        assert datetime.fromisoformat(option["start"]) > now, option


QUOTE: dict[str, Any] = {"tenant": ACME, "accelerator": "H100", "gpus": 8, "months": 1}
BAD_QUOTES: list[tuple[str, dict[str, Any], int, tuple[str, ...]]] = [
    ("no-term", {"months": None}, 422, ("months", "give the term")),
    ("two-terms", {"days": 3}, 422, ("give the term once",)),
    ("zero-months", {"months": 0}, 422, ("months",)),
    (
        "window-reversed",
        {"start_after": t("2027-02-01"), "start_before": t("2027-01-01")},
        422,
        ("start_before",),
    ),
    ("start-not-on-hour", {"start_after": "2027-01-01T00:10:00Z"}, 422, ("start_after", "hour")),
    (
        "window-in-the-past",
        {"start_after": t("2025-01-01"), "start_before": t("2025-02-01")},
        422,
        ("start_before", "past"),
    ),
    ("unknown-accelerator", {"accelerator": "Z9"}, 422, ("accelerator", "Z9")),
    ("no-accelerator", {"accelerator": None}, 422, ("accelerator", "required")),
    ("unknown-site", {"site": "atlantis"}, 422, ("site", "atlantis")),
    ("unknown-site-in-list", {"sites": ["atlantis"]}, 422, ("sites.0", "atlantis")),
    ("zero-gpus", {"gpus": 0}, 422, ("gpus",)),
    ("negative-gpus", {"gpus": -1}, 422, ("gpus",)),
    ("no-gpus", {"gpus": None}, 422, ("gpus",)),
    ("unknown-field", {"colour": "red"}, 422, ("colour",)),
    ("unknown-tenant", {"tenant": "nobody"}, 404, ("tenant", "nobody")),
    ("unknown-type", {"type": "lease"}, 422, ("type",)),
    ("dedicated-without-site", {"type": "dedicated-site"}, 422, ("site",)),
    ("max-options-zero", {"max_options": 0}, 422, ("max_options",)),
]


def test_bad_quote_requests_are_refused_and_store_nothing(small: TestClient) -> None:
    failures: list[str] = []
    for case, changes, status, words in BAD_QUOTES:
        body = {k: v for k, v in {**QUOTE, **changes}.items() if v is not None}
        try:
            w.problem(small.post("/v1/quotes", json=body), status, *words)
        except AssertionError as exc:
            failures.append(f"{case}: {exc}")
    assert not failures, "\n".join(failures)
    assert small.get("/v1/quotes/1").status_code == 404
    assert small.get("/v1/audit-events", params={"action": "quote.create"}).json()["items"] == []


def test_a_tenant_admin_asks_for_its_own_quotes_only(small: TestClient) -> None:
    theirs = w.quote(small, tenant=GLOBEX, accelerator="H100", gpus=8, months=1)
    r = small.post(
        "/v1/tokens", json={"name": "acme-admin", "role": "tenant-admin", "tenant": ACME}
    )
    me = {"Authorization": f"Bearer {r.json()['token']}"}
    r = small.post("/v1/quotes", headers=me, json={"accelerator": "H100", "gpus": 8, "months": 1})
    assert r.status_code == 201, r.text
    mine = r.json()
    assert mine["tenant"] == ACME and mine["options"]
    assert small.get(f"/v1/quotes/{mine['id']}", headers=me).status_code == 200
    w.problem(small.get(f"/v1/quotes/{theirs['id']}", headers=me), 404)
    r = small.post("/v1/quotes", headers=me, json={**QUOTE, "tenant": GLOBEX})
    w.problem(r, 404, "globex")
    # A tenant may ask, but only the operator books; the booking is the tenant's.
    w.problem(small.post("/v1/contracts", headers=me, json={"quote": mine["id"]}), 403)
    assert w.ledger(small) == []
    c = w.book(small, quote=mine["id"], name="acme-q")
    assert c["tenant"] == ACME and c["quote_id"] == mine["id"]
    assert [x["name"] for x in small.get("/v1/contracts", headers=me).json()["items"]] == ["acme-q"]
