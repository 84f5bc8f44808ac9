"""Running the CLI in-process against a test server, as a user would from a shell."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from typer.testing import CliRunner

from neocloud.cli.main import app

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
