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

__all__ = ["Cli", "hour", "one_site_fleet", "served"]

_runner = CliRunner()


def one_site_fleet(site: str, prefix: str, nodes: int, fabric: str = "f01") -> str:
    """A fleet file of one live site with one block of `nodes` 8-GPU H100 nodes named
    `{prefix}-b1-n1` …, for the end-to-end tests' servers."""
    return f"""\
apiVersion: neocloud/v1
sites:
  - name: {site}
    location: Reno, NV
    power_mw: 2
    pue: 1.2
    state: live
    dates: {{live: 2024-09-02}}
    fabrics:
      - name: {fabric}
        blocks:
          name: b{{i}}
          nodes: {{name: "{prefix}-{{block}}-n{{i}}", count: {nodes}, accelerator: H100, gpus: 8, power_kw: 10.2}}
"""


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
