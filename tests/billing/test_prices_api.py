"""Price books through the API: the list book, a negotiated book, gaps and overlaps refused
naming the entry, and a negotiated on-demand rate with volume tiers priced into overage."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from tests.contracts.world import build

ENTRY = {"accelerator": "H100", "contract_type": "on-demand", "price": "3.49"}


def book(name: str, *entries: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "currency": "USD", "entries": list(entries), **extra}


def test_the_list_book_holds_the_list_prices(client: TestClient) -> None:
    r = client.get("/v1/price-books/list-usd")
    assert r.status_code == 200, r.text
    prices = {
        (e["accelerator"], e["contract_type"], e["min_term_months"]): e["price"]
        for e in r.json()["entries"]
    }
    # contracts/pricing.py's figures: list, spot 35%, internal 40%, 12-month reserved -35%
    assert prices[("H100", "on-demand", 0)] == "3.990000"
    assert prices[("GB200", "spot", 0)] == "3.675000"
    assert prices[("H100", "internal", 0)] == "1.596000"
    assert prices[("H100", "reserved", 12)] == "2.593500"
    listed = client.get("/v1/price-books").json()["items"]
    assert [b["name"] for b in listed] == ["list-usd"] and listed[0]["entry_count"] == 50


def test_gaps_and_overlaps_are_refused_naming_the_entry(client: TestClient) -> None:
    jan = {**ENTRY, "valid_from": "2027-01-01T00:00:00Z", "valid_to": "2027-03-01T00:00:00Z"}
    overlapping = {**ENTRY, "price": "3.29", "valid_from": "2027-02-01T00:00:00Z"}
    r = client.post("/v1/price-books", json=book("neg", jan, overlapping))
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["detail"].startswith("entries[1].valid_from: overlaps entry 0")
    assert body["errors"][0]["loc"] == ["body", "entries", 1, "valid_from"]
    gap = {**ENTRY, "price": "3.29", "valid_from": "2027-04-01T00:00:00Z"}
    r = client.post("/v1/price-books", json=book("neg", jan, gap))
    assert r.status_code == 422 and "leaves a gap" in r.json()["detail"]
    assert "2027-03-01 to 2027-04-01" in r.json()["detail"]
    mid = {**ENTRY, "valid_from": "2027-01-15T00:00:00Z"}
    r = client.post("/v1/price-books", json=book("neg", mid))
    assert r.status_code == 422 and "start of a month" in r.json()["detail"]
    assert client.get("/v1/price-books/neg").status_code == 404  # nothing half-written
    r = client.post("/v1/price-books", json=book("neg", jan), params={"dry_run": "true"})
    assert r.status_code == 201 and client.get("/v1/price-books/neg").status_code == 404


def test_setting_a_price_ends_the_one_in_force(client: TestClient) -> None:
    made = client.post(
        "/v1/price-books", json=book("neg", {**ENTRY, "valid_from": "2026-01-01T00:00:00Z"})
    )
    assert made.status_code == 201, made.text
    r = client.post(
        "/v1/price-books/neg/prices",
        json={**ENTRY, "price": "3.19", "valid_from": "2027-01-01T00:00:00Z"},
    )
    assert r.status_code == 200, r.text
    assert [(e["price"], e["valid_to"]) for e in r.json()["entries"]] == [
        ("3.490000", "2027-01-01T00:00:00Z"),
        ("3.190000", None),
    ]
    r = client.post(
        "/v1/price-books/neg/prices",
        json={**ENTRY, "price": "3.09", "valid_from": "2026-06-01T00:00:00Z"},
    )
    assert r.status_code == 422 and "overlaps" in r.json()["detail"], r.text
    assert (
        client.post(
            "/v1/price-books/nope/prices", json={**ENTRY, "valid_from": "2027-01-01T00:00:00Z"}
        ).status_code
        == 404
    )
    dup = client.post("/v1/price-books", json=book("neg"))
    assert dup.status_code == 409


def test_quotes_and_bookings_price_from_the_list_book(client: TestClient) -> None:
    build(client)
    month = datetime.now(UTC).strftime("%Y-%m-01T00:00:00Z")
    quote = {"tenant": "acme", "type": "on-demand", "accelerator": "H100", "months": 1}
    before = client.post("/v1/quotes", json=quote).json()["options"][0]["price"]
    assert Decimal(before) == Decimal("3.99")
    r = client.post(
        "/v1/price-books/list-usd/prices",
        json={**ENTRY, "price": "3.49", "valid_from": month},
    )
    assert r.status_code == 200, r.text
    after = client.post("/v1/quotes", json=quote).json()["options"][0]["price"]
    assert Decimal(after) == Decimal("3.49")
