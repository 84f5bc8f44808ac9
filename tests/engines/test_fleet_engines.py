"""`engine:` on a fleet file's fabrics: set with the file, idempotent, line-numbered errors,
unset when the file drops it, and settings made through the API left alone."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

FLEET = """\
apiVersion: neocloud/v1
sites:
  - name: east
    location: Ashburn, VA
    power_mw: 2
    pue: 1.2
    fabrics:
      - name: f{{i}}
        count: 2
        {engine}
        blocks:
          name: b1
          nodes: {{name: "{{fabric}}-n{{i}}", count: 2, accelerator: H100, gpus: 8, power_kw: 10.2}}
      - name: g1
        blocks:
          name: b1
          nodes: {{name: "g1-n{{i}}", count: 2, accelerator: H100, gpus: 8, power_kw: 10.2}}
"""
YAML = {"Content-Type": "application/yaml"}


def apply(c: TestClient, engine: str) -> Any:
    return c.post("/v1/fleet/apply", content=FLEET.format(engine=engine), headers=YAML)


def engines(c: TestClient) -> dict[str, tuple[str, dict[str, Any], str]]:
    r = c.get("/v1/engines/fabrics")
    assert r.status_code == 200, r.text
    return {
        f"{i['site']}/{i['fabric']}": (i["engine"], i["options"], i["source"])
        for i in r.json()["items"]
    }


def test_a_fleet_file_sets_each_fabrics_engine_once(client: TestClient) -> None:
    spec = 'engine: {name: slurm, cluster: "c-{fabric}", conf: "/etc/slurm/{site}.conf", users: {acme: [alice]}}'
    r = apply(client, spec)
    assert r.status_code == 200, r.text
    made = [c for c in r.json()["changes"] if c["kind"] == "engine"]
    assert [(c["op"], c["name"]) for c in made] == [("create", "east/f1"), ("create", "east/f2")]
    assert r.json()["counts"]["engines_set"] == 2
    opts = {"cluster": "c-f2", "conf": "/etc/slurm/east.conf", "users": {"acme": ["alice"]}}
    assert engines(client)["east/f2"] == ("slurm", opts, "fleet")
    again = apply(client, spec)
    assert again.status_code == 200 and again.json()["changed"] is False, again.text

    # an engine set through the API on a fabric the file is silent about stays
    r = client.put("/v1/engines/fabrics/east/g1", json={"engine": "slurm"})
    assert r.status_code == 200, r.text
    r = apply(client, "engine: slurm")
    assert [(c["op"], c["name"]) for c in r.json()["changes"]] == [
        ("update", "east/f1"),
        ("update", "east/f2"),
    ]
    assert engines(client)["east/f1"] == ("slurm", {}, "fleet")
    r = apply(client, "")
    assert [(c["op"], c["name"]) for c in r.json()["changes"]] == [
        ("retire", "east/f1"),
        ("retire", "east/f2"),
    ]
    assert list(engines(client)) == ["east/g1"]


def test_a_bad_engine_setting_names_its_line(client: TestClient) -> None:
    r = apply(client, "engine: {name: slurm, colour: blue}")
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("line 10: ") and "colour" in r.json()["detail"]
    r = apply(client, "engine: pbs")
    assert r.status_code == 422 and "unknown engine 'pbs'" in r.json()["detail"], r.text
    r = apply(client, "engine: {cluster: x}")
    assert r.status_code == 422 and "needs 'name'" in r.json()["detail"], r.text
    assert engines(client) == {}
