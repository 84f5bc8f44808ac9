"""POST /v1/limits on both databases: sites and custom chips from the live fleet, errors as
problem+json naming the field, and who may ask."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from neocloud.auth.roles import Role
from neocloud.planning import limits as core
from tests.conftest import token_maker

FLEET = """\
apiVersion: neocloud/v1
sites:
  - name: lab-1
    location: Memphis, TN
    power_mw: 2
    pue: 1.25
    state: live
    dates: {live: 2024-09-02}
    fabrics:
      - name: f01
        blocks:
          name: b{i}
          count: 2
          nodes:
            - {name: "h-{block}-n{i}", count: 4, accelerator: H100, gpus: 8, power_kw: 10.4}
      - name: f02
        blocks:
          name: r{i}
          nodes: {name: "g-{block}-t{i}", count: 18, accelerator: GB200, gpus: 4, power_kw: 6.6}
"""
TIERS = [
    {"name": "free", "users": 100_000, "weight": 0.2, "peak_concurrency": 0.05},
    {"name": "pro", "users": 10_000, "weight": 1},
]
PROBLEM = "application/problem+json"


def apply_fleet(client: TestClient) -> None:
    resp = client.post(
        "/v1/fleet/apply", content=FLEET, headers={"content-type": "application/yaml"}
    )
    assert resp.status_code == 200, resp.text


def problem(resp: Any, status: int = 422) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = resp.json()
    return body


def test_a_site_of_the_fleet_is_its_gpus_in_service(client: TestClient) -> None:
    apply_fleet(client)
    body = {"capacity": {"gpus": 1_000}, "tiers": TIERS, "add": {"capacity": {"site": "lab-1"}}}
    resp = client.post("/v1/limits", json=body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    added = out["after"]["fleet"]["blocks"][1:]
    assert [(b["label"], b["accelerator"], b["gpus"]) for b in added] == [
        ("lab-1 GB200", "GB200", 72),
        ("lab-1 H100", "H100", 64),
    ]
    assert [b["watts_per_gpu"] for b in added] == [1650.0, 1300.0]  # the nodes' own power
    assert out["change"]["added_gpus"] == 136
    it_kw = 72 * 1.65 + 64 * 1.3
    assert out["change"]["added_it_mw"] == pytest.approx(it_kw / 1000, abs=1e-3)
    assert out["change"]["added_facility_mw"] == pytest.approx(it_kw * 1.25 / 1000, abs=1e-3)
    assert all(t["multiplier"] > 1 for t in out["change"]["tiers"])


def test_the_built_in_chips_are_the_catalogs(client: TestClient) -> None:
    seeded = {a["name"]: a for a in client.get("/v1/accelerators").json()["items"]}
    for name, chip in core.BUILTIN_CHIPS.items():
        assert float(seeded[name]["tdp_w"]) == chip.tdp_w, name
        assert float(seeded[name]["bf16_tflops"]) == chip.bf16_tflops, name


def test_a_custom_chip_of_the_catalog_can_serve(client: TestClient) -> None:
    chip = {"name": "XPU-9", "vendor": "Example", "memory_gb": 96, "tdp_w": 700}
    assert client.post("/v1/accelerators", json={**chip, "bf16_tflops": 1978}).status_code == 201
    body = {"capacity": {"mw": 10, "accelerator": "XPU-9", "pue": 1.0}, "tiers": TIERS}
    out = client.post("/v1/limits", json=body).json()["before"]["fleet"]
    # Node power from the TDP as an HGX node's (10.2 kW / 8 / 700 W), twice an H100's BF16.
    assert out["gpus"] == 7_843
    h100 = client.post("/v1/limits", json={**body, "capacity": {"gpus": 7_843}}).json()
    ratio = (
        out["tokens_per_min"]["capacity"] / h100["before"]["fleet"]["tokens_per_min"]["capacity"]
    )
    assert ratio == pytest.approx(2.0, rel=1e-3)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"capacity": {"gpus": 0}}, ["capacity", "0", "gpus"]),
        ({"capacity": {"gpus": 8}, "headroom": 1.5}, ["headroom"]),
        ({"capacity": {"gpus": 8}, "tiers": [{"name": "a", "users": 5}]}, ["tiers"]),
        ({"capacity": {"gpus": 8, "accelerator": "Z9"}}, ["capacity", "0", "accelerator"]),
        ({"capacity": {"site": "nowhere"}}, ["capacity", "0", "site"]),
        ({"capacity": {"gpus": 8}, "add": {"capacity": [{"site": "nope"}]}}, None),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: TestClient, body: dict[str, Any], loc: list[str] | None
) -> None:
    out = problem(client.post("/v1/limits", json=body))
    locs = [[str(p) for p in e["loc"]] for e in out["errors"]]
    want = loc or ["add", "capacity", "0", "site"]
    assert any(found[-len(want) :] == want for found in locs), out
    assert ".".join(want[-2:]) in out["detail"] or want[-1] in out["detail"], out


def test_a_site_with_nothing_in_service_is_422(client: TestClient) -> None:
    site = {"name": "empty-1", "location": "Nowhere", "power_mw": "5", "pue": "1.3"}
    assert client.post("/v1/sites", json=site).status_code == 201
    out = problem(client.post("/v1/limits", json={"capacity": {"site": "empty-1"}}))
    assert "no GPUs in service" in out["detail"]


def test_a_tenant_may_ask_but_not_name_a_site(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    apply_fleet(client)
    client.post("/v1/tenants", json={"name": "lab", "display_name": "Lab"})
    token = token_maker(factory)(Role.TENANT_VIEWER, "lab")
    auth = {"Authorization": f"Bearer {token}"}
    asked = client.post("/v1/limits", json={"capacity": {"mw": 300}}, headers=auth)
    assert asked.status_code == 200, asked.text
    refused = client.post("/v1/limits", json={"capacity": {"site": "lab-1"}}, headers=auth)
    assert "tenant-viewer" in problem(refused, 403)["detail"]
