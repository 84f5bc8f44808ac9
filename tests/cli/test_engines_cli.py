"""`neocloud engines set|status|reconcile|manual|unset`, against a real server.

The fabric's Slurm has no commands here (`bin_dir` points nowhere), which is what an
unreachable engine looks like: the reconcile says so, exits 1, and the fabric reads stale;
tests/engines/slurm runs the same against real daemons.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from neocloud.client.http import Client
from tests.cli.runner import Cli, one_site_fleet, served

TOKEN = "nc_engines_cli_bootstrap"
cli = Cli(TOKEN)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(tmp_path_factory, TOKEN, NEOCLOUD_ENGINE_INTERVAL="0") as url:
        with Client(url, TOKEN) as client:
            client.apply_fleet(one_site_fleet("rho", "r", 2))
        yield url


def test_set_status_reconcile_manual_unset(server: str) -> None:
    code, out = cli(server, "engines", "status")
    assert code == 0 and "no fabric has an engine" in out

    code, out = cli(
        server, "engines", "set", "rho", "f01", "slurm",
        "-o", "cluster=rho", "-o", "bin_dir=/nonexistent", "-o", "timeout_s=5",
        "--user", "acme=alice", "--user", "acme=bob",
    )  # fmt: skip
    assert code == 0, out
    (row,) = cli.json(server, "engines", "status")
    assert row["engine"] == "slurm" and row["stale"] is True  # never reconciled yet
    assert row["options"] == {
        "cluster": "rho",
        "bin_dir": "/nonexistent",
        "timeout_s": 5.0,
        "users": {"acme": ["alice", "bob"]},
    }
    assert "reservations" in row["capabilities"]

    code, out = cli(server, "engines", "reconcile")
    assert code == 1, out
    assert "rho/f01 (slurm): not reconciled" in out and "not installed" in out
    one = cli.json(server, "engines", "status", "--site", "rho", "--fabric", "f01")
    assert one["failures"] == 1 and one["next_attempt_at"] is not None and one["stale"] is True

    code, out = cli(
        server, "engines", "manual", "rho", "f01", "reservation", "nc-x", "--note", "maint"
    )
    assert code == 0 and "managed by hand" in out
    one = cli.json(server, "engines", "status", "--site", "rho", "--fabric", "f01")
    assert [(m["kind"], m["name"], m["note"]) for m in one["marks"]] == [
        ("reservation", "nc-x", "maint")
    ]
    code, out = cli(server, "engines", "manual", "rho", "f01", "reservation", "nc-x", "--off")
    assert code == 0, out
    code, out = cli(server, "engines", "manual", "rho", "f01", "reservation", "nc-x", "--off")
    assert code == 2 and "not marked manual" in out

    code, out = cli(server, "engines", "unset", "rho", "f01")
    assert code == 0, out
    assert cli.json(server, "engines", "status") == []


def test_bad_settings_are_refused_naming_the_field(server: str) -> None:
    code, out = cli(server, "engines", "set", "rho", "f01", "slurm", "-o", "colour=blue")
    assert code == 2 and "colour" in out
    code, out = cli(server, "engines", "set", "rho", "f01", "pbs")
    assert code == 2 and "unknown engine 'pbs'" in out
    code, out = cli(server, "engines", "set", "rho", "nope", "slurm")
    assert code == 2 and "not found" in out
    code, out = cli(server, "engines", "status", "--site", "rho")
    assert code == 2 and "both --site and --fabric" in out
