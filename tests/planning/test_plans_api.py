"""/v1/plans on both databases: a plan asked for, run by the API process's planner thread with
progress, its report and charts; malformed scenarios refused at once with their line; runs
claimed once however many processes look; abandoned runs taken over; operators only."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from neocloud.api.app import create_app
from neocloud.auth.roles import Role
from neocloud.config import Settings
from neocloud.core.timeutil import utcnow
from neocloud.db.engine import make_engine
from neocloud.planning import runs
from neocloud.planning.models import PlanRun, PlanStatus
from tests.conftest import ADMIN_TOKEN, token_maker

SELL = """\
name: sell-site-1
start: 2026Q3
horizon: 4
sites:
  - name: site-1
    power_mw: 20
    accelerators: [{accelerator: H100, gpus: 8000}]
  - name: site-2
    power_mw: 10
    accelerators: [{accelerator: H100, gpus: 4000}]
deals:
  - {name: lab, customer: lab, whole_site: true, site: site-1, start: 2026Q3,
     term_quarters: 8, price_per_mw_month: 150000}
  - {name: small, customer: b, accelerator: H100, gpus: 1000, start: [2026Q3, 2026Q4],
     term_quarters: 4, probability: 0.7}
internal:
  demand:
    - {name: training, accelerator: H100, gpus: 6000}
"""
KEEP = SELL.replace("name: sell-site-1", "name: keep-site-1") + "decisions: {reject: [lab]}\n"
PROBLEM = "application/problem+json"


@pytest.fixture
def planner(db_url: str) -> Iterator[TestClient]:
    """An admin client of an app whose planner thread looks for work every 50 ms."""
    engine = make_engine(db_url)
    settings = Settings(db_url=db_url, bootstrap_token=ADMIN_TOKEN, plan_interval_s=0.05)
    with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield c
    engine.dispose()


def wait(c: TestClient, url: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = c.get(url).json()
        if body["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_a_plan_runs_in_the_background_and_reports_with_charts(planner: TestClient) -> None:
    resp = planner.post(
        "/v1/plans", json={"scenario": SELL, "compare": KEEP, "runs": 40, "seed": 7}
    )
    assert resp.status_code == 202, resp.text
    asked = resp.json()
    assert resp.headers["location"] == f"/v1/plans/{asked['id']}"
    assert asked["name"] == "sell-site-1 vs keep-site-1"
    assert asked["status"] in ("queued", "running", "succeeded")
    done = wait(planner, resp.headers["location"])
    assert done["status"] == "succeeded", done
    assert (done["progress"], done["message"], done["attempts"]) == (1.0, "done", 1)
    assert done["started_at"] and done["finished_at"] >= done["started_at"]
    report = done["result"]
    assert (report["runs"], report["seed"]) == (40, 7)
    assert report["plan"]["scenario"]["name"] == "sell-site-1"
    assert report["compare"]["scenario"]["name"] == "keep-site-1"
    assert report["difference"]["plan"] == "sell-site-1"
    assert "montecarlo" in report["plan"]
    assert done["charts"] == [f"/v1/plans/{done['id']}/charts/{c}.png" for c in runs.CHARTS]
    for url in done["charts"]:
        png = planner.get(url)
        assert png.status_code == 200, png.text
        assert png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG")
    # The same seed gives the same simulation.
    again = planner.post(
        "/v1/plans", json={"scenario": SELL, "compare": KEEP, "runs": 40, "seed": 7}
    )
    repeat = wait(planner, again.headers["location"])["result"]
    for part in ("plan", "compare"):  # all but the solver's timings
        assert repeat[part]["montecarlo"] == report[part]["montecarlo"]
        assert repeat[part]["totals"] == report[part]["totals"]


def test_progress_is_written_as_the_planner_reports_it(
    planner: TestClient, factory: sessionmaker[Session]
) -> None:
    seen: list[tuple[str, float, str]] = []
    real = runs._write

    def spy(f: sessionmaker[Session], run_id: int, owner: str, **values: Any) -> bool:
        if "progress" in values:
            status = values.get("status", PlanStatus.RUNNING)
            seen.append((str(status), float(values["progress"]), str(values["message"])))
        return real(f, run_id, owner, **values)

    runs._write = spy  # type: ignore[assignment]
    try:
        resp = planner.post("/v1/plans", json={"scenario": SELL, "runs": 10})
        assert wait(planner, resp.headers["location"])["status"] == "succeeded"
    finally:
        runs._write = real  # type: ignore[assignment]
    messages = [m for _, _, m in seen]
    assert messages[0] == "solving sell-site-1"
    assert "simulating sell-site-1 (10 runs)" in messages
    assert seen[-1] == ("succeeded", 1.0, "done")
    fractions = [p for _, p, _ in seen]
    assert fractions == sorted(fractions)


@pytest.mark.parametrize(
    ("body", "line", "field", "words"),
    [
        ({"scenario": SELL.replace("power_mw: 10", "power_mw: -10")}, 9, "scenario", "power_mw"),
        ({"scenario": SELL + "surprise: 1\n"}, 19, "scenario", "surprise"),
        ({"scenario": SELL.replace("site: site-1,", "site: site-9,")}, 12, "scenario", "site-9"),
        ({"scenario": SELL, "compare": "start: 2026Q3\nhorizon: [\n"}, 3, "compare", "YAML"),
        ({"scenario": "extends: base.yaml\n" + SELL}, 1, "scenario", "but the built-in ones"),
        (
            {"scenario": SELL + "fleet: {file: /etc/passwd}\n"},
            19,
            "scenario",
            "but the built-in ones",
        ),
    ],
)
def test_a_malformed_scenario_is_422_with_its_line_and_nothing_is_queued(
    client: TestClient, body: dict[str, Any], line: int, field: str, words: str
) -> None:
    resp = client.post("/v1/plans", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    problem = resp.json()
    assert problem["detail"].startswith(f"{field}:{line}"), problem["detail"]
    assert words in problem["detail"]
    assert problem["errors"][0]["line"] == line
    assert problem["errors"][0]["loc"][:2] == ["body", field]
    assert client.get("/v1/plans").json()["items"] == []


def test_the_storys_two_choices_compared_through_the_api(planner: TestClient) -> None:
    # The scenarios of docs/planning.md as a user would send them: each extends the built-in
    # pipeline, which reads the demo fleet file (the only files the API lets them name).
    sell, keep = ((runs.BUILTIN_DIR / f"{n}-site-1.yaml").read_text() for n in ("sell", "keep"))
    resp = planner.post("/v1/plans", json={"scenario": sell, "compare": keep, "runs": 50})
    assert resp.status_code == 202, resp.text
    done = wait(planner, resp.headers["location"], timeout=120)
    assert done["status"] == "succeeded", done
    report = done["result"]
    assert report["difference"]["plan"] == "sell-site-1"
    assert report["plan"]["totals"]["revenue"] > report["compare"]["totals"]["revenue"]
    lab = [a["deal"] for a in report["plan"]["accepted"]]
    assert "meridian-memphis-1" in lab
    assert planner.get(done["charts"][-1]).content.startswith(b"\x89PNG")
    bad = planner.post("/v1/plans", json={"scenario": sell.replace("plan-pipeline", "pipe")})
    assert bad.status_code == 422 and "plan-pipeline.yaml, sell-site-1.yaml" in bad.text


def test_a_scenario_may_be_json_and_take_the_fleet_from_the_database(
    planner: TestClient,
) -> None:
    fleet = """\
apiVersion: neocloud/v1
sites:
  - name: dc-1
    location: Reno, NV
    power_mw: 5
    pue: 1.2
    state: live
    dates: {live: 2024-09-02}
    fabrics:
      - name: f01
        blocks:
          name: b{i}
          count: 4
          nodes: {name: "dc-{block}-n{i}", count: 16, accelerator: H100, gpus: 8, power_kw: 10.2}
"""
    applied = planner.post(
        "/v1/fleet/apply", content=fleet, headers={"content-type": "application/yaml"}
    )
    assert applied.status_code == 200, applied.text
    scenario = {
        "name": "live",
        "start": "2027Q1",
        "horizon": 4,
        "fleet": {"from": "database"},
        "deals": [
            {
                "name": "d1",
                "customer": "c",
                "accelerator": "H100",
                "gpus": 256,
                "start": "2027Q1",
                "term_quarters": 4,
            }
        ],
    }
    resp = planner.post("/v1/plans", json={"scenario": scenario, "runs": 5})
    assert resp.status_code == 202, resp.text
    done = wait(planner, resp.headers["location"])
    assert done["status"] == "succeeded", done
    assert done["scenario"].startswith("{")
    sites = done["result"]["plan"]["scenario"]["sites"]
    assert [(s["name"], s["accelerators"]) for s in sites] == [("dc-1", {"H100": 512})]
    assert [d["deal"] for d in done["result"]["plan"]["accepted"]] == ["d1"]


def test_runs_are_listed_in_pages_and_by_status(client: TestClient) -> None:
    ids = [client.post("/v1/plans", json={"scenario": SELL}).json()["id"] for _ in range(3)]
    first = client.get("/v1/plans", params={"limit": 2}).json()
    assert [r["id"] for r in first["items"]] == ids[:2] and first["next_cursor"]
    assert "result" not in first["items"][0]
    rest = client.get("/v1/plans", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [r["id"] for r in rest["items"]] == ids[2:] and rest["next_cursor"] is None
    queued = client.get("/v1/plans", params={"status": "queued"}).json()["items"]
    assert len(queued) == 3
    assert client.get("/v1/plans", params={"status": "failed"}).json()["items"] == []


def test_charts_wait_for_the_report(client: TestClient) -> None:
    run_id = client.post("/v1/plans", json={"scenario": SELL}).json()["id"]
    queued = client.get(f"/v1/plans/{run_id}")
    assert queued.json()["status"] == "queued" and queued.json()["charts"] == []
    early = client.get(f"/v1/plans/{run_id}/charts/revenue.png")
    assert early.status_code == 409 and "is queued" in early.json()["detail"]
    unknown = client.get(f"/v1/plans/{run_id}/charts/pie.png")
    assert unknown.status_code == 404 and "revenue, utilization" in unknown.json()["detail"]
    assert client.get("/v1/plans/999999").status_code == 404


def test_several_processes_claim_each_run_once(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    ids = {
        client.post("/v1/plans", json={"scenario": SELL, "runs": 0}).json()["id"] for _ in range(12)
    }
    claimed: list[tuple[str, int]] = []
    lock = threading.Lock()

    def process(owner: str) -> None:
        while (run_id := runs.claim(factory, owner)) is not None:
            with lock:
                claimed.append((owner, run_id))

    threads = [threading.Thread(target=process, args=(f"p{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r for _, r in claimed) == sorted(ids)
    with factory() as s:
        rows = {r.id: r for r in s.query(PlanRun)}
    for owner, run_id in claimed:
        assert (rows[run_id].status, rows[run_id].claimed_by) == (PlanStatus.RUNNING, owner)
        assert rows[run_id].attempts == 1


def test_an_abandoned_run_is_taken_over_and_its_old_owner_cannot_write(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    run_id = client.post("/v1/plans", json={"scenario": SELL, "runs": 0}).json()["id"]
    start = utcnow()
    assert runs.claim(factory, "dead", now=start) == run_id
    assert runs.claim(factory, "other", now=start + timedelta(seconds=5)) is None  # fresh
    later = start + runs.STALE + timedelta(seconds=1)
    assert runs.claim(factory, "alive", now=later) == run_id
    assert runs.heartbeat(factory, run_id, "dead") is False
    runs.execute(factory, run_id, "dead")  # the old owner's results are not stored
    assert client.get(f"/v1/plans/{run_id}").json()["status"] == "running"
    runs.execute(factory, run_id, "alive")
    done = client.get(f"/v1/plans/{run_id}").json()
    assert (done["status"], done["attempts"]) == ("succeeded", 2)


def test_a_run_abandoned_too_often_fails(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    run_id = client.post("/v1/plans", json={"scenario": SELL, "runs": 0}).json()["id"]
    now = utcnow()
    for i in range(runs.MAX_ATTEMPTS):
        assert runs.claim(factory, f"crash-{i}", now=now) == run_id
        now += runs.STALE + timedelta(seconds=1)
    assert runs.claim(factory, "last", now=now) is None
    failed = client.get(f"/v1/plans/{run_id}").json()
    assert failed["status"] == "failed" and "abandoned 3 times" in failed["error"]


def test_a_stopping_server_puts_its_run_back_in_the_queue(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    run_id = client.post("/v1/plans", json={"scenario": SELL, "runs": 0}).json()["id"]
    assert runs.claim(factory, "me") == run_id
    stopping = threading.Event()
    stopping.set()
    runs.execute(factory, run_id, "me", stopping)
    back = client.get(f"/v1/plans/{run_id}").json()
    assert (back["status"], back["attempts"]) == ("queued", 0)
    assert "server running it stopped" in back["message"]


def test_a_run_that_cannot_be_planned_any_more_fails_with_the_reason(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    # Checked when asked for, but read again when run (a database fleet may have changed).
    run_id = client.post("/v1/plans", json={"scenario": SELL, "runs": 0}).json()["id"]
    with factory() as s, s.begin():
        row = s.get(PlanRun, run_id)
        assert row is not None
        row.scenario = row.scenario.replace("site: site-1,", "site: site-9,")
    assert runs.claim(factory, "me") == run_id
    runs.execute(factory, run_id, "me")
    failed = client.get(f"/v1/plans/{run_id}").json()
    assert failed["status"] == "failed", failed
    assert failed["error"].startswith("scenario:12: deals[0].site: no site 'site-9'")
    assert failed["result"] is None and failed["finished_at"]


def test_tenants_may_not_plan(client: TestClient, factory: sessionmaker[Session]) -> None:
    client.post("/v1/tenants", json={"name": "lab", "display_name": "Lab"})
    make = token_maker(factory)
    tenant = {"Authorization": f"Bearer {make(Role.TENANT_ADMIN, 'lab')}"}
    refused = client.post("/v1/plans", json={"scenario": SELL}, headers=tenant)
    assert refused.status_code == 403 and "tenant-admin" in refused.json()["detail"]
    assert client.get("/v1/plans", headers=tenant).status_code == 403
    ops = {"Authorization": f"Bearer {make(Role.OPS)}"}
    assert client.post("/v1/plans", json={"scenario": SELL}, headers=ops).status_code == 202
