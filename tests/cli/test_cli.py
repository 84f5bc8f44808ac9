"""The CLI is a client of a real running server (`neocloud serve`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neocloud.cli.main import app
from tests.fleet.test_fleet_apply import FLEET
from tests.servers import running

TOKEN = "nc_cli_test_bootstrap"
runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("serve")
    with running(
        ["serve", "--data-dir", str(data)],
        env={"NEOCLOUD_BOOTSTRAP_TOKEN": TOKEN, "NEOCLOUD_DB_URL": ""},
    ) as url:
        yield url


def cli(url: str, *args: str, token: str = TOKEN) -> tuple[int, str]:
    result = runner.invoke(app, ["--url", url, "--token", token, *args])
    return result.exit_code, result.output


def test_fleet_apply_prints_the_difference_and_is_idempotent(server: str, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    code, out = cli(server, "fleet", "apply", str(fleet), "--dry-run")
    assert (
        code == 0
        and "would apply" in out
        and "create 12 nodes (96 GPUs) in alpha/f01" in out.replace("\n", " ")
    )
    code, out = cli(server, "fleet", "apply", str(fleet))
    assert code == 0 and "applied" in out
    code, out = cli(server, "fleet", "apply", str(fleet), "--json")
    assert code == 0 and json.loads(out)["changed"] is False
    fleet.write_text(FLEET.replace("power_mw: 2\n", "power_mw: 4\n"))
    code, out = cli(server, "fleet", "apply", str(fleet))
    assert code == 0 and "update site alpha: power_mw: 2 -> 4" in out


def test_listings_have_json(server: str, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    cli(server, "fleet", "apply", str(fleet))
    code, out = cli(server, "sites", "list", "--json")
    assert code == 0 and {s["name"] for s in json.loads(out)} >= {"alpha", "beta"}
    code, out = cli(server, "nodes", "list", "--site", "beta", "--limit", "5", "--json")
    page = json.loads(out)
    assert code == 0 and len(page["items"]) == 5 and page["next_cursor"]
    code, out = cli(server, "nodes", "list", "--site", "beta", "--all", "--json")
    assert len(json.loads(out)["items"]) == 20
    code, out = cli(server, "accelerators", "list", "--json")
    assert "GB300" in {a["name"] for a in json.loads(out)}
    code, out = cli(server, "deliveries", "slip", "d1", "--to", "2027-12-01", "--json")
    assert code == 0 and json.loads(out)["expected_on"] == "2027-12-01"


def test_a_bad_file_exits_2_naming_the_line(server: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sites:\n  - name: z\n    location: x\n    power_mw: lots\n    pue: 1.1\n")
    code, out = cli(server, "fleet", "apply", str(bad))
    assert code == 2 and "line 4" in out and "power_mw" in out


def test_tokens_tenants_and_audit(server: str, tmp_path: Path) -> None:
    code, _ = cli(server, "tenants", "create", "acme", "--display-name", "Acme Corp")
    assert code == 0
    code, out = cli(
        server, "tokens", "create", "--role", "tenant-viewer", "--tenant", "acme", "--json"
    )
    assert code == 0
    viewer = json.loads(out)["token"]
    code, out = cli(server, "tenants", "list", "--json", token=viewer)
    assert code == 0 and [t["name"] for t in json.loads(out)] == ["acme"]
    code, out = cli(server, "sites", "list", token=viewer)
    assert code == 2 and "403" in out
    code, out = cli(server, "audit", "list", "--action", "tenant.create", "--json")
    assert code == 0 and json.loads(out)["items"][0]["object_id"] == "acme"


def test_server_side_token_bootstrap(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "tokens",
            "create",
            "--role",
            "admin",
            "--name",
            "first",
            "--data-dir",
            str(tmp_path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["token"].startswith("nc_")
    result = runner.invoke(
        app, ["tokens", "create", "--role", "tenant-admin", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2 and "needs a tenant" in result.output


def test_unreachable_server_is_a_clear_error() -> None:
    code, out = cli("http://127.0.0.1:9", "sites", "list")
    assert code == 1 and "cannot reach" in out


def test_wrong_token_is_refused(server: str) -> None:
    code, out = cli(server, "sites", "list", token="nc_wrong")
    assert code == 2 and "401" in out
