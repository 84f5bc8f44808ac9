"""GET /v1/plans/examples: the built-in scenarios with their text, which a client (the
console's planner) sends back to POST /v1/plans as they are; operators only."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from neocloud.api.app import create_app
from neocloud.auth.roles import Role
from neocloud.config import Settings
from neocloud.db.engine import make_engine
from neocloud.planning import runs
from tests.conftest import ADMIN_TOKEN, token_maker


@pytest.fixture
def planner(db_url: str) -> Iterator[TestClient]:
    """An admin client of an app whose planner thread looks for work every 50 ms."""
    engine = make_engine(db_url)
    settings = Settings(db_url=db_url, bootstrap_token=ADMIN_TOKEN, plan_interval_s=0.05)
    with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield c
    engine.dispose()


def test_the_built_in_scenarios_come_with_their_text(client: TestClient) -> None:
    resp = client.get("/v1/plans/examples")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    files = [s["file"] for s in body["scenarios"]]
    # the story's three scenarios; the demo fleet file is what they read, not a scenario
    assert files == ["keep-site-1.yaml", "plan-pipeline.yaml", "sell-site-1.yaml"]
    for scenario in body["scenarios"]:
        assert scenario["text"] == (runs.BUILTIN_DIR / scenario["file"]).read_text()
    sell = next(s for s in body["scenarios"] if s["file"] == "sell-site-1.yaml")
    assert sell["name"] == "sell-site-1"
    assert sell["description"].startswith("Sell all of memphis-1 to the AI lab")
    [story] = body["comparisons"]
    assert (story["scenario"], story["compare"]) == ("sell-site-1.yaml", "keep-site-1.yaml")
    # sent back as they are, they are accepted (each extends the built-in pipeline)
    text = {s["file"]: s["text"] for s in body["scenarios"]}
    asked = client.post(
        "/v1/plans",
        json={"scenario": text[story["scenario"]], "compare": text[story["compare"]], "runs": 0},
    )
    assert asked.status_code == 202, asked.text
    assert asked.json()["name"] == "sell-site-1 vs keep-site-1"


def test_tenants_may_not_read_the_examples(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    client.post("/v1/tenants", json={"name": "lab", "display_name": "Lab"})
    make = token_maker(factory)
    tenant = {"Authorization": f"Bearer {make(Role.TENANT_VIEWER, 'lab')}"}
    assert client.get("/v1/plans/examples", headers=tenant).status_code == 403
    finance = {"Authorization": f"Bearer {make(Role.FINANCE)}"}
    assert client.get("/v1/plans/examples", headers=finance).status_code == 200


def test_a_report_names_no_path_on_the_server(planner: TestClient) -> None:
    """The story's files sent as they are: the report's sources and reasons name the
    request's fields (`compare:5`), as its 422s do, never where the server keeps them."""
    text = {s["file"]: s["text"] for s in planner.get("/v1/plans/examples").json()["scenarios"]}
    asked = planner.post(
        "/v1/plans",
        json={"scenario": text["sell-site-1.yaml"], "compare": text["keep-site-1.yaml"], "runs": 0},
    )
    deadline = time.monotonic() + 120
    while (run := planner.get(asked.headers["location"]).json())["status"] != "succeeded":
        assert run["status"] in ("queued", "running") and time.monotonic() < deadline, run
        time.sleep(0.1)
    report = run["result"]
    assert str(runs.BUILTIN_DIR) not in json.dumps(report)
    assert report["plan"]["scenario"]["source"] == "scenario"
    reasons = {r["deal"]: r["reason"] for r in report["compare"]["rejected"]}
    assert reasons["meridian-memphis-1"] == "rejected by decision (compare:5)"
