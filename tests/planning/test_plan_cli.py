"""`neocloud plan` end to end: the story's two choices compared, charts, and errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neocloud.cli import common
from neocloud.cli.main import app

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.console, "width", 200)


def test_sell_site_1_against_keep_site_1(tmp_path: Path) -> None:
    charts = tmp_path / "charts"
    result = runner.invoke(
        app,
        [
            "plan",
            "sell-site-1.yaml",
            "--compare",
            "keep-site-1.yaml",
            "--runs",
            "200",
            "--seed",
            "3",
            "--charts",
            str(charts),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    sell, keep = report["plan"], report["compare"]
    assert (sell["scenario"]["name"], keep["scenario"]["name"]) == ("sell-site-1", "keep-site-1")
    lab = next(a for a in sell["accepted"] if a["deal"] == "meridian-memphis-1")
    assert lab["whole_site"] and lab["site"] == "memphis-1" and lab["decided"] == "decision"
    assert any(
        r["deal"] == "meridian-memphis-1" and r["kind"] == "decision" for r in keep["rejected"]
    )
    # Selling earns more from contracts; keeping covers more of the operator's own work.
    assert sell["totals"]["revenue"] > keep["totals"]["revenue"]
    assert sell["totals"]["mean_internal_coverage"] < keep["totals"]["mean_internal_coverage"]
    assert every_rejection_has_a_reason(sell) and every_rejection_has_a_reason(keep)
    assert report["difference"]["revenue"] == pytest.approx(
        sell["totals"]["revenue"] - keep["totals"]["revenue"], abs=0.02
    )
    for plan in (sell, keep):
        assert plan["montecarlo"]["runs"] == 200 and len(plan["montecarlo"]["quarters"]) == 12
        assert plan["greedy"]["optimizer_gain"] >= -1.0
    for name in ("revenue.png", "utilization.png", "coverage.png", "comparison.png"):
        assert (charts / name).read_bytes()[:8] == PNG


def every_rejection_has_a_reason(plan: dict[str, object]) -> bool:
    rejected = plan["rejected"]
    assert isinstance(rejected, list)
    return all(r["reason"] and r["kind"] for r in rejected)


def test_the_table_view_shows_choices_and_reasons() -> None:
    result = runner.invoke(app, ["plan", "keep-site-1.yaml", "--runs", "50"])
    assert result.exit_code == 0, result.output
    assert "accepted" in result.output and "rejected" in result.output
    assert "no capacity of GB300 at any site" in result.output


def test_a_bad_file_is_one_line_with_file_and_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("start: 2026Q3\nsites:\n  - {name: a, power_mw: 10, pue: 9}\n")
    result = runner.invoke(app, ["plan", str(bad)])
    assert result.exit_code == 2
    line = " ".join(result.output.split())
    assert f"{bad}:3: sites[0].pue: Input should be less than or equal to 3" in line
    missing = runner.invoke(app, ["plan", str(tmp_path / "nowhere.yaml")])
    assert missing.exit_code == 2 and "cannot read the scenario" in missing.output


def test_an_infeasible_choice_exits_1_with_the_constraint(tmp_path: Path) -> None:
    path = tmp_path / "over.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            start: 2026Q3
            horizon: 2
            sites:
              - {name: a, power_mw: 10, accelerators: [{accelerator: H100, gpus: 800}]}
            deals:
              - {name: big, customer: c, accelerator: H100, gpus: 1000, start: 2026Q3, term_quarters: 1}
            decisions: {accept: [big]}
            """
        )
    )
    result = runner.invoke(app, ["plan", str(path), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)["plan"]
    assert report["status"] == "infeasible"
    assert report["infeasible"][0]["message"].startswith(
        f"accepted big ({path}:7): no capacity of H100 at any site in 2026Q3: needs 1,000 GPUs, "
        "at most 800 free"
    )
