"""`neocloud placement|nodes fail|nodes repair|contracts allocation`, against a real server."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest

from neocloud.client.http import Client
from tests.cli.runner import Cli, hour, served

TOKEN = "nc_placement_cli_bootstrap"
cli = Cli(TOKEN)
cli_json = cli.json
FLEET = textwrap.dedent(
    """\
    apiVersion: neocloud/v1
    sites:
      - name: gamma
        location: Dallas, TX
        power_mw: 2
        pue: 1.2
        spare_pct: 10
        state: live
        dates: {live: 2024-09-02}
        fabrics:
          - name: f01
            blocks:
              name: b{i}
              count: 2
              nodes: {name: "g-{block}-n{i}", count: 5, accelerator: H100, gpus: 8, power_kw: 10.2}
      - name: delta
        location: Austin, TX
        power_mw: 2
        pue: 1.2
        state: live
        dates: {live: 2024-09-02}
        fabrics:
          - name: d01
            blocks:
              name: c{i}
              nodes: {name: "d-{block}-n{i}", count: 4, accelerator: H100, gpus: 8, power_kw: 10.2}
    """
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(tmp_path_factory, TOKEN) as url:
        with Client(url, TOKEN) as client:
            client.apply_fleet(FLEET)
            client.post(
                "/v1/tenants", {"name": "acme", "display_name": "Acme AI", "kind": "customer"}
            )
            client.post(
                "/v1/contracts",
                {
                    "name": "acme-train",
                    "tenant": "acme",
                    "type": "reserved",
                    "accelerator": "H100",
                    "gpus": 32,
                    "unit": "node",
                    "site": "gamma",
                    "start": hour(),
                    "end": hour(days=30),
                },
            )
        yield url


def test_reconcile_allocation_fail_and_repair_from_the_command_line(server: str) -> None:
    code, out = cli(server, "placement", "reconcile")
    assert code == 0, out
    assert "gamma" in out and "acme-train" in out and "placed" in out and "spare" in out
    alloc = cli_json(server, "contracts", "allocation", "acme-train")
    assert alloc["usable_gpus"] == 32 and len(alloc["nodes"]) == 4
    assert len({n["block"] for n in alloc["nodes"]}) == 1
    code, out = cli(server, "contracts", "allocation", "acme-train")
    assert code == 0 and "contracted 32 GPUs" in out and alloc["nodes"][0]["name"] in out
    victim = alloc["nodes"][0]["name"]
    failed = cli_json(server, "nodes", "fail", victim, "--reason", "ECC storm")
    reasons = {(c["before"], c["after"], c["reason"]) for c in failed["site"]["changes"]}
    assert ("acme-train", None, "failed") in reasons and (
        "spare",
        "acme-train",
        "healed",
    ) in reasons
    code, out = cli(server, "nodes", "fail", victim)
    assert code != 0 and "already failed" in out
    assert cli_json(server, "placement", "degraded") == []
    avail = cli_json(server, "contracts", "availability", "acme-train")
    assert avail["contract"] == "acme-train" and len(avail["hours"]) == 24
    assert avail["hours"][-1]["contracted_gpus"] == 32
    code, out = cli(server, "nodes", "repair", victim)
    assert code == 0 and f"{victim}: available" in out
    code, out = cli(server, "nodes", "show", victim)
    assert "available" in out


def test_drain_prints_the_plan_then_moves_the_contract(server: str) -> None:
    code, out = cli(server, "sites", "drain", "gamma", "--to", "delta", "--dry-run")
    assert code == 0, out
    assert "1 contract(s) would move" in out and "acme-train" in out and "delta" in out
    assert cli_json(server, "sites", "show", "gamma")["state"] == "live"
    plan = cli_json(server, "sites", "drain", "gamma", "--to", "delta")
    assert [(s["contract"], s["moved"], s["to"]) for s in plan["steps"]] == [
        ("acme-train", True, "delta")
    ]
    assert cli_json(server, "sites", "show", "gamma")["state"] == "draining"
    code, out = cli(server, "sites", "drain", "gamma", "--to", "gamma")
    assert code != 0 and "into itself" in out
