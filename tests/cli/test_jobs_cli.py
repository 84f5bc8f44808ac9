"""`neocloud jobs ...` against a real server: submit, schedule, list, show, finish, cancel."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from neocloud.client.http import Client
from tests.cli.runner import Cli, hour, one_site_fleet, served

TOKEN = "nc_jobs_cli_bootstrap"
cli = Cli(TOKEN)
cli_json = cli.json
FLEET = one_site_fleet("kappa", "k", 2, fabric="k01")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(tmp_path_factory, TOKEN, NEOCLOUD_JOB_POLICY="fifo+best-fit") as url:
        with Client(url, TOKEN) as client:
            client.apply_fleet(FLEET)
            client.post("/v1/tenants", {"name": "acme", "display_name": "Acme AI"})
            client.post(
                "/v1/contracts",
                {
                    "name": "acme-od",
                    "tenant": "acme",
                    "type": "on-demand",
                    "site": "kappa",
                    "start": hour(),
                    "end": hour(days=30),
                },
            )
        yield url


def test_submit_schedule_finish_and_cancel_from_the_command_line(server: str) -> None:
    job = cli_json(
        server, "jobs", "submit", "--contract", "acme-od", "--gpus", "8", "--name", "train"
    )
    assert job["state"] == "queued" and job["pool"] == "on-demand" and job["site"] == "kappa"
    code, out = cli(
        server,
        "jobs",
        "submit",
        "--contract",
        "acme-od",
        "--gpu-milli",
        "250",
        "--name",
        "notebook",
    )
    assert code == 0 and "notebook" in out and "0.25" in out
    code, out = cli(server, "jobs", "schedule")
    assert code == 0 and "fifo+best-fit: 2 started" in out and "train" in out
    listed = cli_json(server, "jobs", "list", "--state", "running")
    assert {j["name"] for j in listed["items"]} == {"train", "notebook"}
    code, out = cli(server, "jobs", "show", "train")
    assert code == 0 and "started" in out and "k-b1-n" in out
    assert cli_json(server, "jobs", "finish", "train")["state"] == "finished"
    code, out = cli(server, "jobs", "finish", "train")
    assert code == 2 and "only a running job" in out
    done = cli_json(server, "jobs", "cancel", "notebook", "--reason", "done for today")
    assert done["state"] == "cancelled" and done["reason"] == "done for today"
    code, out = cli(server, "jobs", "submit", "--contract", "nope", "--gpus", "1")
    assert code == 2 and "unknown contract" in out
    shown = cli_json(server, "jobs", "show", "train")
    assert [e["kind"] for e in shown["events"]] == ["submitted", "started", "finished"]
