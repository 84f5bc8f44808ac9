"""`neocloud meter export`, against a real server: files a user can open."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from neocloud.cli.main import app
from neocloud.client.http import Client
from neocloud.metering.export import NAMES
from tests.cli.runner import one_site_fleet, served
from tests.metering.helpers import iso, usage

TOKEN = "nc_export_cli_bootstrap"
FLEET = one_site_fleet("xu", "xu", 2)
runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server holding 2 x 80 s of 8 GPUs of acme's; yields its URL and the usage's month."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with served(tmp_path_factory, TOKEN) as url, Client(url, TOKEN) as client:
        client.apply_fleet(FLEET)
        client.post("/v1/tenants", {"name": "acme", "display_name": "Acme", "kind": "customer"})
        contract: dict[str, object] = {"name": "acme-x", "tenant": "acme", "type": "reserved"}
        contract |= {"accelerator": "H100", "gpus": 16, "unit": "node", "start": iso(hour)}
        client.post("/v1/contracts", {**contract, "end": iso(hour + timedelta(days=30))})
        client.post("/v1/placement/reconcile", {})
        nodes = [n["name"] for n in client.get("/v1/contracts/acme-x/allocation")["nodes"]]
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        events = [usage("acme-x", n, 8, start, start + timedelta(seconds=80)) for n in nodes]
        assert client.post("/v1/usage/events", events)["accepted"] == 2
        yield url, f"{start:%Y-%m}"


def cli(url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--url", url, "--token", TOKEN, "meter", "export", *args])
    return result.exit_code, result.stdout, result.stderr


def test_export_writes_files_a_user_can_open(
    server: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, month = server
    target = tmp_path / "november.parquet"
    code, out, err = cli(url, "--period", month, "--format", "parquet", "-o", str(target))
    assert code == 0, err
    assert f"wrote {target}" in out
    table = pq.read_table(target)
    assert tuple(table.column_names) == NAMES
    assert sum(table.column("x_BillableGpuSeconds").to_pylist()) == 2 * 640
    assert set(table.column("BillingAccountId").to_pylist()) == {"acme"}

    # Default name: the server's, in the working directory.
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(url, "--period", month, "--tenant", "acme", "--granularity", "day")
    assert code == 0, err
    with (tmp_path / f"usage-acme-{month}.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert sum(int(r["x_MeasuredGpuSeconds"]) for r in rows) == 2 * 640
    assert {r["ChargePeriodEnd"][11:] for r in rows} == {"00:00:00Z"}

    # '-': CSV on stdout.
    code, out, err = cli(url, "--period", month, "-o", "-")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["ResourceType"] for r in rows} == {"GPU node"}
    assert sum(int(r["x_BillableGpuSeconds"]) for r in rows) == 2 * 640


def test_a_refused_export_leaves_no_file(server: tuple[str, str], tmp_path: Path) -> None:
    url, month = server
    target = tmp_path / "x.csv"
    code, _, err = cli(url, "--period", month, "--tenant", "nope", "-o", str(target))
    assert code == 2 and "404: tenant 'nope' not found" in err
    code, _, err = cli(url, "--period", "2026-13", "-o", str(target))
    assert code == 2 and "period" in err
    code, _, err = cli(url, "--format", "parquet", "-o", "-")
    assert code == 2 and "parquet is binary" in err
    assert list(tmp_path.iterdir()) == []
