"""Running the CLI in-process against a test server, as a user would from a shell."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner

from neocloud.cli.main import app
from tests.placement.api import this_hour as hour
from tests.servers import running

__all__ = ["Cli", "hour", "served"]

_runner = CliRunner()


@dataclass(frozen=True)
class Cli:
    """`neocloud --url URL --token TOKEN ...`, in this process."""

    token: str

    def __call__(self, url: str, *args: str) -> tuple[int, str]:
        result = _runner.invoke(
            app, ["--url", url, "--token", self.token, *args], env={"COLUMNS": "250"}
        )
        return result.exit_code, result.output

    def json(self, url: str, *args: str) -> Any:
        """The command's `--json` output; it must succeed."""
        code, out = self(url, *args, "--json")
        assert code == 0, out
        return json.loads(out)


@contextmanager
def served(tmp_path_factory: pytest.TempPathFactory, token: str, **env: str) -> Iterator[str]:
    """A real `neocloud serve` on a fresh SQLite database, bootstrapped with `token`;
    yields its URL."""
    data = tmp_path_factory.mktemp("serve")
    with running(
        ["serve", "--data-dir", str(data)],
        env={"NEOCLOUD_BOOTSTRAP_TOKEN": token, "NEOCLOUD_DB_URL": "", **env},
    ) as url:
        yield url
