"""GET /v1/console/money: the console's money view in one call. It must answer exactly what
the five `GET /v1/reports/{report}` calls it replaces answer (it only shares their work)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from neocloud.auth.roles import Role
from tests.conftest import token_maker
from tests.contracts.world import ACME, GLOBEX, INTERNAL, book, reserved, t
from tests.metering.conftest import World
from tests.metering.helpers import iso, now_s, post, usage

FREE_NODE = "east-e01-b1-n4"
PARTS = {
    "revenue": ("revenue", "step"),
    "revenue_per_mw": ("revenue-per-mw", "step"),
    "concentration": ("concentration", "step"),
    "backlog": ("backlog", "backlog_step"),
    "utilization": ("utilization", "util_step"),
}


def mixed_business(world: World) -> None:
    """Ratable (reserved, dedicated site), internal showback and usage-rated on-demand
    revenue, so that every kind of cell is in the table the reports share."""
    c, h = world.c, now_s().replace(minute=0, second=0)
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
        c, "ops-h100", 8, "2027-01-01", "2028-01-01", site="east", tenant=INTERNAL,
        type="internal", price="1.00",
    )  # fmt: skip
    r = c.post(
        "/v1/contracts",
        json={
            "name": "acme-od",
            "tenant": ACME,
            "type": "on-demand",
            "accelerator": "H100",
            "site": "east",
            "start": iso(h - timedelta(days=2)),
            "end": iso(h + timedelta(days=30)),
            "price": "4.00",
        },
    )
    assert r.status_code == 201, r.text
    post(c, [usage("acme-od", FREE_NODE, 8, h - timedelta(hours=1), h)])
    post(c, [usage(world.contract, node, 8, h - timedelta(hours=2), h) for node in world.nodes])


def separately(c: TestClient, params: dict[str, str]) -> dict[str, Any]:
    """The five reports as the money view used to fetch them, one call each."""
    out = {}
    for key, (name, step_param) in PARTS.items():
        own = {k: v for k, v in params.items() if k in ("start", "end", "as_of")}
        if name == "backlog":
            own.pop("start", None)
            own.pop("end", None)
        if step_param in params:
            own["step"] = params[step_param]
        r = c.get(f"/v1/reports/{name}", params=own)
        assert r.status_code == 200, (name, r.text)
        out[key] = r.json()
    return out


def test_the_money_view_answers_what_the_five_reports_answer(world: World) -> None:
    c = world.c
    mixed_business(world)
    h = now_s().replace(minute=0, second=0)
    cases = [
        {"step": "month", "backlog_step": "quarter"},  # the view's defaults: as of now
        {"step": "quarter", "backlog_step": "year", "util_step": "week"},
        {
            "start": iso(h - timedelta(days=40)),
            "end": iso(h + timedelta(days=1)),
            "step": "month",
            "util_step": "day",
        },
        {
            "start": t("2027-01-01"),
            "end": t("2028-01-01"),
            "as_of": t("2027-06-15"),
            "step": "month",
            "backlog_step": "month",
            "util_step": "month",
        },
    ]
    for params in cases:
        for _ in range(3):  # "now" may cross an hour between the calls: ask again then
            r = c.get("/v1/console/money", params=params)
            assert r.status_code == 200, r.text
            bundle = r.json()
            alone = separately(c, params)
            if all(bundle[k]["as_of"] == alone[k].get("as_of") for k in ("revenue", "backlog")):
                break
        assert set(bundle) == set(PARTS)
        for key in PARTS:
            assert bundle[key] == alone[key], (params, key)
        assert bundle["revenue"]["recognized"] == bundle["concentration"]["recognized"]
    # The case with revenue of every kind: ratable, on consumption, showback apart.
    body = c.get("/v1/console/money", params=cases[3]).json()
    assert body["revenue"]["ratable"] != "0.00"
    assert body["revenue"]["showback"] != "0.00"
    recent = c.get("/v1/console/money", params=cases[2]).json()
    assert recent["revenue"]["consumption"] == "32.00"
    assert recent["revenue_per_mw"]["recognized"] == recent["revenue"]["recognized"]


def test_a_bad_step_is_named_by_the_views_parameter(world: World) -> None:
    c = world.c
    r = c.get("/v1/console/money", params={"util_step": "quarter"})
    assert r.status_code == 200, r.text  # utilization may be by quarter
    r = c.get("/v1/console/money", params={"backlog_step": "day"})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("backlog_step: backlog is reported by")
    assert [e["loc"] for e in r.json()["errors"]] == [["query", "backlog_step"]]
    r = c.get("/v1/console/money", params={"step": "week"})
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["errors"]] == [["query", "step"]]
    r = c.get("/v1/console/money", params={"start": t("2027-05-01"), "end": t("2027-01-01")})
    assert r.status_code == 422


def test_the_money_view_is_for_those_who_read_reports(
    world: World, factory: sessionmaker[Session]
) -> None:
    make = token_maker(factory)
    for role, tenant, status in (
        (Role.FINANCE, None, 200),
        (Role.SALES, None, 200),
        (Role.OPS, None, 403),
        (Role.TENANT_ADMIN, ACME, 403),
    ):
        auth = {"Authorization": f"Bearer {make(role, tenant)}"}
        assert world.c.get("/v1/console/money", headers=auth).status_code == status, role
