"""A small fleet and its tenants, built through the API, for the contract and capacity tests.

- `east`: live, H100 8-GPU nodes in two fabrics (e01, e02) of 64 GPUs each: 128 GPUs, 2 MW.
- `west`: live, 32 H100 (fabric h01), two GB200 NVL72 blocks of 18 trays x 4 GPUs (fabric
  nvl, 144 GPUs), and a scheduled delivery of 64 H100 into fabric h02 on DELIVERY_DATE.
- `north`: planned, live from NORTH_LIVE, 32 H100.
- Tenants: `ops` (the operator's own team), customers `acme` and `globex`.

Every term lies after "now" unless a test says otherwise, so the calendar is deterministic.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

PROBLEM_JSON = "application/problem+json"
DELIVERY = "west-h100-2027"
DELIVERY_DATE = "2027-07-01"
NORTH_LIVE = "2028-01-01"
INTERNAL, ACME, GLOBEX = "ops", "acme", "globex"

FLEET = f"""\
apiVersion: neocloud/v1
sites:
  - name: east
    location: Ashburn, VA
    power_mw: 2
    pue: 1.2
    state: live
    dates: {{live: 2024-01-01}}
    fabrics:
      - name: e{{i:02d}}
        count: 2
        blocks:
          name: b{{i}}
          count: 2
          nodes: {{name: "east-{{fabric}}-{{block}}-n{{i}}", count: 4, accelerator: H100, gpus: 8, power_kw: 10.2}}
  - name: west
    location: Phoenix, AZ
    power_mw: 3
    pue: 1.2
    state: live
    dates: {{live: 2024-01-01}}
    fabrics:
      - name: h01
        blocks:
          name: b1
          nodes: {{name: "west-h01-n{{i}}", count: 4, accelerator: H100, gpus: 8, power_kw: 10.2}}
      - name: nvl
        blocks:
          name: r{{i}}
          count: 2
          nodes: {{name: "west-{{block}}-t{{i:02d}}", count: 18, accelerator: GB200, gpus: 4, power_kw: 6.6}}
  - name: north
    location: Lulea, SE
    power_mw: 1
    pue: 1.1
    state: planned
    dates: {{planned: 2026-01-01, live: {NORTH_LIVE}}}
    fabrics:
      - name: n01
        blocks:
          name: b1
          nodes: {{name: "north-n{{i}}", count: 4, accelerator: H100, gpus: 8, power_kw: 10.2}}
deliveries:
  - {{name: {DELIVERY}, site: west, fabric: h02, accelerator: H100, nodes: 8, gpus_per_node: 8,
     power_kw_per_node: 10.2, expected_on: {DELIVERY_DATE}}}
"""


def build(c: TestClient) -> None:
    """Apply the fleet file and create the three tenants."""
    r = c.post("/v1/fleet/apply", content=FLEET, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 200 and r.json()["applied"] is True, r.text
    for name, kind in ((INTERNAL, "internal"), (ACME, "customer"), (GLOBEX, "customer")):
        r = c.post("/v1/tenants", json={"name": name, "display_name": name.title(), "kind": kind})
        assert r.status_code == 201, r.text


def t(day: str, hour: int = 0) -> str:
    """An instant on the hour, as the API takes it: t("2027-01-01") -> 2027-01-01T00:00:00Z."""
    return f"{day}T{hour:02d}:00:00Z"


def book(c: TestClient, **fields: Any) -> dict[str, Any]:
    """Book a contract and return it; the booking must succeed."""
    r = c.post("/v1/contracts", json=fields)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def reserved(
    c: TestClient, name: str, gpus: int, start: str, end: str, **extra: Any
) -> dict[str, Any]:
    """A reserved H100 contract for acme (other fields may be overridden)."""
    fields: dict[str, Any] = {
        "name": name,
        "tenant": ACME,
        "type": "reserved",
        "accelerator": "H100",
        "gpus": gpus,
        "start": t(start),
        "end": t(end),
    }
    fields.update(extra)
    return book(c, **fields)


def quote(c: TestClient, **fields: Any) -> dict[str, Any]:
    r = c.post("/v1/quotes", json=fields)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def problem(r: Response, status: int, *words: str) -> dict[str, Any]:
    """Assert a problem+json answer with `status` whose detail mentions every word."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    assert r.headers["content-type"].startswith(PROBLEM_JSON), r.headers["content-type"]
    body: dict[str, Any] = r.json()
    for word in words:
        assert word in body["detail"], f"{word!r} not in {body['detail']!r}"
    return body


def held(contract: dict[str, Any]) -> dict[str, int]:
    """GPUs a contract holds per site (summed over its claims at their largest)."""
    out: dict[str, int] = {}
    for claim in contract["claims"]:
        out[claim["site"]] = out.get(claim["site"], 0) + claim["gpus"]
    return out


def get(c: TestClient, name: str) -> dict[str, Any]:
    r = c.get(f"/v1/contracts/{name}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def ledger(c: TestClient) -> list[tuple[str, str, int, list[tuple[str, str, int, str, str]]]]:
    """Every contract with its state, revision and claims: to show that nothing was written."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = c.get("/v1/contracts", params=params).json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return [
        (
            x["name"],
            x["state"],
            x["revision"],
            [(k["site"], k["fabric"], k["gpus"], k["start"], k["end"]) for k in x["claims"]],
        )
        for x in items
    ]


def history(c: TestClient, name: str) -> list[dict[str, Any]]:
    r = c.get(f"/v1/contracts/{name}/history")
    assert r.status_code == 200, r.text
    body: list[dict[str, Any]] = r.json()
    return body


def capacity(c: TestClient, start: str, end: str, **params: Any) -> dict[str, Any]:
    r = c.get("/v1/capacity", params={"start": start, "end": end, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def pool_bucket(report: dict[str, Any], site: str, fabric: str, index: int = 0) -> dict[str, Any]:
    """One bucket of one pool of a capacity report."""
    for p in report["pools"]:
        if p["site"] == site and p["fabric"] == fabric:
            bucket: dict[str, Any] = p["series"][index]
            return bucket
    raise AssertionError(f"no pool {site}/{fabric} in {[p['fabric'] for p in report['pools']]}")


def free_at(c: TestClient, site: str, fabric: str, day: str, hour: int = 0) -> dict[str, Any]:
    """Supply, committed and free of one pool during the hour that starts at day/hour."""
    start = t(day, hour)
    end = t(day, hour + 1) if hour < 23 else None
    assert end is not None
    return pool_bucket(capacity(c, start, end, step="hour", site=site), site, fabric)
