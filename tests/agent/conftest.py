"""The agent tests' world: a real `neocloud serve` on SQLite with a small fleet (eight nodes
of eight GPUs), the agent run as a user runs it (in this process, or as its own process to
be killed), and the telemetry rows it stored, read from the server's database."""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import tests.servers
from neocloud.cli.main import app
from neocloud.client.http import Client
from neocloud.db.engine import make_engine, sqlite_url
from tests.cli.runner import one_site_fleet
from tests.servers import NEOCLOUD, running

TOKEN = "nc_agent_test_bootstrap"
FLEET = one_site_fleet("ag", "ag", 8)
_runner = CliRunner()


@dataclass(frozen=True)
class Server:
    url: str
    data: Path
    nodes: list[str]


@contextmanager
def serve(data: Path, port: int | None = None) -> Iterator[Server]:
    """`neocloud serve` on SQLite in `data` (bootstrapped with TOKEN, the fleet applied),
    on `port` if given (to bring up the API an agent has been failing to reach)."""
    env = {"NEOCLOUD_BOOTSTRAP_TOKEN": TOKEN, "NEOCLOUD_DB_URL": ""}
    with pytest.MonkeyPatch.context() as patch:
        if port is not None:
            patch.setattr(tests.servers, "free_port", lambda: port)
        with running(["serve", "--data-dir", str(data)], env=env) as url:
            patch.undo()
            with Client(url, TOKEN) as client:
                client.apply_fleet(FLEET)
                nodes = sorted(n["name"] for n in client.pages("/v1/nodes"))
            yield Server(url, data, nodes)


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("serve")) as s:
        yield s


def stored(data: Path, node: str) -> list[tuple[str, int]]:
    """The (event id, GPU) of every telemetry sample stored for `node`."""
    engine = make_engine(sqlite_url(data))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT event_id, gpu_index FROM telemetry_samples WHERE source = :s"
                    " ORDER BY event_id"
                ),
                {"s": f"agent://{node}"},
            ).all()
    finally:
        engine.dispose()
    return [(str(i), int(g)) for i, g in rows]


def agent(url: str, *args: str, token: str = TOKEN) -> tuple[int, str]:
    """`neocloud --url URL --token T agent ARGS` in this process: exit code and output."""
    result = _runner.invoke(
        app, ["--url", url, "--token", token, "agent", *args], env={"COLUMNS": "250"}
    )
    return result.exit_code, result.output


def reports(output: str) -> list[dict[str, Any]]:
    """The JSON lines of `agent --json` (log lines and the start line are not JSON)."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def agent_process(url: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """The agent as its own process (to be stopped or killed), its output in `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [NEOCLOUD, "--url", url, "--token", TOKEN, "agent", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def next_second() -> None:
    """Wait for the wall clock's next second: a round's events are named by their second,
    so an agent restarted within the second of the last round would repeat its ids (and
    the database would rightly count that round once)."""
    now = time.time()
    time.sleep(math.floor(now) + 1 - now + 0.01)


def buffered(directory: Path) -> list[Path]:
    """The batch files waiting in a buffer directory, oldest first."""
    return sorted(directory.glob("*.json"))
