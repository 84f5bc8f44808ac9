"""`neocloud report` end to end, against a real `neocloud serve` process: the list, JSON,
the console chart, a PNG file, and clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from neocloud.client.http import Client
from tests.cli.runner import Cli, one_site_fleet, served

TOKEN = "nc_report_cli_bootstrap"
cli = Cli(TOKEN)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One site of 32 H100; acme reserved 16 of them for 2026 at $2.50 an hour."""
    with served(tmp_path_factory, TOKEN) as base:
        with Client(base, TOKEN) as client:
            client.apply_fleet(one_site_fleet("rpt", "rpt", 4))
            client.post("/v1/tenants", {"name": "acme", "display_name": "Acme"})
            client.post(
                "/v1/contracts",
                {
                    "name": "acme-2026",
                    "tenant": "acme",
                    "type": "reserved",
                    "accelerator": "H100",
                    "gpus": 16,
                    "start": "2026-01-01T00:00:00Z",
                    "end": "2027-01-01T00:00:00Z",
                    "price": "2.50",
                },
            )
        yield base


def test_list_json_and_console_chart(url: str) -> None:
    code, out = cli(url, "report")
    assert code == 0, out
    for name in ("revenue", "backlog", "revenue-per-mw", "utilization", "concentration"):
        assert name in out
    body = cli.json(
        url,
        "report",
        "revenue",
        "--start",
        "2026-01-01",
        "--end",
        "2026-07-01",
        "--as-of",
        "2027-01-01T00:00:00Z",
    )
    # Six months of 16 GPUs at $2.50: 181 days x 24 h x 16 x 2.50.
    assert Decimal(body["recognized"]) == Decimal(181 * 24 * 16) * Decimal("2.50")
    assert [p["period"] for p in body["periods"]] == [f"2026-0{m}" for m in range(1, 7)]
    code, out = cli(
        url,
        "report",
        "revenue",
        "--start",
        "2026-01-01",
        "--end",
        "2026-07-01",
        "--as-of",
        "2027-01-01T00:00:00Z",
    )
    assert code == 0, out
    assert "Recognized revenue by contract type" in out
    assert "2026-03 " in out and "█" in out and "29.8k" in out  # March: 31 x 24 x 16 x 2.50
    code, out = cli(url, "report", "utilization", "--step", "week")
    assert code == 0, out
    assert "allocated" in out and "used" in out


def test_png_file(url: str, tmp_path: Path) -> None:
    target = tmp_path / "backlog.png"
    code, out = cli(
        url, "report", "backlog", "--as-of", "2026-06-01T00:00:00Z", "--png", str(target)
    )
    assert code == 0, out
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "acme" in out and f"chart written to {target}" in out


def test_errors_name_what_is_wrong(url: str, tmp_path: Path) -> None:
    code, out = cli(url, "report", "profit")
    assert code == 2 and "profit" in out and "capacity-split" in out
    code, out = cli(url, "report", "revenue", "--step", "day")
    assert code == 2 and "step" in out
    code, out = cli(url, "report", "revenue", "--png", str(tmp_path / "missing" / "x.png"))
    assert code == 2 and "cannot write" in out
