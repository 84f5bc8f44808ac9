"""Bad input to `neocloud agent` gets a clear error and exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from neocloud.cli import common
from neocloud.metering.agent.buffer import DiskBuffer
from tests.agent.conftest import agent

DOWN = "http://127.0.0.1:9"


def test_bad_options_are_refused() -> None:
    for args in (
        ["--backend", "cuda"],
        ["--interval", "0.5"],
        ["--sink", "kafka"],
        ["--count", "0"],
    ):
        code, out = agent(DOWN, "--backend", "fake", *args, "--once")
        assert code == 2 and "Traceback" not in out, out
        assert "Invalid value" in out, out


def test_the_api_sink_needs_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEOCLOUD_TOKEN", raising=False)
    monkeypatch.setattr(common, "CONFIG_PATH", tmp_path / "none.toml")
    code, out = agent(DOWN, "--backend", "fake", "--buffer-dir", str(tmp_path), "--once", token="")
    assert code == 2 and "needs an operator's token" in out, out


def test_one_agent_per_buffer_directory(tmp_path: Path) -> None:
    with DiskBuffer(tmp_path, 1 << 20):
        code, out = agent(DOWN, "--backend", "fake", "--buffer-dir", str(tmp_path), "--once")
    assert code == 2 and "another agent is using the buffer directory" in out, out


def test_a_buffer_directory_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    code, out = agent(
        DOWN, "--backend", "fake", "--buffer-dir", str(tmp_path / "file" / "x"), "--once"
    )
    assert code == 2 and "buffer directory" in out and "Traceback" not in out, out


def test_an_api_url_that_is_not_http(tmp_path: Path) -> None:
    code, out = agent("api:8080", "--backend", "fake", "--buffer-dir", str(tmp_path), "--once")
    assert code == 2 and "is not an http:// or https:// URL" in out, out
