"""/v1/engines on both databases, with a Slurm whose commands are missing (what an
unreachable cluster looks like): settings, staleness and backoff, the lease between
processes, the loop's due fabrics, marks, errors."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from neocloud.auth.principal import SYSTEM
from neocloud.core.timeutil import utcnow
from neocloud.db.engine import transaction
from neocloud.engines import loop, reconcile
from neocloud.engines.models import EngineFabric
from tests.contracts.world import build

ABSENT = {"engine": "slurm", "options": {"cluster": "east", "bin_dir": "/nonexistent"}}
PATH = "/v1/engines/fabrics/east/e01"


def gap(status: dict[str, Any]) -> timedelta:
    """How long the fabric waits after its last attempt."""
    wait = datetime.fromisoformat(status["next_attempt_at"])
    return wait - datetime.fromisoformat(status["last_attempt_at"])


def factory_of(c: TestClient) -> sessionmaker[Session]:
    f: sessionmaker[Session] = c.app.state.sessionmaker  # type: ignore[attr-defined]
    return f


def test_an_unreachable_engine_goes_stale_with_a_growing_backoff(client: TestClient) -> None:
    build(client)
    r = client.put(PATH, json=ABSENT)
    assert r.status_code == 200, r.text
    assert r.json()["stale"] is True and r.json()["source"] == "api"
    first = client.post("/v1/engines/reconcile", json={}).json()["items"]
    assert [(i["fabric"], i["ok"], i["stale"]) for i in first] == [("e01", False, True)]
    assert "not installed" in first[0]["error"]
    one = client.get(PATH).json()
    assert one["failures"] == 1 and one["last_success_at"] is None
    client.post("/v1/engines/reconcile", json={"site": "east", "fabric": "e01"})
    two = client.get(PATH).json()
    assert two["failures"] == 2
    assert gap(one) == timedelta(seconds=15) and gap(two) == timedelta(seconds=30)
    # the loop leaves a fabric alone until its backoff is over; the API does not wait
    assert loop.reconcile_due(factory_of(client)) == 0
    assert client.get(PATH).json()["failures"] == 2
    assert reconcile.backoff(1) == timedelta(seconds=15)
    assert reconcile.backoff(3) == timedelta(seconds=60)
    assert reconcile.backoff(40) == timedelta(minutes=10)
    assert client.get("/v1/contracts").status_code == 200  # neocloud keeps serving


def test_a_fabric_held_by_another_process_is_skipped(client: TestClient) -> None:
    build(client)
    assert client.put(PATH, json=ABSENT).status_code == 200
    with transaction(factory_of(client)) as s:
        s.execute(
            sa.update(EngineFabric).values(
                lease_owner="other", lease_until=utcnow() + timedelta(minutes=1)
            )
        )
    (item,) = client.post("/v1/engines/reconcile", json={}).json()["items"]
    assert item["ok"] is False and item["skipped"] == "another reconcile holds this fabric"
    assert client.get(PATH).json()["failures"] == 0  # nothing was tried
    with transaction(factory_of(client)) as s:  # a lease that ran out is free again
        s.execute(sa.update(EngineFabric).values(lease_until=utcnow() - timedelta(seconds=1)))
    (item,) = client.post("/v1/engines/reconcile", json={}).json()["items"]
    assert item["skipped"] is None and item["error"]
    with transaction(factory_of(client)) as s:
        assert s.scalar(sa.select(EngineFabric.lease_owner)) is None  # given back


def test_settings_marks_and_errors(client: TestClient) -> None:
    build(client)
    assert client.get(PATH).status_code == 404
    r = client.put(PATH, json={"engine": "slurm", "options": {"timeout_s": 0}})
    assert r.status_code == 422 and "timeout_s" in r.json()["detail"], r.text
    r = client.put(PATH, json={"engine": "lsf"})
    assert r.status_code == 422 and "unknown engine 'lsf'" in r.json()["detail"]
    r = client.put("/v1/engines/fabrics/east/zz", json=ABSENT)
    assert r.status_code == 404
    assert client.put(PATH, json=ABSENT).status_code == 200
    assert client.put(PATH, json=ABSENT).json()["options"] == ABSENT["options"]  # idempotent
    mark = f"{PATH}/manual/reservation/nc-x"
    assert client.put(mark, json={"note": "by hand"}).status_code == 200
    assert client.put(mark, json={"note": "by hand"}).status_code == 200
    assert [m["name"] for m in client.get(PATH).json()["marks"]] == ["nc-x"]
    assert client.delete(mark).status_code == 204
    assert client.delete(mark).status_code == 404
    r = client.post("/v1/engines/reconcile", json={"fabric": "e01"})
    assert r.status_code == 422 and "site" in r.json()["detail"]
    assert client.post("/v1/engines/reconcile", json={"site": "nope"}).status_code == 404
    r = client.post("/v1/engines/reconcile", json={"site": "east", "fabric": "e02"})
    assert r.status_code == 404  # no engine there
    listed = client.get("/v1/engines/fabrics").json()
    assert [i["fabric"] for i in listed["items"]] == ["e01"] and listed["next_cursor"] is None
    audit = client.get("/v1/audit-events", params={"action": "engine.set"}).json()["items"]
    assert len(audit) == 1  # setting the same again records nothing
    assert client.delete(PATH).status_code == 204
    assert client.get("/v1/engines/fabrics").json()["items"] == []


def test_the_loop_reconciles_nothing_when_no_fabric_has_an_engine(client: TestClient) -> None:
    build(client)
    assert loop.reconcile_due(factory_of(client)) == 0
    with factory_of(client)() as s:
        assert reconcile.reconcile(s, actor=SYSTEM).items == []
