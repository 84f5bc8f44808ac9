"""Selling a site whole: the dedicated-site quote, moving the operator's own work to another
site in the same transaction, and the refusals that leave everything as it was."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from tests.contracts import world as w
from tests.contracts.world import ACME, GLOBEX, INTERNAL, t


def training(c: TestClient, gpus: int = 32, end: str = "2027-06-01", **extra: Any) -> None:
    """The operator's own training run at east."""
    w.book(
        c,
        name="ops-train",
        tenant=INTERNAL,
        type="internal",
        accelerator="H100",
        gpus=gpus,
        site="east",
        start=t("2027-01-01"),
        end=t(end),
        **extra,
    )


def sale(start: str = "2027-01-01", end: str = "2028-01-01", **extra: Any) -> dict[str, Any]:
    return {
        "name": "acme-east",
        "tenant": ACME,
        "type": "dedicated-site",
        "site": "east",
        "start": t(start),
        "end": t(end),
        **extra,
    }


def test_the_quote_shows_the_whole_site_and_the_relocation(fleet: TestClient) -> None:
    training(fleet)
    q = w.quote(
        fleet,
        tenant=ACME,
        type="dedicated-site",
        site="east",
        months=12,
        start_after=t("2027-01-01"),
    )
    (o,) = q["options"]
    assert (o["site"], o["gpus"], Decimal(o["mw"])) == ("east", 128, Decimal(2))
    assert o["start"] == "2027-01-01T00:00:00Z" and o["end"] == "2028-01-01T00:00:00Z"
    assert sorted((p["fabric"], p["gpus"]) for p in o["pools"]) == [("e01", 64), ("e02", 64)]
    assert o["uses"][0]["kind"] == "site"
    assert o["uses"][0]["detail"] == "takes all of east: 128 GPUs, 2.000 MW"
    # Per MW-month, at what its 128 H100 would fetch as one-year reserved capacity.
    assert o["price_model"] == "per-mw-month"
    monthly = Decimal("2.5935") * 128 * 730
    assert Decimal(o["price"]) == (monthly / 2).quantize(Decimal("0.01"))
    assert Decimal(o["contract_value"]) == Decimal(o["price"]) * 2 * 12
    (move,) = o["relocations"]
    assert (move["contract"], move["gpus"], move["from_site"], move["to_site"]) == (
        "ops-train",
        32,
        "east",
        "west",
    )
    assert (move["start"], move["end"]) == ("2027-01-01T00:00:00Z", "2027-06-01T00:00:00Z")
    assert move["parts"] == [{"fabric": "h01", "gpus": 32}]
    # A quote holds nothing and moves nothing.
    assert w.held(w.get(fleet, "ops-train")) == {"east": 32}


def test_booking_the_sale_moves_internal_work_in_the_same_transaction(fleet: TestClient) -> None:
    training(fleet)
    q = w.quote(
        fleet,
        tenant=ACME,
        type="dedicated-site",
        site="east",
        months=12,
        start_after=t("2027-01-01"),
    )
    c = w.book(fleet, quote=q["id"], option=1, name="acme-east")
    assert (c["type"], c["site"], c["gpus"], Decimal(c["mw"])) == (
        "dedicated-site",
        "east",
        128,
        Decimal(2),
    )
    assert all(k["exclusive"] for k in c["claims"]) and w.held(c) == {"east": 128}
    moved = w.get(fleet, "ops-train")
    assert w.held(moved) == {"west": 32} and moved["site"] == "west"
    assert moved["sites"] == ["west"] and moved["revision"] == 2
    assert (moved["start"], moved["end"], moved["gpus"]) == (
        "2027-01-01T00:00:00Z",
        "2027-06-01T00:00:00Z",
        32,
    )
    hist = w.history(fleet, "ops-train")
    assert [h["action"] for h in hist] == ["book", "relocate"]
    assert "acme-east" in hist[1]["reason"] and "west" in hist[1]["reason"]
    assert w.held(hist[0]["snapshot"]) == {"east": 32}
    events = fleet.get("/v1/audit-events", params={"action": "contract.relocate"}).json()["items"]
    assert [e["object_id"] for e in events] == ["ops-train"]
    # The calendar agrees: east is the buyer's, west carries the training.
    march = w.capacity(fleet, t("2027-03-01"), t("2027-03-02"))
    committed = {(p["site"], p["fabric"]): p["series"][0]["committed"] for p in march["pools"]}
    assert committed[("east", "e01")] == committed[("east", "e02")] == 64
    assert committed[("west", "h01")] == 32
    assert fleet.get("/v1/capacity/conflicts").json() == []
    # Nothing else may be booked on the sold site, by customers or by the operator.
    r = fleet.post(
        "/v1/contracts",
        json={
            "tenant": GLOBEX,
            "type": "reserved",
            "accelerator": "H100",
            "gpus": 8,
            "site": "east",
            "start": t("2027-08-01"),
            "end": t("2027-09-01"),
        },
    )
    w.problem(r, 409, "held by a dedicated-site contract")
    r = fleet.post(
        "/v1/contracts",
        json={
            "tenant": INTERNAL,
            "type": "internal",
            "accelerator": "H100",
            "gpus": 8,
            "site": "east",
            "start": t("2027-08-01"),
            "end": t("2027-09-01"),
        },
    )
    w.problem(r, 409, "held by a dedicated-site contract")


def test_only_the_overlapping_part_of_internal_work_moves(small: TestClient) -> None:
    training(small)
    w.book(small, **sale("2027-03-01", "2028-03-01"))
    claims = sorted(
        (k["site"], k["start"][:10], k["end"][:10]) for k in w.get(small, "ops-train")["claims"]
    )
    assert claims == [("east", "2027-01-01", "2027-03-01"), ("west", "2027-03-01", "2027-06-01")]


def test_a_customer_on_the_site_blocks_the_sale_and_nothing_is_written(small: TestClient) -> None:
    training(small)
    w.reserved(small, "globex-8", 8, "2027-01-01", "2028-01-01", site="east", tenant=GLOBEX)
    before = w.ledger(small)
    body = w.problem(
        small.post("/v1/contracts", json=sale()),
        409,
        "east cannot be sold whole",
        "contract 'globex-8' of globex holds 8 GPUs on the site",
    )
    assert body["errors"][0]["loc"] == ["body", "site"]
    assert w.ledger(small) == before
    assert w.history(small, "ops-train")[-1]["action"] == "book"
    q = w.quote(
        small,
        tenant=ACME,
        type="dedicated-site",
        site="east",
        months=12,
        start_after=t("2027-01-01"),
    )
    assert q["options"] == []
    (east,) = q["unavailable"]["missing"]
    assert "globex-8" in east["reason"]


def test_no_room_for_the_internal_work_elsewhere_blocks_the_sale(fleet: TestClient) -> None:
    """64 H100 of internal work; before its delivery, west has room for 32, north is not live."""
    training(fleet, gpus=64, end="2027-12-01")
    before = w.ledger(fleet)
    body = w.problem(
        fleet.post("/v1/contracts", json=sale()),
        409,
        "internal contract 'ops-train' holds 64 GPUs on the site",
        "no other site can take them",
        "west could take 32",
    )
    assert body["errors"]
    assert w.ledger(fleet) == before
    assert w.held(w.get(fleet, "ops-train")) == {"east": 64}
    assert (
        fleet.get("/v1/audit-events", params={"action": "contract.relocate"}).json()["items"] == []
    )
    # Once west's delivery has landed the work fits there, and the sale goes through.
    w.book(fleet, **sale("2027-08-01", "2028-08-01"))
    after = w.get(fleet, "ops-train")
    assert sorted((k["site"], k["start"][:10], k["end"][:10]) for k in after["claims"]) == [
        ("east", "2027-01-01", "2027-08-01"),
        ("west", "2027-08-01", "2027-12-01"),
    ]


def test_an_internal_floor_on_the_site_pins_it(small: TestClient) -> None:
    training(small, floors=[{"gpus": 32}])
    before = w.ledger(small)
    w.problem(
        small.post("/v1/contracts", json=sale()),
        409,
        "internal floor of contract 'ops-train'",
        "move it first",
    )
    assert w.ledger(small) == before


def test_without_relocate_internal_the_sale_names_what_would_move(small: TestClient) -> None:
    training(small)
    before = w.ledger(small)
    body = w.problem(
        small.post("/v1/contracts", json=sale(relocate_internal=False)),
        409,
        "'ops-train'",
        "relocate_internal",
    )
    assert body["errors"][0]["loc"] == ["body", "relocate_internal"]
    assert w.ledger(small) == before


def test_a_dedicated_site_can_be_extended_but_not_resized(small: TestClient) -> None:
    w.book(small, **sale())
    r = small.post(
        "/v1/contracts/acme-east/amendments", json={"kind": "extend", "end": t("2028-07-01")}
    )
    assert r.status_code == 200, r.text
    assert r.json()["end"] == "2028-07-01T00:00:00Z"
    assert max(k["end"] for k in r.json()["claims"]) == "2028-07-01T00:00:00Z"
    for body in ({"kind": "grow", "gpus": 256}, {"kind": "move", "site": "west"}):
        w.problem(small.post("/v1/contracts/acme-east/amendments", json=body), 422, "kind")
    r = small.post("/v1/contracts/acme-east/cancel", json={})
    assert r.status_code == 200 and r.json()["claims"] == []
    assert w.reserved(small, "after", 8, "2027-02-01", "2027-03-01", site="east")["gpus"] == 8
