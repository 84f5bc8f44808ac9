"""`neocloud meter send|usage|publish|consume`, against a real server and the real NATS."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from neocloud.cli.main import app
from neocloud.client.http import Client
from neocloud.metering import consumer
from tests.cli.runner import one_site_fleet
from tests.metering.helpers import iso, usage
from tests.servers import running

TOKEN = "nc_meter_cli_bootstrap"
runner = CliRunner()
FLEET = one_site_fleet("mu", "mu", 4)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, list[str]]]:
    data = tmp_path_factory.mktemp("serve")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with running(
        ["serve", "--data-dir", str(data)],
        env={"NEOCLOUD_BOOTSTRAP_TOKEN": TOKEN, "NEOCLOUD_DB_URL": ""},
    ) as url:
        with Client(url, TOKEN) as client:
            client.apply_fleet(FLEET)
            client.post("/v1/tenants", {"name": "acme", "display_name": "Acme", "kind": "customer"})
            client.post(
                "/v1/contracts",
                {
                    "name": "acme-cli",
                    "tenant": "acme",
                    "type": "reserved",
                    "accelerator": "H100",
                    "gpus": 16,
                    "unit": "node",
                    "start": iso(hour),
                    "end": iso(hour + timedelta(days=30)),
                },
            )
            client.post("/v1/placement/reconcile", {})
            nodes = [n["name"] for n in client.get("/v1/contracts/acme-cli/allocation")["nodes"]]
        yield url, data, nodes


def cli(url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--url", url, "--token", TOKEN, *args], env={"COLUMNS": "250"})
    return result.exit_code, result.output


def events(nodes: list[str], tag: str, n: int) -> list[dict[str, Any]]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    return [
        usage("acme-cli", nodes[i % 2], 8, start, start + timedelta(seconds=10), id=f"{tag}-{i}")
        for i in range(n)
    ]


def test_send_then_read_the_ledgers_from_the_command_line(
    server: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    url, _, nodes = server
    file = tmp_path / "events.jsonl"
    good = events(nodes, "send", 5)
    bad = {**good[0], "id": "bad", "data": {**good[0]["data"], "gpus": 99}}
    file.write_text("\n".join(json.dumps(e) for e in [*good, good[0], bad]) + "\n")
    code, out = cli(url, "meter", "send", str(file), "--json")
    assert code == 0, out
    sent = json.loads(out)
    assert (sent["accepted"], sent["duplicates"], len(sent["rejected"])) == (5, 1, 1)
    assert "data.gpus: 99 is more than" in sent["rejected"][0]["reason"]
    code, out = cli(url, "meter", "send", str(file))
    assert code == 0 and "0 accepted, 6 duplicates, 1 rejected" in out, out
    code, out = cli(url, "meter", "usage", "--contract", "acme-cli", "--step", "day", "--json")
    assert code == 0, out
    measured = sum(i["measured_gpu_seconds"] for i in json.loads(out)["items"])
    assert measured >= 5 * 80
    code, out = cli(url, "meter", "usage", "--contract", "acme-cli")
    assert code == 0 and "acme-cli" in out
    start = good[0]["data"]["start"]
    args = ["--reason", "maintenance", "--start", start, "--end", good[0]["data"]["end"]]
    code, out = cli(url, "meter", "exclude", "acme-cli", *args, "--node", nodes[0])
    assert code == 0 and "excluded 240 GPU-seconds of 3 stored interval(s)" in out, out
    code, out = cli(url, "meter", "exclude", "nope", *args)
    assert code == 2 and "not found" in out


def test_publish_and_consume_from_the_command_line(
    server: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    url, data, nodes = server
    tag = uuid.uuid4().hex[:8]
    stream, subject = f"CLI_{tag}", f"cli.{tag}.usage"
    file = tmp_path / "events.json"
    file.write_text(json.dumps(events(nodes, f"bus-{tag}", 30)))
    try:
        bus = ["--stream", stream, "--subject", subject]
        code, out = cli(url, "meter", "publish", str(file), *bus, "--per-message", "7")
        assert code == 0 and json.loads(out) == {"events": 30, "messages": 5}, out
        code, out = cli(url, "meter", "consume", "--data-dir", str(data), *bus, "--until-idle", "1")
        assert code == 0, out
        summary = json.loads(out.strip().splitlines()[-1])
        assert (summary["accepted"], summary["duplicates"], summary["rejected"]) == (30, 0, 0)
    finally:
        asyncio.run(consumer.delete_stream(stream))


def test_read_close_and_rebuild_the_rollups_from_the_command_line(
    server: tuple[str, Path, list[str]],
) -> None:
    url, _, nodes = server
    with Client(url, TOKEN) as client:
        client.post("/v1/usage/events", events(nodes, f"roll-{uuid.uuid4().hex[:6]}", 3))
    code, out = cli(url, "meter", "rollups", "--contract", "acme-cli", "--json")
    assert code == 0, out
    items = json.loads(out)["items"]
    assert items and {i["site"] for i in items} == {"mu"}
    assert sum(i["measured_gpu_seconds"] for i in items) >= 3 * 80
    code, out = cli(url, "meter", "rollups", "--contract", "acme-cli", "--step", "day", "--json")
    assert code == 0, out
    days = json.loads(out)["items"]
    assert sum(d["measured_gpu_seconds"] for d in days) == sum(
        i["measured_gpu_seconds"] for i in items
    )
    code, out = cli(url, "meter", "rollups", "--contract", "acme-cli", "--step", "day")
    assert code == 0 and "mu" in out, out
    code, out = cli(url, "meter", "close")
    assert code == 0 and out.startswith("closed "), out
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    span = ["--start", iso(hour - timedelta(hours=1)), "--end", iso(hour + timedelta(hours=1))]
    code, out = cli(url, "meter", "rebuild", *span, "--json")
    assert code == 0, out
    assert json.loads(out)["hours_closed"] == 1
    code, again = cli(url, "meter", "rollups", "--contract", "acme-cli", "--json")
    usage_of = [(i["start"], i["measured_gpu_seconds"], i["billable_gpu_seconds"]) for i in items]
    assert [
        (i["start"], i["measured_gpu_seconds"], i["billable_gpu_seconds"])
        for i in json.loads(again)["items"]
    ] == usage_of
    code, out = cli(url, "meter", "rebuild", "--start", "2026-01-01T00:30:00Z", "--end", iso(hour))
    assert code == 2 and "whole hour" in out, out
