"""Revenue, backlog and concentration through the API, on SQLite and PostgreSQL, checked
against figures worked out by hand from the contracts' terms."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from neocloud.auth.roles import Role
from tests.conftest import token_maker
from tests.contracts.world import ACME, GLOBEX, INTERNAL, book, build, problem, reserved, t

D = Decimal
PNG = b"\x89PNG\r\n\x1a\n"


def report(c: TestClient, name: str, **params: str) -> dict[str, Any]:
    r = c.get(f"/v1/reports/{name}", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["report"] == name
    return body


def periods(body: dict[str, Any], field: str = "recognized") -> dict[str, Decimal]:
    return {p["period"]: D(p[field]) for p in body["periods"]}


def story(c: TestClient) -> None:
    """acme: 16 H100 at $2.50 from 15 January to 15 April 2027 (value 86,400.00).
    globex: all of west from February to August 2027 at $73,000 per MW-month for its 3 MW
    (4,344 hours = 5.95 months: value 1,303,200.00, i.e. $300 an hour).
    ops (internal): 8 H100 at $1.00 over 2027 (showback 70,080.00)."""
    build(c)
    reserved(c, "acme-h100", 16, "2027-01-15", "2027-04-15", site="east", price="2.50")
    book(
        c,
        name="globex-west",
        tenant=GLOBEX,
        type="dedicated-site",
        site="west",
        start=t("2027-02-01"),
        end=t("2027-08-01"),
        price="73000",
    )
    reserved(
        c,
        "ops-h100",
        8,
        "2027-01-01",
        "2028-01-01",
        site="east",
        tenant=INTERNAL,
        type="internal",
        price="1.00",
    )


def test_revenue_by_month_is_ratable_and_splits_by_site_customer_and_type(
    client: TestClient,
) -> None:
    story(client)
    body = report(
        client, "revenue", start=t("2027-01-01"), end=t("2027-09-01"), as_of=t("2028-01-01")
    )
    assert periods(body) == {
        "2027-01": D("16320.00"),
        "2027-02": D("26880.00") + D("201600.00"),  # 672 h x $300
        "2027-03": D("29760.00") + D("223200.00"),
        "2027-04": D("13440.00") + D("216000.00"),
        "2027-05": D("223200.00"),
        "2027-06": D("216000.00"),
        "2027-07": D("223200.00"),
        "2027-08": D("0.00"),
    }
    assert D(body["recognized"]) == D("86400.00") + D("1303200.00")
    assert body["by_customer"] == {GLOBEX: "1303200.00", ACME: "86400.00"}
    assert body["by_site"] == {"west": "1303200.00", "east": "86400.00"}
    assert body["by_type"] == {"dedicated-site": "1303200.00", "reserved": "86400.00"}
    # The operator's own contract is showback at its transfer price, never revenue.
    assert D(body["showback"]) == D(8 * 24 * (31 + 28 + 31 + 30 + 31 + 30 + 31 + 31)) * D("1.00")
    assert body["showback_by_tenant"] == {INTERNAL: body["showback"]}
    assert INTERNAL not in body["by_customer"]
    feb = body["periods"][1]
    assert feb["by_site"] == {"west": "201600.00", "east": "26880.00"}
    assert feb["start"].startswith("2027-02-01") and feb["end"].startswith("2027-03-01")
    # By quarter, the same money.
    quarters = report(
        client,
        "revenue",
        start=t("2027-01-01"),
        end=t("2027-09-01"),
        step="quarter",
        as_of=t("2028-01-01"),
    )
    assert periods(quarters) == {
        "2027-Q1": D("16320.00") + D("26880.00") + D("29760.00") + D("201600.00") + D("223200.00"),
        "2027-Q2": D("13440.00") + D("216000.00") + D("223200.00") + D("216000.00"),
        "2027-Q3": D("223200.00"),
    }


def test_nothing_is_recognized_after_as_of(client: TestClient) -> None:
    story(client)
    body = report(
        client, "revenue", start=t("2027-01-01"), end=t("2027-04-01"), as_of=t("2027-02-15")
    )
    # 14 days of February: acme 14 x 24 x 16 x 2.50, globex 14 x 24 x 300.
    assert periods(body) == {
        "2027-01": D("16320.00"),
        "2027-02": D("13440.00") + D("100800.00"),
        "2027-03": D("0.00"),
    }


def test_a_cancelled_contract_stops_recognizing_where_its_claims_end(client: TestClient) -> None:
    build(client)
    reserved(client, "acme-past", 8, "2026-10-01", "2027-01-01", site="east", price="2.00")
    r = client.post("/v1/contracts/acme-past/cancel", json={"reason": "test"})
    assert r.status_code == 200, r.text
    claims = client.get("/v1/contracts/acme-past").json()["claims"]
    cut = max(c["end"] for c in claims)  # the hour after the cancellation
    served = sum((_hours(c["start"], c["end"]) * c["gpus"] for c in claims), 0)
    body = report(
        client, "revenue", start=t("2026-10-01"), end=t("2027-02-01"), as_of=t("2030-01-01")
    )
    assert D(body["recognized"]) == D(served) * D("2.00")
    assert periods(body)["2026-10"] == D(31 * 24 * 8) * D("2.00")
    assert periods(body)["2027-01"] == D("0.00")
    # Nothing is left to recognize: no backlog.
    assert report(client, "backlog", as_of=cut)["contracts"] == []


def _hours(start: str, end: str) -> int:
    from datetime import datetime

    a = datetime.fromisoformat(start.replace("Z", "+00:00"))
    b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    return int((b - a).total_seconds() // 3600)


def test_backlog_by_quarter_sums_to_value_less_recognized(client: TestClient) -> None:
    story(client)
    body = report(client, "backlog", as_of=t("2027-03-01"))
    # acme: Jan + Feb recognized (43,200.00), March and April left.
    # globex: February recognized (201,600.00), March to July left.
    assert periods(body, "amount") == {
        "2027-Q1": D("29760.00") + D("223200.00"),
        "2027-Q2": D("13440.00") + D("655200.00"),
        "2027-Q3": D("223200.00"),
    }
    assert D(body["total"]) == D("86400.00") - D("43200.00") + D("1303200.00") - D("201600.00")
    assert sum(periods(body, "amount").values()) == D(body["total"])
    assert D(body["later"]) == 0
    rows = {r["contract"]: r for r in body["contracts"]}
    assert set(rows) == {"acme-h100", "globex-west"}  # internal work is not backlog
    for row in rows.values():
        assert D(row["value"]) - D(row["recognized"]) == D(row["remaining"])
    assert rows["globex-west"]["value"] == "1303200.00"
    assert body["by_customer"] == {GLOBEX: "1101600.00", ACME: "43200.00"}
    assert D(body["internal"]) == D(8 * 24 * (365 - 31 - 28)) * D("1.00")
    # Cut at `end`: the quarters after it are summed into `later`.
    short = report(client, "backlog", as_of=t("2027-03-01"), end=t("2027-04-01"))
    assert list(periods(short, "amount")) == ["2027-Q1"]
    assert D(short["later"]) == D(body["total"]) - D(short["periods"][0]["amount"])


def test_concentration_on_a_known_mix(client: TestClient) -> None:
    """Six customers on the same terms with 32, 16, 8, 8, 8 and 8 GPUs: the largest holds
    40%, the top five 90%; HHI = 1600 + 400 + 4 x 100 = 2400."""
    build(client)
    customers = [(ACME, 32), (GLOBEX, 16), ("c3", 8), ("c4", 8), ("c5", 8), ("c6", 8)]
    for name, gpus in customers:
        if name.startswith("c"):
            r = client.post(
                "/v1/tenants", json={"name": name, "display_name": name, "kind": "customer"}
            )
            assert r.status_code == 201, r.text
        reserved(
            client,
            f"{name}-r",
            gpus,
            "2027-01-01",
            "2027-07-01",
            site="east",
            tenant=name,
            price="2.00",
        )
    reserved(
        client,
        "ops-r",
        32,
        "2027-01-01",
        "2027-07-01",
        site="east",
        tenant=INTERNAL,
        type="internal",
    )
    body = report(
        client, "concentration", start=t("2027-01-01"), end=t("2027-07-01"), as_of=t("2028-01-01")
    )
    assert body["customers"] == 6
    assert (body["largest_customer"], body["largest_share"]) == (ACME, "0.4000")
    assert body["top_five_share"] == "0.9000"
    assert D(body["hhi"]) == D("2400.0")
    assert [(x["customer"], x["share"]) for x in body["top_five"]] == [
        (ACME, "0.4000"),
        (GLOBEX, "0.2000"),
        ("c3", "0.1000"),
        ("c4", "0.1000"),
        ("c5", "0.1000"),
    ]
    hours = 181 * 24
    assert D(body["recognized"]) == D(80 * hours) * D("2.00")
    assert [p["largest_share"] for p in body["periods"]] == ["0.4000", "0.4000"]
    assert body["chart"]["labels"][-1] == "others"


def test_every_report_draws_a_png(client: TestClient) -> None:
    story(client)
    for name in (
        "revenue",
        "backlog",
        "revenue-per-mw",
        "utilization",
        "concentration",
        "capacity-split",
    ):
        r = client.get(f"/v1/reports/{name}", params={"format": "png", "as_of": t("2027-06-01")})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/png"
        assert r.content.startswith(PNG) and len(r.content) > 5_000
    r = client.get("/v1/reports/revenue", headers={"Accept": "image/png"})
    assert r.headers["content-type"] == "image/png" and r.content.startswith(PNG)


def test_bad_parameters_are_422_naming_them_and_unknown_reports_404(client: TestClient) -> None:
    build(client)
    body = problem(client.get("/v1/reports/profit"), 404, "profit", "revenue", "capacity-split")
    assert "utilization" in body["detail"]
    problem(client.get("/v1/reports/revenue", params={"step": "day"}), 422, "step", "month")
    problem(client.get("/v1/reports/revenue", params={"step": "fortnight"}), 422, "step")
    problem(
        client.get(
            "/v1/reports/revenue", params={"start": t("2027-02-01"), "end": t("2027-01-01")}
        ),
        422,
        "end",
    )
    problem(
        client.get("/v1/reports/backlog", params={"start": t("2027-01-01")}), 422, "start", "as_of"
    )
    problem(client.get("/v1/reports/revenue", params={"currency": "dollars"}), 422, "currency")
    problem(
        client.get(
            "/v1/reports/utilization", params={"start": t("2020-01-01"), "end": t("2027-01-01")}
        ),
        422,
        "step",
    )
    problem(client.get("/v1/reports/revenue", params={"as_of": "yesterday"}), 422, "as_of")
    problem(client.get("/v1/reports/revenue", params={"format": "gif"}), 422, "format")
    listed = client.get("/v1/reports").json()
    assert [r["name"] for r in listed] == [
        "revenue",
        "backlog",
        "revenue-per-mw",
        "utilization",
        "concentration",
        "capacity-split",
    ]


def test_reports_are_for_the_operator_not_tenants(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    story(client)
    make = token_maker(factory)
    for role, tenant, status in (
        (Role.FINANCE, None, 200),
        (Role.SALES, None, 200),
        (Role.OPS, None, 403),
        (Role.TENANT_ADMIN, ACME, 403),
        (Role.TENANT_VIEWER, ACME, 403),
    ):
        auth = {"Authorization": f"Bearer {make(role, tenant)}"}
        assert client.get("/v1/reports/revenue", headers=auth).status_code == status, role
        assert client.get("/v1/reports", headers=auth).status_code == status, role
