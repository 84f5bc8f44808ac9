"""Scenario files: what loads, and errors that name the file, the line and the field."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from neocloud.planning.scenario import ScenarioError, load_scenario, load_scenario_file
from tests.planning.scenarios import BASE, scenario, write

DEMO = Path(__file__).resolve().parents[2] / "src" / "neocloud" / "demo"


def error_of(text: str, source: str = "bad.yaml") -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(textwrap.dedent(text), source=source)
    return info.value


def test_a_small_scenario_loads_with_defaults_filled_in() -> None:
    s = scenario(
        """\
        deals:
          - {name: d1, customer: acme, accelerator: H100, gpus: 100, start: [2026Q4, 2027Q1], term_quarters: 2}
        internal:
          demand:
            - {name: train, accelerator: GB200, gpus: {2026Q3: 720, 2027Q1: 1440}, floor: 144}
        """
    )
    assert s.quarters == ["2026Q3", "2026Q4", "2027Q1", "2027Q2"]
    deal = s.deal("d1")
    assert (deal.start_earliest, deal.start_latest) == (1, 2)
    # No price: the list book's reserved rate for a 6-month term (3.99 less 25%).
    assert deal.price_per_gpu_hour == pytest.approx(2.9925, abs=1e-3)
    assert s.demand[0].gpus == (720, 720, 1440, 1440)
    assert s.demand[0].floor == (144,) * 4
    # The on-demand list price is the default cost of going without.
    assert s.demand[0].shortfall_cost_per_gpu_hour == pytest.approx(10.50)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.horizon = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("extra", "line", "field", "words"),
    [
        ("horizon: 0\n", 3, "horizon", "greater than or equal to 1"),
        ("sites:\n  - {name: x, power_mw: -5}\n", 4, "sites[0].power_mw", "greater than 0"),
        (
            "deals:\n  - {name: d, customer: c, accelerator: H100, gpus: 8, start: 2026Q5, term_quarters: 1}\n",
            4,
            "deals[0].start",
            "not a quarter",
        ),
        (
            "deals:\n  - {name: d, customer: c, accelerator: H100, gpus: 8, start: 2026Q4, term_quarters: 1, colour: red}\n",
            4,
            "deals[0].colour",
            "unknown field",
        ),
        (
            "deals:\n  - name: d\n    customer: c\n    gpus: 8\n    start: 2026Q4\n    term_quarters: 1\n",
            4,
            "deals[0]",
            "give the accelerator",
        ),
        (
            "delivery_delay: {0: 0.5, 1: 0.3}\n",
            3,
            "delivery_delay",
            "sum to 1",
        ),
    ],
)
def test_shape_errors_name_file_line_and_field(
    extra: str, line: int, field: str, words: str
) -> None:
    text = "name: t\nstart: 2026Q3\n" + extra
    if "sites:" not in extra:
        text += (
            "sites:\n  - {name: a, power_mw: 10, accelerators: [{accelerator: H100, gpus: 8}]}\n"
        )
    err = error_of(text)
    assert str(err).startswith(f"bad.yaml:{line}: {field}: "), str(err)
    assert words in str(err)
    assert (err.line, err.field, err.source) == (line, field, "bad.yaml")


@pytest.mark.parametrize(
    ("extra", "line", "words"),
    [
        (
            "deals:\n  - {name: d, customer: c, accelerator: H100, gpus: 8, start: 2026Q4, term_quarters: 1, site: gamma}\n",
            21,
            "deals[0].site: no site 'gamma' (sites: alpha, beta)",
        ),
        (
            "deals:\n  - {name: d, customer: c, accelerator: B200, gpus: 8, start: 2026Q4, term_quarters: 1}\n",
            21,
            "deals[0].accelerator: no B200 at any site (accelerators: GB200, H100)",
        ),
        (
            "deals:\n  - {name: d, customer: c, accelerator: H100, gpus: 8, start: 2028Q1, term_quarters: 1}\n",
            21,
            "deals[0].start: 2028Q1 is after the horizon (2026Q3-2027Q2)",
        ),
        (
            "decisions:\n  accept: [nothing]\n",
            21,
            "decisions.accept[0]: no deal 'nothing'",
        ),
        (
            "internal:\n  demand:\n    - {name: t, accelerator: GB200, gpus: 72, sites: [alpha]}\n",
            22,
            "internal.demand[0].accelerator: no GB200 at the sites it may use",
        ),
    ],
)
def test_reference_errors_name_file_line_and_field(extra: str, line: int, words: str) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario(extra, source="ref.yaml")
    assert str(info.value) == f"ref.yaml:{line}: {words}"


def test_yaml_syntax_and_duplicate_keys_give_the_line() -> None:
    assert str(error_of("start: 2026Q3\nsites: [\n")).startswith("bad.yaml:3:")
    err = error_of("start: 2026Q3\nhorizon: 4\nhorizon: 5\n")
    assert err.line == 3 and "duplicate key 'horizon'" in str(err)


def test_extends_takes_the_base_and_errors_point_into_the_right_file(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    child = write(
        tmp_path,
        "child.yaml",
        """\
        extends: base.yaml
        name: child
        decisions:
          reject: [nope]
        """,
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario_file(child)
    assert str(info.value) == f"{child}:4: decisions.reject[0]: no deal 'nope'"
    broken = write(tmp_path, "broken.yaml", BASE.replace("power_mw: 20", "power_mw: twenty"))
    child2 = write(tmp_path, "child2.yaml", "extends: broken.yaml\nname: c2\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario_file(child2)
    assert str(info.value).startswith(f"{broken}:6: sites[0].power_mw: ")


def test_a_fleet_file_error_names_the_fleet_file(tmp_path: Path) -> None:
    write(
        tmp_path, "fleet.yaml", "apiVersion: neocloud/v1\nsites:\n  - name: x\n    power_mw: -1\n"
    )
    s = write(tmp_path, "s.yaml", "start: 2026Q3\nfleet: {file: fleet.yaml}\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario_file(s)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'fleet.yaml'}:3: fleet file is not valid")
    assert "line 4: sites[0].power_mw" in message
    missing = write(tmp_path, "m.yaml", "start: 2026Q3\nfleet: {file: nowhere.yaml}\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario_file(missing)
    assert str(info.value).startswith(f"{missing}:2: fleet.file: cannot read")


def test_the_live_fleet_needs_the_database() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario("start: 2026Q3\nfleet: {from: database}\n", source="live.yaml")
    assert info.value.field == "fleet.from" and info.value.line == 2


def test_the_story_reads_the_demo_fleet_file_and_its_deliveries() -> None:
    sell = load_scenario_file(DEMO / "sell-site-1.yaml")
    keep = load_scenario_file(DEMO / "keep-site-1.yaml")
    assert [s.name for s in sell.sites] == ["memphis-1", "memphis-2"]
    m1 = sell.site("memphis-1")
    assert {p.accelerator: p.gpus for p in m1.pools} == {
        "H100": 147_456,
        "H200": 49_152,
        "GB200": 29_952,
    }
    gb200 = m1.pool("GB200")
    assert gb200 is not None and gb200.block_gpus == 72 and gb200.kw_per_gpu == pytest.approx(1.65)
    h100 = m1.pool("H100")
    assert h100 is not None and h100.block_gpus == 8 and h100.kw_per_gpu == pytest.approx(1.1)
    late = {d.name: d for d in sell.deliveries}
    assert late["m2-gb300-2027q1"].delay == (0.5, 0.3, 0.15, 0.05)
    assert late["m2-gb300-2027q3"].delay == (0.3, 0.4, 0.2, 0.1)
    assert late["m2-gb300-2027q3"].quarter == 5  # 2027Q3, from 2026Q2
    assert sell.decisions.accept == ("meridian-memphis-1",)
    assert keep.decisions.reject == ("meridian-memphis-1",)
    assert sell.deals == keep.deals


def test_a_scenario_sent_to_a_server_names_only_built_in_files(tmp_path: Path) -> None:
    sell = (DEMO / "sell-site-1.yaml").read_text()
    s = load_scenario(sell, source="upload", allow_files=False)
    assert s.decisions.accept == ("meridian-memphis-1",)
    secret = write(tmp_path, "secret.yaml", BASE)
    with pytest.raises(ScenarioError) as info:
        load_scenario(f"extends: {secret}\n", source="upload", allow_files=False)
    assert str(info.value).startswith(
        f"upload:1: extends: '{secret}': a scenario sent to the server can name only the "
        "built-in files (fleet.yaml, keep-site-1.yaml"
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario("start: 2026Q3\nfleet: {file: ../x.yaml}\n", allow_files=False)
    assert info.value.field == "fleet.file"
