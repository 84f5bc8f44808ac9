"""GET /v1/plans/examples: the built-in scenarios with their text, which a client (the
console's planner) sends back to POST /v1/plans as they are; operators only."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from neocloud.auth.roles import Role
from neocloud.planning import runs
from tests.conftest import token_maker


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
