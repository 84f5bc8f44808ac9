"""The usage export (GET /v1/usage/export): FOCUS-style CSV and Parquet that hold exactly
the ledgers, cut at hour boundaries, only the caller's tenant's, refused with the parameter
named when asked badly."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session, sessionmaker

from neocloud.metering.export import NAMES, gpu_hours
from tests.conftest import token_maker
from tests.contracts.world import ACME, GLOBEX
from tests.metering.conftest import World, held
from tests.metering.helpers import iso, post, usage
from tests.placement.api import PROBLEM_JSON, book_now, reconcile

Row = dict[str, Any]


def export(c: TestClient, token: str | None = None, **params: str) -> Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r: Response = c.get("/v1/usage/export", params=params, headers=headers)
    return r


def csv_rows(r: Response) -> list[Row]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    reader = csv.DictReader(io.StringIO(r.text))
    assert tuple(reader.fieldnames or ()) == NAMES
    return list(reader)


def parquet_rows(r: Response) -> list[Row]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(r.content))
    assert tuple(table.column_names) == NAMES
    rows: list[Row] = table.to_pylist()
    return rows


def as_text(row: Row) -> Row:
    """A Parquet row as its CSV cells read."""
    out = {}
    for k, v in row.items():
        if v is None:
            out[k] = ""
        elif isinstance(v, datetime):
            out[k] = v.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif isinstance(v, Decimal):
            out[k] = format(v, "f")
        else:
            out[k] = str(v)
    return out


def ledger(c: TestClient, contract: str, lo: datetime, hi: datetime, step: str) -> list[Row]:
    r = c.get(
        "/v1/usage", params={"contract": contract, "start": iso(lo), "end": iso(hi), "step": step}
    )
    assert r.status_code == 200, r.text
    items: list[Row] = r.json()["items"]
    return items


def by_period(rows: list[Row]) -> dict[str, Row]:
    """The export's rows summed per charge period, in the ledger's terms."""
    out: dict[str, Row] = defaultdict(lambda: {"measured": 0, "billable": 0, "excluded": {}})
    for row in rows:
        got = out[row["ChargePeriodStart"]]
        got["measured"] += int(row["x_MeasuredGpuSeconds"])
        got["billable"] += int(row["x_BillableGpuSeconds"])
        if row["x_ExclusionReason"]:
            reason = row["x_ExclusionReason"]
            got["excluded"][reason] = got["excluded"].get(reason, 0) + int(
                row["x_ExcludedGpuSeconds"]
            )
    return dict(out)


def ledger_by_period(items: list[Row]) -> dict[str, Row]:
    return {
        i["start"].replace("+00:00", "Z"): {
            "measured": i["measured_gpu_seconds"],
            "billable": i["billable_gpu_seconds"],
            "excluded": i["excluded_gpu_seconds"],
        }
        for i in items
        if i["measured_gpu_seconds"]
    }


def check_row(row: Row) -> None:
    """Each row: its GPU-hours are its GPU-seconds / 3600, and it is either billable or
    excluded with a reason."""
    seconds = int(row["x_MeasuredGpuSeconds"])
    quantity = Decimal(row["ConsumedQuantity"])
    assert quantity == gpu_hours(seconds) == (Decimal(seconds) / 3600).quantize(Decimal("1e-9"))
    assert round(quantity * 3600) == seconds
    billable, excluded = int(row["x_BillableGpuSeconds"]), int(row["x_ExcludedGpuSeconds"])
    assert billable + excluded == seconds > 0
    if row["x_ExclusionReason"]:
        assert billable == 0 and Decimal(row["PricingQuantity"]) == 0
        assert row["x_ExclusionReason"] in row["ChargeDescription"]
    else:
        assert excluded == 0 and Decimal(row["PricingQuantity"]) == quantity
    start = datetime.fromisoformat(row["ChargePeriodStart"])
    assert row["BillingPeriodStart"] == iso(start.replace(day=1, hour=0))


def test_csv_and_parquet_hold_exactly_the_ledgers_split_at_hour_boundaries(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEOCLOUD_USAGE_MAX_AHEAD_S", "7200")
    monkeypatch.setenv("NEOCLOUD_OPERATOR_NAME", "Example GPU Cloud")
    c, (a, b) = world.c, world.nodes
    h0 = world.term_start  # the contract's first hour
    h1 = h0 + timedelta(hours=1)
    t = world.since + timedelta(seconds=1)
    # Node a: 10 minutes before the term (outside-term), the term's start until the node was
    # allocated (node-down), the rest of the hour and 10 minutes of the next (billable).
    # Node b: 100 s of 4 GPUs, 40 s of it maintenance: GPU-hours that are not whole.
    post(
        c,
        [
            usage(world.contract, a, 8, h0 - timedelta(minutes=10), h1 + timedelta(minutes=10)),
            usage(world.contract, b, 4, t, t + timedelta(seconds=100)),
        ],
    )
    window = {"contract": world.contract, "reason": "maintenance", "node": b}
    window |= {"start": iso(t + timedelta(seconds=30)), "end": iso(t + timedelta(seconds=70))}
    assert c.post("/v1/usage/exclusions", json=window).status_code == 201
    lo, hi = h0 - timedelta(hours=1), h1 + timedelta(hours=1)
    span = {"start": iso(lo), "end": iso(hi)}

    text = csv_rows(export(c, **span))
    parquet = parquet_rows(export(c, **span, format="parquet"))
    assert [as_text(r) for r in parquet] == text
    for row in text:
        check_row(row)
    expected = ledger_by_period(ledger(c, world.contract, lo, hi, "hour"))
    assert by_period(text) == expected
    assert sum(r["x_BillableGpuSeconds"] for r in parquet) == sum(
        v["billable"] for v in expected.values()
    )
    # Node a's interval, cut at each hour: only the parts of each hour, with their reasons.
    on_a = [(r["ChargePeriodStart"], r["x_ExclusionReason"]) for r in text if r["ResourceId"] == a]
    assert on_a[0] == (iso(lo), "outside-term")
    assert on_a[-1] == (iso(h1), "")
    first = next(r for r in text if r["ResourceId"] == a)
    last = [r for r in text if r["ResourceId"] == a][-1]
    assert (first["x_ExcludedGpuSeconds"], first["ConsumedQuantity"]) == ("4800", "1.333333333")
    assert (last["x_BillableGpuSeconds"], last["ChargePeriodEnd"]) == ("4800", iso(hi))
    maintenance = [r for r in text if r["x_ExclusionReason"] == "maintenance"]
    assert [(r["ResourceId"], r["x_ExcludedGpuSeconds"]) for r in maintenance] == [(b, "160")]
    row = text[0]
    assert row["BillingAccountId"] == ACME and row["SubAccountId"] == world.contract
    assert (row["ChargeCategory"], row["ConsumedUnit"], row["PricingUnit"]) == (
        "Usage",
        "GPU-Hours",
        "GPU-Hours",
    )
    assert (row["ResourceType"], row["RegionId"], row["SkuId"]) == ("GPU node", "east", "H100")
    assert (row["ServiceCategory"], row["BillingCurrency"], row["x_ContractType"]) == (
        "Compute",
        "USD",
        "reserved",
    )
    assert row["ProviderName"] == row["InvoiceIssuerName"] == "Example GPU Cloud"
    assert row["BilledCost"] == row["EffectiveCost"] == row["ListCost"] == ""
    assert parquet[0]["BilledCost"] is None

    # By day: the same GPU-seconds, in the day's rows.
    days = csv_rows(export(c, **span, granularity="day"))
    assert by_period(days) == ledger_by_period(ledger(c, world.contract, lo, hi, "day"))


def test_a_month_is_the_period_and_names_the_file(world: World) -> None:
    c, (a, _) = world.c, world.nodes
    t = world.since + timedelta(seconds=1)
    post(c, [usage(world.contract, a, 8, t, t + timedelta(seconds=90))])
    month = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    after = month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)
    r = export(c, period=f"{month:%Y-%m}", tenant=ACME)
    rows = csv_rows(r)
    assert (
        r.headers["content-disposition"] == f'attachment; filename="usage-acme-{month:%Y-%m}.csv"'
    )
    assert by_period(rows) == ledger_by_period(ledger(c, world.contract, month, after, "hour"))
    assert {(x["BillingPeriodStart"], x["BillingPeriodEnd"]) for x in rows} == {
        (iso(month), iso(after))
    }
    r = export(c, period=f"{month:%Y-%m}", format="parquet")
    assert r.headers["content-disposition"].endswith(f'"usage-all-{month:%Y-%m}.parquet"')
    assert sum(x["x_MeasuredGpuSeconds"] for x in parquet_rows(r)) == 720
    # A month to come is fine, and empty.
    assert csv_rows(export(c, period="2999-01")) == []
    assert parquet_rows(export(c, period="2999-01", format="parquet")) == []


def test_a_tenant_exports_only_its_own_usage(world: World, factory: sessionmaker[Session]) -> None:
    c = world.c
    book_now(c, "globex-m", 8, site="east", tenant=GLOBEX)
    reconcile(c)
    theirs, since = held(factory, "globex-m")[0]
    t = since + timedelta(seconds=1)
    post(
        c,
        [
            usage(world.contract, world.nodes[0], 8, t, t + timedelta(seconds=10)),
            usage("globex-m", theirs, 8, t, t + timedelta(seconds=20)),
        ],
    )
    make = token_maker(factory)
    viewer, admin = make("tenant-viewer", ACME), make("tenant-admin", ACME)
    period = f"{t:%Y-%m}"
    for token in (viewer, admin):
        mine = export(c, token, period=period)
        rows = csv_rows(mine)
        assert {(r["BillingAccountId"], r["SubAccountId"]) for r in rows} == {
            (ACME, world.contract)
        }
        assert GLOBEX not in mine.text and theirs not in mine.text
        assert mine.headers["content-disposition"].endswith(f'"usage-acme-{period}.csv"')
        parquet = parquet_rows(export(c, token, period=period, format="parquet"))
        assert {r["BillingAccountId"] for r in parquet} == {ACME}
        assert csv_rows(export(c, token, period=period, tenant=ACME)) == rows
        # Another tenant reads exactly like one that does not exist.
        for name in (GLOBEX, "no-such-tenant"):
            for fmt in ("csv", "parquet"):
                r = export(c, token, period=period, tenant=name, format=fmt)
                assert r.status_code == 404, r.text
                assert r.headers["content-type"].startswith(PROBLEM_JSON)
                assert r.json()["detail"] == f"tenant '{name}' not found"
    everyone = csv_rows(export(c, period=period))
    assert {r["BillingAccountId"] for r in everyone} == {ACME, GLOBEX}
    only = csv_rows(export(c, period=period, tenant=GLOBEX))
    # (An interval that crosses an hour is on two rows: the sum is what it measured.)
    assert {r["SubAccountId"] for r in only} == {"globex-m"}
    assert sum(int(r["x_MeasuredGpuSeconds"]) for r in only) == 160
    assert export(c, make("sales"), period=period).status_code == 403


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"period": "2026-13"}, "period: '2026-13' is not a month"),
        ({"period": "abc"}, "period: 'abc' is not a month"),
        ({"period": "2026-1"}, "period: "),
        ({"period": "0999-01"}, "period: "),
        ({"period": "2026-11-01"}, "period"),
        ({"format": "xlsx"}, "format"),
        ({"granularity": "week"}, "granularity"),
        ({"period": "2026-11", "start": "2026-11-01T00:00:00Z"}, "period: give either"),
        ({"start": "2026-11-01T00:00:00Z"}, "end: "),
        ({"end": "2026-11-01T00:00:00Z"}, "start: "),
        ({"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "end: must be after"),
        ({"start": "2026-11-01T00:00:00", "end": "2026-11-02T00:00:00Z"}, "start: needs a UTC"),
        ({"start": "2024-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end: at most 366"),
        ({"start": "0001-01-01T00:00:00+05:00", "end": "2026-01-01T00:00:00Z"}, "start: "),
        ({"tenant": "nope"}, None),
    ],
)
def test_bad_parameters_are_a_problem_naming_the_parameter(
    api: TestClient, params: dict[str, str], words: str | None
) -> None:
    r = export(api, **params)
    assert r.status_code == (404 if words is None else 422), r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    assert (words or "tenant 'nope' not found") in r.json()["detail"]


def test_start_and_end_are_widened_to_whole_buckets(api: TestClient) -> None:
    r = export(api, start="2026-11-03T10:30:00Z", end="2026-11-03T12:00:01Z")
    assert csv_rows(r) == []
    assert r.headers["content-disposition"].endswith('"usage-all-20261103T10Z-20261103T13Z.csv"')
    r = export(api, start="2026-11-03T10:30:00Z", end="2026-11-04T00:00:00Z", granularity="day")
    assert r.headers["content-disposition"].endswith('"usage-all-20261103T00Z-20261104T00Z.csv"')
    this_month = datetime.now(UTC)
    assert (
        export(api).headers["content-disposition"].endswith(f'"usage-all-{this_month:%Y-%m}.csv"')
    )
