"""`neocloud contracts reclaim` and lent nodes in the placement listings, against a real
server: an idle node of a lendable contract is lent to spot, reclaimed, and preempted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from neocloud.client.http import Client
from tests.cli.runner import Cli, hour, one_site_fleet, served

TOKEN = "nc_lending_cli_bootstrap"
cli = Cli(TOKEN)


def contract(client: Client, name: str, tenant: str, **fields: object) -> None:
    client.post(
        "/v1/contracts",
        {"name": name, "tenant": tenant, "start": hour(), "end": hour(days=30), **fields},
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(tmp_path_factory, TOKEN, NEOCLOUD_PLACEMENT_INTERVAL="0") as url:
        with Client(url, TOKEN) as client:
            client.apply_fleet(one_site_fleet("reno", "r", 2))
            for tenant in ("acme", "globex"):
                client.post("/v1/tenants", {"name": tenant, "display_name": tenant.title()})
            h100 = {"accelerator": "H100", "site": "reno"}
            owner = {"type": "reserved", "gpus": 16, "unit": "node", "lendable": True}
            contract(client, "owner", "acme", **owner, **h100)
            contract(client, "cheap", "globex", type="spot", gpus=8, notice_minutes=0, **h100)
        yield url


def idle_events(path: Path, nodes: list[str]) -> Path:
    now = datetime.now(UTC)
    events = [
        {
            "specversion": "1.0",
            "id": f"{node}-{gpu}-{m}",
            "source": f"agent://{node}",
            "type": "neocloud.telemetry.v1",
            "time": (now - timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": {
                "node": node,
                "gpu": gpu,
                "utilization_pct": 0.0,
                "memory_used_mib": 0,
                "power_w": 80.0,
                "temperature_c": 30.0,
            },
        }
        for node in nodes
        for gpu in range(8)
        for m in (28, 15, 1)
    ]
    path.write_text("\n".join(json.dumps(e) for e in events))
    return path


def test_lend_reclaim_and_preempt_from_the_command_line(server: str, tmp_path: Path) -> None:
    code, out = cli(server, "placement", "reconcile")
    assert code == 0 and "owner" in out, out
    code, out = cli(server, "meter", "send", str(idle_events(tmp_path / "t.jsonl", ["r-b1-n1"])))
    assert code == 0, out
    code, out = cli(server, "placement", "reconcile")
    assert code == 0 and "lent by owner" in out, out
    code, out = cli(server, "contracts", "allocation", "owner")
    assert code == 0 and "lent" in out, out
    code, out = cli(server, "contracts", "reclaim", "owner", "--reason", "training run")
    assert code == 0 and "1 lent node(s) on their way back" in out and "r-b1-n1" in out, out
    code, out = cli(server, "placement", "reconcile")  # notice 0: the lease ends now
    assert code == 0 and "preempted" in out, out
    code, out = cli(server, "placement", "preemptions")
    assert code == 0 and "lent by owner" in out and "the owner reclaimed it" in out, out
    code, out = cli(server, "contracts", "reclaim", "owner")
    assert code == 2 and "nothing of it is lent" in out, out
