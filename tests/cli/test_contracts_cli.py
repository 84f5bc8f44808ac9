"""`neocloud quote|contracts|capacity` end to end, against one real `neocloud serve` process.

Every date is relative to today, and each test uses its own stretch of the calendar, so the
tests do not take each other's capacity.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from neocloud.client.http import Client
from tests.cli.runner import Cli, served

TOKEN = "nc_contracts_cli_bootstrap"
cli = Cli(TOKEN)
cli_json = cli.json
# alpha: two fabrics of 64 H100s; beta: one fabric of 64 H100s (8-GPU nodes, 32-GPU blocks)
FLEET = textwrap.dedent(
    """\
    apiVersion: neocloud/v1
    sites:
      - name: alpha
        location: Memphis, TN
        power_mw: 2
        pue: 1.2
        state: live
        dates: {live: 2024-09-02}
        fabrics:
          - name: f{i:02d}
            count: 2
            blocks:
              name: b{i}
              count: 2
              nodes: {name: "a-{fabric}-{block}-n{i}", count: 4, accelerator: H100, gpus: 8, power_kw: 10.2}
      - name: beta
        location: Reno, NV
        power_mw: 2
        pue: 1.2
        state: live
        dates: {live: 2024-09-02}
        fabrics:
          - name: g01
            blocks:
              name: c{i}
              count: 2
              nodes: {name: "b-{block}-n{i}", count: 4, accelerator: H100, gpus: 8, power_kw: 10.2}
    """
)
BASE = date.today() + timedelta(days=14)


def day(offset: int) -> str:
    """A date `offset` days after BASE, as the CLI takes it."""
    return (BASE + timedelta(days=offset)).isoformat()


def iso(offset: int) -> str:
    """The same day as the API writes it (midnight UTC)."""
    return f"{day(offset)}T00:00:00Z"


def at(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(tmp_path_factory, TOKEN) as url:
        with Client(url, TOKEN) as client:
            client.apply_fleet(FLEET)
            client.post(
                "/v1/tenants", {"name": "training", "display_name": "Training", "kind": "internal"}
            )
            client.post(
                "/v1/tenants", {"name": "acme", "display_name": "Acme AI", "kind": "customer"}
            )
        yield url


def held(contract: dict[str, Any], site: str | None = None, when: str | None = None) -> int:
    """GPUs a contract holds (at a site, at an instant)."""
    return sum(
        c["gpus"]
        for c in contract["claims"]
        if (site is None or c["site"] == site)
        and (when is None or at(c["start"]) <= at(when) < at(c["end"]))
    )


def test_quote_book_amend_cancel_and_the_history_shows_every_step(server: str) -> None:
    code, out = cli(
        server,
        "quote",
        "--tenant",
        "acme",
        "--accelerator",
        "H100",
        "--gpus",
        "48",
        "--site",
        "alpha",
        "--start-after",
        day(0),
        "--start-before",
        day(0),
        "--days",
        "30",
    )
    assert code == 0, out
    found = re.search(r"quote (\d+) for acme: reserved, 48 H100 GPUs, 30 days", out)
    assert found, out
    quote_id = found.group(1)
    assert "takes" in out and f"book it: neocloud contracts book --quote {quote_id}" in out
    stored = cli_json(server, "quotes", "show", quote_id)
    option = stored["options"][0]
    assert (option["site"], option["start"], option["gpus"]) == ("alpha", iso(0), 48)

    booked = cli_json(
        server, "contracts", "book", "--quote", quote_id, "--name", "acme-train", "--lendable"
    )
    assert (booked["state"], booked["gpus"], booked["site"]) == ("booked", 48, "alpha")
    assert (booked["start"], booked["end"], booked["quote_id"]) == (
        iso(0),
        iso(30),
        int(quote_id),
    )
    assert booked["lendable"] is True and held(booked, "alpha", iso(0)) == 48

    code, out = cli(server, "contracts", "list", "--tenant", "acme")
    assert code == 0 and "acme-train" in out and "USD/GPU-h" in out
    page = cli_json(server, "contracts", "list", "--tenant", "acme", "--type", "reserved")
    assert "acme-train" in [c["name"] for c in page["items"]]
    code, out = cli(server, "contracts", "show", "acme-train")
    assert code == 0 and "held capacity" in out and "alpha" in out

    extended = cli_json(
        server, "contracts", "extend", "acme-train", "--to", day(60), "--reason", "longer run"
    )
    assert extended["end"] == iso(60) and held(extended, "alpha", iso(50)) == 48
    code, out = cli(server, "contracts", "extend", "acme-train", "--to", day(10))
    assert code == 2 and "end" in out and "must be after the current end" in out

    grown = cli_json(
        server, "contracts", "grow", "acme-train", "--gpus", "64", "--effective", day(10)
    )
    assert grown["gpus"] == 64
    assert held(grown, when=iso(5)) == 48 and held(grown, when=iso(15)) == 64
    shrunk = cli_json(
        server, "contracts", "shrink", "acme-train", "--gpus", "32", "--effective", day(20)
    )
    assert held(shrunk, when=iso(15)) == 64 and held(shrunk, when=iso(25)) == 32
    moved = cli_json(
        server,
        "contracts",
        "move",
        "acme-train",
        "--site",
        "beta",
        "--effective",
        day(40),
        "--reason",
        "alpha maintenance",
    )
    assert held(moved, "alpha", iso(30)) == 32 and held(moved, "beta", iso(45)) == 32
    assert held(moved, "alpha", iso(45)) == 0

    code, out = cli(server, "contracts", "cancel", "acme-train", "--reason", "lost funding")
    assert code == 0 and "cancelled acme-train" in out
    assert cli_json(server, "contracts", "show", "acme-train")["claims"] == []
    cancelled = cli_json(server, "contracts", "list", "--state", "cancelled")["items"]
    assert "acme-train" in [c["name"] for c in cancelled]

    history = cli_json(server, "contracts", "history", "acme-train")
    assert [h["action"] for h in history] == ["book", "extend", "grow", "shrink", "move", "cancel"]
    assert [h["revision"] for h in history] == [1, 2, 3, 4, 5, 6]
    assert [h["snapshot"]["gpus"] for h in history][:4] == [48, 48, 64, 32]
    assert history[-1]["reason"] == "lost funding"
    code, out = cli(server, "contracts", "history", "acme-train")
    assert code == 0 and "alpha maintenance" in out and "lost funding" in out


def test_internal_floor_shows_in_quotes_and_a_full_site_says_what_is_missing(
    server: str,
) -> None:
    internal = cli_json(
        server,
        "contracts",
        "create",
        "--tenant",
        "training",
        "--type",
        "internal",
        "--accelerator",
        "H100",
        "--gpus",
        "32",
        "--site",
        "beta",
        "--start",
        day(100),
        "--end",
        day(130),
        "--floor-gpus",
        "16",
        "--name",
        "training-floor",
    )
    assert [f["gpus"] for f in internal["floors"]] == [16] and held(internal, "beta") == 32

    window = ["--site", "beta", "--start-after", day(100), "--start-before", day(100)]
    code, out = cli(
        server,
        "quote",
        "--tenant",
        "acme",
        "--accelerator",
        "H100",
        "--gpus",
        "16",
        *window,
        "--days",
        "10",
    )
    assert code == 0 and "of the internal floor's headroom at beta" in out
    after = cli_json(
        server,
        "quote",
        "--tenant",
        "acme",
        "--accelerator",
        "H100",
        "--gpus",
        "16",
        *["--site", "beta", "--start-after", day(140), "--start-before", day(140)],
        "--days",
        "5",
    )
    # once the floor's term is over, an option uses none of it
    assert after["options"][0]["start"] == iso(140)
    assert "floor-headroom" not in {u["kind"] for u in after["options"][0]["uses"]}

    quote = cli_json(
        server,
        "quote",
        "--tenant",
        "acme",
        "--accelerator",
        "H100",
        "--gpus",
        "40",
        *window,
        "--days",
        "10",
    )
    assert quote["options"] == []
    gone = quote["unavailable"]
    assert gone["earliest_start"] == iso(130) and gone["earliest_site"] == "beta"
    assert [(m["site"], m["possible"], m["missing"]) for m in gone["missing"]] == [("beta", 32, 8)]
    code, out = cli(
        server,
        "quote",
        "--tenant",
        "acme",
        "--accelerator",
        "H100",
        "--gpus",
        "40",
        *window,
        "--days",
        "10",
    )
    assert code == 0 and "unavailable:" in out
    assert f"earliest start that fits: {day(130)} 00:00 UTC at beta" in out


def test_selling_a_site_whole_moves_the_internal_work_away(server: str) -> None:
    cli_json(
        server,
        "contracts",
        "create",
        "--tenant",
        "training",
        "--type",
        "internal",
        "--accelerator",
        "H100",
        "--gpus",
        "32",
        "--site",
        "beta",
        "--start",
        day(150),
        "--end",
        day(180),
        "--name",
        "training-run",
    )
    window = ["--start-after", day(150), "--start-before", day(150), "--days", "10"]
    code, out = cli(
        server, "quote", "--tenant", "acme", "--type", "dedicated-site", "--site", "beta", *window
    )
    assert code == 0, out
    assert "takes all of beta" in out and "moves training-run (32 GPUs) from beta to alpha" in out
    found = re.search(r"quote (\d+) for acme", out)
    assert found, out
    quote_id = found.group(1)

    lab = cli_json(server, "contracts", "book", "--quote", quote_id, "--name", "acme-beta")
    assert (lab["type"], lab["site"], lab["gpus"]) == ("dedicated-site", "beta", 64)
    assert all(c["exclusive"] for c in lab["claims"])
    training = cli_json(server, "contracts", "show", "training-run")
    assert held(training, "alpha", iso(155)) == 32 and held(training, "beta", iso(155)) == 0
    history = cli_json(server, "contracts", "history", "training-run")
    assert [h["action"] for h in history] == ["book", "relocate"]


def test_a_draft_holds_nothing_until_booked(server: str) -> None:
    draft = cli_json(
        server,
        "contracts",
        "create",
        "--tenant",
        "acme",
        "--type",
        "reserved",
        "--accelerator",
        "H100",
        "--gpus",
        "8",
        "--start",
        day(250),
        "--end",
        day(260),
        "--price",
        "2.5",
        "--sla-tier",
        "premium",
        "--draft",
        "--name",
        "acme-draft",
    )
    assert (draft["state"], draft["claims"], Decimal(draft["price"])) == (
        "quoted",
        [],
        Decimal("2.5"),
    )
    code, out = cli(server, "contracts", "book-draft", "acme-draft")
    assert code == 0 and "booked acme-draft" in out
    booked = cli_json(server, "contracts", "show", "acme-draft")
    assert booked["state"] == "booked" and held(booked) == 8 and booked["sla_tier"] == "premium"
    code, out = cli(server, "contracts", "book-draft", "acme-draft")
    assert code == 2 and "only a quoted one can be booked" in out


def test_capacity_show_reflects_a_booking_in_table_json_and_csv(server: str) -> None:
    contract = cli_json(
        server,
        "contracts",
        "create",
        "--tenant",
        "acme",
        "--type",
        "reserved",
        "--accelerator",
        "H100",
        "--gpus",
        "16",
        "--site",
        "alpha",
        "--same-fabric",
        "--start",
        day(300),
        "--end",
        day(330),
        "--name",
        "acme-cap",
    )
    (fabric,) = {c["fabric"] for c in contract["claims"]}
    span = ["--start", day(300), "--end", day(302), "--site", "alpha"]

    report = cli_json(server, "capacity", "show", *span)
    pools = {p["fabric"]: p["series"] for p in report["pools"]}
    assert set(pools) == {"f01", "f02"}
    for name, series in pools.items():
        assert [b["start"] for b in series] == [iso(300), iso(301)]
        want = 16 if name == fabric else 0
        assert [(b["supply"], b["committed"], b["free"]) for b in series] == [
            (64, want, 64 - want)
        ] * 2

    code, out = cli(server, "capacity", "show", *span, "--csv")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0] == "site,accelerator,fabric,start,end,supply,committed,free,out_of_service"
    rows = [dict(zip(lines[0].split(","), line.split(","), strict=True)) for line in lines[1:]]
    assert len(rows) == 4
    assert {r["committed"] for r in rows if r["fabric"] == fabric} == {"16"}
    assert {r["free"] for r in rows if r["fabric"] == fabric} == {"48"}

    code, out = cli(server, "capacity", "show", *span, "--step", "week")
    assert code == 0 and "capacity by week" in out and fabric in out and "48" in out
    code, out = cli(server, "capacity", "show", *span, "--json", "--csv")
    assert code == 2 and "not both" in out


def test_conflicts_name_the_short_contract_when_supply_drops(server: str) -> None:
    cli_json(
        server,
        "contracts",
        "create",
        "--tenant",
        "acme",
        "--type",
        "reserved",
        "--accelerator",
        "H100",
        "--gpus",
        "64",
        "--site",
        "beta",
        "--start",
        day(200),
        "--end",
        day(210),
        "--name",
        "acme-fill",
    )

    def short() -> list[dict[str, Any]]:
        items = cli_json(server, "capacity", "conflicts", "--start", day(200), "--end", day(210))
        return [c for c in items for s in c["contracts"] if s["contract"] == "acme-fill"]

    assert short() == []
    code, out = cli(server, "nodes", "set-state", "b-c1-n1", "failed", "--reason", "psu")
    assert code == 0, out
    try:
        found = short()
        assert len(found) == 1, found
        conflict = found[0]
        assert (conflict["kind"], conflict["site"], conflict["fabric"]) == (
            "oversold",
            "beta",
            "g01",
        )
        assert conflict["contracts"] == [
            {"contract": "acme-fill", "tenant": "acme", "short_gpus": 8}
        ]
        code, out = cli(server, "capacity", "conflicts", "--start", day(200), "--end", day(210))
        assert code == 0 and "oversold" in out and "acme-fill (acme): 8" in out
    finally:
        cli(server, "nodes", "set-state", "b-c1-n1", "available")
    assert short() == []
    code, out = cli(server, "capacity", "conflicts", "--start", day(200), "--end", day(210))
    assert code == 0 and "no conflicts" in out


def test_a_booking_that_cannot_fit_is_refused_with_the_reason_and_leaves_nothing(
    server: str,
) -> None:
    code, out = cli(
        server,
        "contracts",
        "create",
        "--tenant",
        "acme",
        "--type",
        "reserved",
        "--accelerator",
        "H100",
        "--gpus",
        "1000",
        "--start",
        day(400),
        "--end",
        day(410),
        "--name",
        "acme-huge",
    )
    assert code == 2 and "409" in out and "not enough capacity for 1000 H100 GPUs" in out
    assert "alpha: 128 possible" in out
    code, out = cli(server, "contracts", "show", "acme-huge")
    assert code == 2 and "404" in out
    quote = cli_json(
        server,
        "quote",
        "--tenant",
        "acme",
        "--accelerator",
        "H100",
        "--gpus",
        "1000",
        "--days",
        "5",
    )
    assert quote["options"] == [] and {m["site"] for m in quote["unavailable"]["missing"]} == {
        "alpha",
        "beta",
    }


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--start", "2027-13-01", "--end", "2028-01-01"], "--start: '2027-13-01' is not a date"),
        (["--start", "2027-01-01", "--end", "soon"], "--end: 'soon' is not a date"),
        (["--start", "2027-01-01T10:30", "--end", "2027-02-01"], "not on the hour"),
        (["--start", "2027-02-01", "--end", "2027-01-01"], "end: must be after start"),
    ],
)
def test_bad_dates_exit_2_and_say_why(server: str, args: list[str], said: str) -> None:
    code, out = cli(
        server,
        "contracts",
        "create",
        "--tenant",
        "acme",
        "--type",
        "reserved",
        "--accelerator",
        "H100",
        "--gpus",
        "8",
        *args,
    )
    assert code == 2 and said in out


def test_bad_input_elsewhere_exits_2_with_the_servers_detail(server: str) -> None:
    code, out = cli(server, "capacity", "show", "--start", "tomorrow")
    assert code == 2 and "--start" in out
    code, out = cli(
        server, "quote", "--tenant", "acme", "--accelerator", "Z99", "--gpus", "8", "--days", "5"
    )
    assert code == 2 and "unknown accelerator 'Z99'" in out
    code, out = cli(server, "contracts", "grow", "no-such-contract", "--gpus", "8")
    assert code == 2 and "not found" in out
    code, out = cli(server, "quote", "--tenant", "acme", "--type", "lease", "--gpus", "8")
    assert code == 2 and "--type" in out
