"""Invoices through the API, on SQLite and PostgreSQL: a period run for every tenant, each
document checked line by line against figures computed by hand."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from neocloud.auth.principal import SYSTEM
from neocloud.billing import invoicing, lifecycle
from neocloud.core.timeutil import utcnow
from neocloud.db.engine import retrying, transaction
from tests.billing.conftest import World, ok
from tests.billing.helpers import at
from tests.conftest import token_maker

D = Decimal


def run(w: World, period: str = "2026-11", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = ok(w.c.post("/v1/invoices/run", json={"period": period, **extra}))
    return out


def doc(w: World, tenant: str, period: str = "2026-11") -> dict[str, Any]:
    items = ok(w.c.get("/v1/invoices", params={"tenant": tenant, "period": period}))["items"]
    standing = [i for i in items if i["status"] != "void" and i["kind"] != "credit-note"]
    assert len(standing) == 1, items
    out: dict[str, Any] = ok(w.c.get(f"/v1/invoices/{standing[0]['id']}"))
    return out


def by_contract(d: dict[str, Any]) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = {}
    for x in d["items"]:
        key = (x["contract"], x["kind"])
        out[key] = out.get(key, D(0)) + D(x["amount"])
    return out


def test_a_period_run_bills_every_contract_type(world: World) -> None:
    w = world
    # acme's on-demand ran 100 GPU-hours and 1,800 GPU-seconds; globex's spot 8 GPUs x 50 h
    w.use("acme-od", at("2026-11-02T10:00"), 100 * 3600 + 1800)
    w.use("globex-spot", at("2026-11-03T00:00"), 8 * 50 * 3600)
    result = run(w)
    kinds = {(d["tenant"], d["kind"]) for d in result["documents"]}
    assert kinds == {("acme", "invoice"), ("globex", "invoice"), ("ops", "showback")}
    acme = doc(w, "acme")
    assert acme["status"] == "draft" and acme["number"] is None
    assert by_contract(acme) == {
        # 16 GPUs x 720 h x 2.50, used or not
        ("acme-res", "commitment"): D("28800.00"),
        # 100.5 GPU-hours x 3.99 = 400.995 -> 401.00 (half to even)
        ("acme-od", "usage"): D("401.00"),
    }
    assert D(acme["total"]) == D("29201.00") == sum(D(x["amount"]) for x in acme["items"])
    globex = doc(w, "globex")
    site_mw = D(w.contracts["globex-site"]["mw"])
    assert by_contract(globex) == {
        # the whole site: MW x 250,000 per 730-hour month, rounded cumulatively over the
        # term: (Oct + Nov, 1,464 h) rounded less Oct (744 h) rounded; 2 MW: 1,002,739.73 -
        # 509,589.04 = 493,150.69 (the month alone would round to .68: the cent carried)
        ("globex-site", "commitment"): (site_mw * 250000 * 1464 / 730).quantize(D("0.01"))
        - (site_mw * 250000 * 744 / 730).quantize(D("0.01")),
        # 400 GPU-hours x 3.675 = 1,470.00
        ("globex-spot", "usage"): D("1470.00"),
    }
    ops = doc(w, "ops")
    # internal showback: 72 GPUs x 720 h x 4.20 = 217,728.00 at its price, never billed
    assert by_contract(ops) == {("ops-train", "commitment"): D("217728.00")}
    line = next(x for x in acme["items"] if x["contract"] == "acme-res")
    assert line["source"]["rule"] == "take-or-pay" and line["source"]["gpu_hours"] == 11520


def test_sla_credit_for_a_degraded_contract(world: World) -> None:
    w = world
    # a node of acme's 16 GPUs down for 36 hours: half usable -> 1 - 36 x 0.5 / 720 = 97.5%
    w.degrade("acme-res", at("2026-11-10T00:00"), at("2026-11-11T12:00"), usable=8)
    run(w)
    lines = by_contract(doc(w, "acme"))
    # premium: below 99% credits 25% of 28,800.00
    assert lines[("acme-res", "sla-credit")] == D("-7200.00")
    credit = next(x for x in doc(w, "acme")["items"] if x["kind"] == "sla-credit")
    assert "97.500%" in credit["description"] and len(credit["source"]["degraded_hours"]) == 36


def test_rerun_replaces_drafts_and_never_touches_finalized(world: World) -> None:
    w = world
    first = run(w)
    assert first["replaced_drafts"] == 0
    w.use("acme-od", at("2026-11-05T00:00"), 3600)
    second = run(w)
    assert second["replaced_drafts"] == 3
    acme = doc(w, "acme")
    assert by_contract(acme)[("acme-od", "usage")] == D("3.99")
    issued = ok(w.c.post(f"/v1/invoices/{acme['id']}/issue"))
    assert issued["number"] == f"INV-2026-11-{acme['id']:06d}" and issued["due_at"]
    before = ok(w.c.get(f"/v1/invoices/{acme['id']}"))
    # a tenant's finalized period is refused; the others' drafts are replaced
    r = w.c.post("/v1/invoices/run", json={"period": "2026-11", "tenant": "acme"})
    assert r.status_code == 409 and "finalized" in r.json()["detail"], r.text
    third = run(w)
    assert {k["tenant"] for k in third["kept"]} == {"acme"}
    assert ok(w.c.get(f"/v1/invoices/{acme['id']}")) == before
    for d in third["documents"]:
        ok(w.c.post(f"/v1/invoices/{d['id']}/issue"))
    r = w.c.post("/v1/invoices/run", json={"period": "2026-11"})
    assert r.status_code == 409 and "finalized" in r.json()["detail"]
    assert r.headers["content-type"].startswith("application/problem+json")


def test_lifecycle_errors_are_clear_and_change_nothing(world: World) -> None:
    w = world
    r = w.c.post("/v1/invoices/run", json={"period": "2026-13"})
    assert r.status_code == 422 and "period" in r.json()["detail"], r.text
    r = w.c.post("/v1/invoices/run", json={"period": "2026-11", "tenant": "nobody"})
    assert r.status_code == 422 and "tenant" in r.json()["detail"]
    run(w)
    acme = doc(w, "acme")
    r = w.c.post(f"/v1/invoices/{acme['id']}/pay")
    assert r.status_code == 409 and "only an issued one" in r.json()["detail"]
    ok(w.c.post(f"/v1/invoices/{acme['id']}/issue"))
    r = w.c.post(f"/v1/invoices/{acme['id']}/issue")
    assert r.status_code == 409
    paid = ok(w.c.post(f"/v1/invoices/{acme['id']}/pay"))
    assert paid["status"] == "paid"
    r = w.c.post(f"/v1/invoices/{acme['id']}/void", json={"reason": "oops"})
    assert r.status_code == 409 and "credit note" in r.json()["detail"], r.text
    assert ok(w.c.get(f"/v1/invoices/{acme['id']}")) == paid
    # a month not over cannot be issued
    dec = run(w, "2026-12")
    draft = next(d for d in dec["documents"] if d["tenant"] == "acme")
    r = w.c.post(f"/v1/invoices/{draft['id']}/issue")
    assert r.status_code == 409 and "not over" in r.json()["detail"]
    r = w.c.get("/v1/invoices/999999")
    assert r.status_code == 404


def test_credit_note_corrects_an_issued_invoice(world: World) -> None:
    w = world
    run(w)
    acme = doc(w, "acme")
    ok(w.c.post(f"/v1/invoices/{acme['id']}/issue"))
    note = ok(
        w.c.post(
            f"/v1/invoices/{acme['id']}/credit-notes",
            json={"reason": "goodwill for the outage", "amount": "1000.00"},
        ),
        201,
    )
    assert note["kind"] == "credit-note" and note["total"] == "-1000.00"
    assert note["number"].startswith("CN-2026-11-") and note["credits_invoice"]
    r = w.c.post(
        f"/v1/invoices/{acme['id']}/credit-notes", json={"reason": "too much", "amount": "1e9"}
    )
    assert r.status_code == 422 and "amount" in r.json()["detail"]
    assert D(ok(w.c.get(f"/v1/invoices/{acme['id']}"))["credited"]) == D("1000.00")
    # the rest, by default
    rest = ok(w.c.post(f"/v1/invoices/{acme['id']}/credit-notes", json={"reason": "all"}), 201)
    assert D(rest["total"]) == -(D(acme["total"]) - 1000)
    r = w.c.post(f"/v1/invoices/{acme['id']}/void", json={})
    assert r.status_code == 409


def test_late_usage_lands_on_the_next_invoice(world: World) -> None:
    w = world
    w.use("acme-od", at("2026-11-02T10:00"), 10 * 3600)
    run(w)
    nov = doc(w, "acme")
    ok(w.c.post(f"/v1/invoices/{nov['id']}/issue"))
    # usage of November arrives after its invoice was issued: 5 GPU-hours more
    w.use("acme-od", at("2026-11-20T03:00"), 5 * 3600)
    run(w, "2026-12")
    dec = doc(w, "acme", "2026-12")
    late = [x for x in dec["items"] if x["kind"] == "adjustment"]
    assert len(late) == 1
    assert late[0]["for_period"] == "2026-11" and D(late[0]["amount"]) == D("19.95")
    assert late[0]["source"]["gpu_seconds"] == 18_000
    assert "+18,000 GPU-seconds" in late[0]["description"]
    assert ok(w.c.get(f"/v1/invoices/{nov['id']}"))["total"] == nov["total"]  # unchanged
    # once December's invoice carries it (issued after December, by the service: the API's
    # clock is today's), January's does not again
    with transaction(w.factory) as s:
        lifecycle.issue(s, actor=SYSTEM, invoice_id=dec["id"], now=at("2027-01-02"))
    jan = run(w, "2027-01")
    acme_jan = next(d for d in jan["documents"] if d["tenant"] == "acme")
    lines = ok(w.c.get(f"/v1/invoices/{acme_jan['id']}"))["items"]
    assert not [x for x in lines if x["kind"] == "adjustment"]


def test_void_then_run_again(world: World) -> None:
    w = world
    run(w)
    acme = doc(w, "acme")
    ok(w.c.post(f"/v1/invoices/{acme['id']}/issue"))
    voided = ok(w.c.post(f"/v1/invoices/{acme['id']}/void", json={"reason": "wrong terms"}))
    assert voided["status"] == "void"
    again = run(w, tenant="acme")
    assert [d["tenant"] for d in again["documents"]] == ["acme"]
    assert doc(w, "acme")["id"] != acme["id"]


def test_documents_render_as_html_pdf_and_csv(world: World) -> None:
    w = world
    run(w)
    acme = doc(w, "acme")
    html = w.c.get(f"/v1/invoices/{acme['id']}/document", params={"format": "html"})
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "acme-res" in html.text and "28,800.00" in html.text
    pdf = w.c.get(f"/v1/invoices/{acme['id']}/document", params={"format": "pdf"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert "attachment" in pdf.headers["content-disposition"]
    csv = w.c.get(f"/v1/invoices/{acme['id']}/document", params={"format": "csv"})
    rows = csv.text.strip().splitlines()
    assert rows[0].startswith("number,tenant") and len(rows) == 1 + len(acme["items"])
    assert sum(D(r.rsplit(",", 1)[1]) for r in rows[1:]) == D(acme["total"])


def test_tenants_see_only_their_own(world: World) -> None:
    w = world
    run(w)
    globex = doc(w, "globex")
    token = token_maker(w.factory)("tenant-viewer", "acme")
    auth = {"Authorization": f"Bearer {token}"}
    mine = ok(w.c.get("/v1/invoices", headers=auth))["items"]
    assert {i["tenant"] for i in mine} == {"acme"}
    r = w.c.get(f"/v1/invoices/{globex['id']}", headers=auth)
    assert r.status_code == 404
    r = w.c.post("/v1/invoices/run", json={"period": "2026-11"}, headers=auth)
    assert r.status_code == 403


def test_overage_above_the_reservation_at_the_list_on_demand_rate(world: World) -> None:
    w = world
    # acme holds 16 GPUs; one hour ran 20: 4 GPU-hours above, at the list book's H100
    # on-demand 3.99 = 15.96 (the take-or-pay is billed whatever ran)
    w.use("acme-res", at("2026-11-07T05:00"), 20 * 3600)
    w.use("acme-res", at("2026-11-07T06:00"), 16 * 3600)
    run(w)
    lines = by_contract(doc(w, "acme"))
    assert lines[("acme-res", "overage")] == D("15.96")
    assert lines[("acme-res", "commitment")] == D("28800.00")


def test_prepayment_is_billed_then_drawn_down_across_invoices(world: World) -> None:
    w = world
    body = {
        "name": "globex-pre",
        "tenant": "globex",
        "type": "reserved",
        "accelerator": "H100",
        "gpus": 8,
        "site": "west",
        "price": "2.00",
        "prepayment_pct": "20",
        "start": "2026-10-01T00:00:00Z",
        "end": "2027-01-01T00:00:00Z",
    }
    ok(w.c.post("/v1/contracts", json=body), 201)
    run(w, "2026-10", tenant="globex")
    october = doc(w, "globex", "2026-10")
    lines = {x["kind"]: D(x["amount"]) for x in october["items"] if x["contract"] == "globex-pre"}
    # value 8 x 2,208 h x 2.00 = 35,328.00; 20% prepaid = 7,065.60; October draws 20% of
    # its 8 x 744 x 2.00 = 11,904.00
    assert lines == {
        "commitment": D("11904.00"),
        "prepayment": D("7065.60"),
        "prepayment-applied": D("-2380.80"),
    }
    ok(w.c.post(f"/v1/invoices/{october['id']}/issue"))
    run(w, "2026-11", tenant="globex")
    november = by_contract(doc(w, "globex"))
    assert november[("globex-pre", "commitment")] == D("11520.00")
    assert november[("globex-pre", "prepayment-applied")] == D("-2304.00")
    assert ("globex-pre", "prepayment") not in november
    # December, the last month (a preview: it is not over), draws what is left
    run(w, "2026-12", tenant="globex")
    december = by_contract(doc(w, "globex", "2026-12"))
    assert december[("globex-pre", "prepayment-applied")] == D("-2380.80")


def test_showback_is_published_never_paid(world: World) -> None:
    w = world
    run(w)
    ops = doc(w, "ops")
    assert ops["kind"] == "showback" and ops["due_at"] is None
    published = ok(w.c.post(f"/v1/invoices/{ops['id']}/issue"))
    assert published["number"].startswith("SB-2026-11-") and published["due_at"] is None
    r = w.c.post(f"/v1/invoices/{ops['id']}/pay")
    assert r.status_code == 409 and "only an invoice is paid" in r.json()["detail"]


def test_a_negotiated_book_prices_the_tenants_overage_with_volume_tiers(world: World) -> None:
    w = world
    book = {
        "name": "acme-2026",
        "tenant": "acme",
        "entries": [
            {
                "accelerator": "H100",
                "contract_type": "on-demand",
                "price": "3.00",
                "valid_from": "2026-01-01T00:00:00Z",
                "tiers": [{"from_gpu_hours": 2, "discount_pct": "50"}],
            }
        ],
    }
    ok(w.c.post("/v1/price-books", json=book), 201)
    w.use("acme-res", at("2026-11-07T05:00"), 20 * 3600)  # 4 GPU-hours above the 16 held
    run(w)
    over = [x for x in doc(w, "acme")["items"] if x["kind"] == "overage"]
    # 2 GPU-hours at 3.00 = 6.00, 2 more at 50% off = 3.00, priced by acme's own book
    assert [D(x["amount"]) for x in over] == [D("6.00"), D("3.00")]
    assert over[0]["source"]["price_entry"].startswith("acme-2026#")


def test_concurrent_runs_of_a_period_leave_one_invoice_per_tenant(world: World) -> None:
    w = world
    errors: list[BaseException] = []

    def one() -> None:
        try:
            with w.factory() as s:
                retrying(
                    s,
                    lambda: invoicing.run(
                        s, actor=SYSTEM, period="2026-11", tenant=None, now=utcnow()
                    ),
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    items = ok(w.c.get("/v1/invoices", params={"period": "2026-11"}))["items"]
    assert sorted(i["tenant"] for i in items) == ["acme", "globex", "ops"]
