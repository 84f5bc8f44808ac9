"""The agent against a real `neocloud serve`: samples stored once each; refusals that
waiting cannot fix end it with one line and keep the samples; with the API down it buffers,
and every buffered sample is delivered exactly once when the API comes up — in one run, and
after the agent was killed with SIGKILL and started again."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.agent.conftest import (
    Server,
    agent,
    agent_process,
    buffered,
    next_second,
    reports,
    serve,
    stored,
)
from tests.servers import free_port

FAKE = ["--backend", "fake", "--interval", "1"]


def wait_for(
    check: Callable[[], bool], what: str, log: Path | None = None, limit: float = 60
) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"no {what}:\n{log.read_text() if log else ''}"
        time.sleep(0.1)


def events_in(files: list[Path]) -> list[str]:
    return [e["id"] for f in files for e in json.loads(f.read_bytes())]


def test_the_agent_stores_every_gpu_of_every_round_once(server: Server, tmp_path: Path) -> None:
    node = server.nodes[0]
    args = [*FAKE, "--node", node, "--buffer-dir", str(tmp_path), "--count", "3", "--json"]
    code, out = agent(server.url, *args)
    assert code == 0, out
    got = reports(out)
    assert [r["status"] for r in got] == ["delivered"] * 3
    assert [(r["accepted"], r["duplicates"], r["rejected"]) for r in got] == [(8, 0, 0)] * 3
    rows = stored(server.data, node)
    assert len(rows) == 24 and sorted(g for _, g in rows) == sorted(list(range(8)) * 3)
    assert {i for i, _ in rows} == {f"{node}/{g}/{r['at']}" for r in got for g in range(8)}
    assert buffered(tmp_path) == []


def test_a_node_the_server_does_not_know_ends_the_agent_and_keeps_the_samples(
    server: Server, tmp_path: Path
) -> None:
    code, out = agent(
        server.url, *FAKE, "--node", "nope-9", "--buffer-dir", str(tmp_path), "--once"
    )
    assert code == 2 and "Traceback" not in out, out
    assert "does not know node 'nope-9'" in out and "8 samples kept" in out
    assert len(events_in(buffered(tmp_path))) == 8


def test_more_gpus_than_the_fleet_says_are_rejected_logged_and_not_retried(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = server.nodes[1]
    args = [*FAKE, "--fake-gpus", "10", "--node", node, "--buffer-dir", str(tmp_path)]
    code, out = agent(server.url, *args, "--once")
    assert code == 0, out
    assert "delivered 10 samples (8 new, 0 duplicates, 2 rejected)" in out
    assert f"rejected sample {node}/9/" in caplog.text
    assert f"data.gpu: node '{node}' has 8 GPUs" in caplog.text
    assert len(stored(server.data, node)) == 8 and buffered(tmp_path) == []


def test_a_bad_token_ends_the_agent_in_one_line(server: Server, tmp_path: Path) -> None:
    args = [*FAKE, "--node", server.nodes[6], "--buffer-dir", str(tmp_path), "--once"]
    code, out = agent(server.url, *args, token="nc_not_a_token")
    assert code == 2 and "refused the samples: 401" in out and "Traceback" not in out, out
    assert len(events_in(buffered(tmp_path))) == 8


def test_samples_buffered_while_the_api_is_down_are_delivered_once_when_it_is_up(
    server: Server, tmp_path: Path
) -> None:
    buf, log, node = tmp_path / "buffer", tmp_path / "agent.log", server.nodes[2]
    port = free_port()
    args = [*FAKE, "--node", node, "--buffer-dir", str(buf), "--json"]
    proc = agent_process(f"http://127.0.0.1:{port}", log, *args)
    try:
        wait_for(lambda: len(buffered(buf)) >= 2, "buffered batches", log)
        # The API comes up where the agent has been failing to reach it (a second server
        # process over the module server's database, which holds the fleet).
        with serve(server.data, port=port):
            wait_for(lambda: '"delivered"' in log.read_text(), "delivery", log)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    got = reports(log.read_text())
    sampled = sum(r["samples"] for r in got if r["status"] in ("delivered", "buffered"))
    resent = sum(r["samples"] for r in got if r["status"] == "resent")
    assert resent == sum(r["samples"] for r in got if r["status"] == "buffered") >= 16
    rows = stored(server.data, node)
    assert len(rows) == sampled == len({i for i, _ in rows})
    assert buffered(buf) == []


def test_a_killed_agent_loses_nothing_it_buffered(server: Server, tmp_path: Path) -> None:
    buf, log, node = tmp_path / "buffer", tmp_path / "agent.log", server.nodes[3]
    args = [*FAKE, "--node", node, "--buffer-dir", str(buf)]
    proc = agent_process(f"http://127.0.0.1:{free_port()}", log, *args)
    try:
        wait_for(lambda: len(buffered(buf)) >= 2, "buffered batches", log)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    next_second()
    # What a kill in the middle of the next write would have left: a cut temporary file.
    (buf / "0000000000009999-8.json.tmp").write_bytes(b'[{"specversion":"1.0","id":"x')
    kept = events_in(buffered(buf))
    assert len(kept) >= 16
    code, out = agent(server.url, *args, "--once", "--json")
    assert code == 0, out
    got = reports(out)
    assert [r["status"] for r in got] == ["resent", "delivered"], out
    assert got[0]["samples"] == len(kept)
    rows = stored(server.data, node)
    assert {i for i, _ in rows} == set(kept) | {f"{node}/{g}/{got[1]['at']}" for g in range(8)}
    assert len(rows) == len(kept) + 8
    assert list(buf.glob("*.json*")) == []
