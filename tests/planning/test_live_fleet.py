"""A scenario whose fleet is the live database: sites, nodes in service, scheduled
deliveries, and the capacity customers already hold (not for sale again)."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from neocloud.cli.main import app
from neocloud.db.engine import make_engine, make_sessionmaker
from neocloud.planning.scenario import scenario_from_database
from neocloud.planning.service import plan_report
from tests.contracts.world import ACME, DELIVERY, book, build, t

SCENARIO = """\
name: live
start: 2026Q4
horizon: 6
fleet: {from: database}
deals:
  - {name: east-all, customer: acme, accelerator: H100, gpus: 128, site: east, start: 2027Q1, term_quarters: 1, price_per_gpu_hour: 3}
  - {name: east-later, customer: acme, accelerator: H100, gpus: 128, site: east, start: 2027Q3, term_quarters: 1, price_per_gpu_hour: 3}
"""


def test_the_live_fleet_and_what_is_sold_shape_the_plan(client: TestClient, db_url: str) -> None:
    build(client)
    book(
        client,
        tenant=ACME,
        type="reserved",
        accelerator="H100",
        gpus=64,
        site="east",
        start=t("2027-01-01"),
        end=t("2027-07-01"),
    )
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            s = scenario_from_database(session, SCENARIO, source="live.yaml")
    finally:
        engine.dispose()
    assert s.fleet == "database"
    assert [site.name for site in s.sites] == ["east", "north", "west"]
    east = s.site("east").pool("H100")
    assert east is not None
    assert (east.gpus, east.block_gpus, east.kw_per_gpu) == (128, 8, 1.275)
    assert east.committed == (0, 64, 64, 0, 0, 0)  # 2027Q1 and 2027Q2 are booked
    west = s.site("west")
    gb200 = west.pool("GB200")
    assert gb200 is not None and (gb200.gpus, gb200.block_gpus) == (144, 72)
    arrivals = {d.name: (d.site, d.gpus, d.quarter) for d in s.deliveries}
    assert arrivals[DELIVERY] == ("west", 64, 3)  # 2027-07-01 is 2027Q3
    assert arrivals["north-live-H100"] == ("north", 32, 5)  # the planned site goes live 2028Q1

    r = plan_report(s)
    assert [a["deal"] for a in r["accepted"]] == ["east-later"]
    [reason] = r["rejected"]
    assert reason["reason"] == (
        "no capacity of H100 at site east in 2027Q1: needs 128 GPUs, at most 64 free"
    )


def test_the_cli_reads_the_live_fleet_from_the_database_it_is_given(
    client: TestClient, db_url: str, tmp_path: Path
) -> None:
    build(client)
    path = tmp_path / "live.yaml"
    path.write_text(SCENARIO)
    result = CliRunner().invoke(app, ["plan", str(path), "--db", db_url, "--runs", "10", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["plan"]
    assert report["scenario"]["fleet"] == "database"
    assert [a["deal"] for a in report["accepted"]] == ["east-all", "east-later"]
