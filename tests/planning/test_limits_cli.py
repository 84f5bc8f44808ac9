"""`neocloud limits`: computed here from a file or flags, or asked of the API when it names
a site; errors are one line and exit 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neocloud.cli import common
from neocloud.cli.main import app
from neocloud.planning import limits as core
from neocloud.planning.limits_schemas import LimitsRequest, to_question
from tests.planning.test_limits_api import FLEET
from tests.servers import running

TOKEN = "nc_limits_cli_token"
runner = CliRunner()
STORY = """\
# A lab serving on 40,000 H100 buys a 300 MW site.
capacity:
  - {accelerator: H100, gpus: 40000}
add:
  capacity:
    - {mw: 300, pue: 1.2}
"""


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.console, "width", 200)


def cli(*args: str, url: str = "http://127.0.0.1:9") -> tuple[int, str]:
    result = runner.invoke(app, ["--url", url, "--token", TOKEN, "limits", *args])
    return result.exit_code, result.output


def test_a_file_and_flags_answer_alike(tmp_path: Path) -> None:
    story = tmp_path / "story.yaml"
    story.write_text(STORY)
    code, out = cli(str(story), "--json")
    assert code == 0, out
    from_file = json.loads(out)
    code, out = cli("--gpus", "40000", "--add-mw", "300", "--json")
    assert code == 0, out
    assert json.loads(out) == from_file
    want = core.usage_limits(
        to_question(
            LimitsRequest.model_validate(
                {"capacity": {"gpus": 40_000}, "add": {"capacity": {"mw": 300}}}
            )
        )
    )
    assert from_file == json.loads(json.dumps(want))
    assert from_file["change"]["added_gpus"] == 196_078


def test_the_table_shows_each_tier_before_and_after() -> None:
    code, out = cli("--gpus", "40000", "--add-mw", "300", "--to-tier", "pro")
    assert code == 0, out
    assert "today: 40,000 GPUs" in out and "with the new block: 236,078 GPUs" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert {"free", "pro", "max", "enterprise"} <= set(rows)
    assert "1.00x" in rows["free"] and "1.00x" not in rows["pro"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give a limits file with capacity:, or --gpus, --mw or --site"),
        (("--gpus", "0"), "capacity.0.gpus"),
        (("--gpus", "8", "--add-gpus", "8", "--to-tier", "gold"), "add.tiers.0: no tier"),
        (("--pue", "1.3"), "--accelerator and --pue go with"),
        (("no-such-file.yaml",), "cannot read no-such-file.yaml"),
    ],
)
def test_errors_are_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    code, out = cli(*args)
    assert code == 2, out
    assert out.startswith("error: ") and message in out.replace("\n", " ")


def test_a_files_error_names_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        STORY + "tiers:\n  - {name: pro, users: 10, weight: 1}\n"
        "  - {name: max, users: 10, traffic_share: 1}\n"
    )
    code, out = cli(str(bad))
    assert code == 2 and "line 7: tiers: give every tier a weight" in out.replace("\n", " ")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("serve")
    with running(
        ["serve", "--data-dir", str(data)],
        env={"NEOCLOUD_BOOTSTRAP_TOKEN": TOKEN, "NEOCLOUD_DB_URL": ""},
    ) as url:
        yield url


def test_a_site_is_asked_of_the_api(server: str, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    applied = runner.invoke(app, ["--url", server, "--token", TOKEN, "fleet", "apply", str(fleet)])
    assert applied.exit_code == 0, applied.output
    code, out = cli("--gpus", "1000", "--add-site", "lab-1", "--json", url=server)
    assert code == 0, out
    assert json.loads(out)["change"]["added_gpus"] == 136
    code, out = cli("--site", "nowhere", url=server)
    assert code == 2 and "422: capacity.0.site: no site named 'nowhere'" in out
