"""Random sequences of quotes, bookings, amendments, cancellations and supply changes through
the HTTP API, checked after every step against the independent oracle (tests/capacity/oracle).

- A booking, amendment or cancellation that succeeds never oversells: no invariant is broken
  that was not broken before, nor broken by more.
- A refusal is a 4xx problem+json whose detail says why, never a 500, and changes nothing.
- A supply change (a node fails or is retired, a delivery slips or shrinks, a site's power is
  cut) never drops or shrinks a contract: contracts and their claims stay as they were.
- After every step, `GET /v1/capacity/conflicts` reports exactly the invariants the oracle
  finds broken, with the contracts left short; `GET /v1/capacity` shows the oracle's supply
  and commitments.

Each example gets a fresh database holding the fleet below (copied from a template built once).
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from neocloud.api.app import create_app
from neocloud.config import Settings
from neocloud.db.base import Base
from neocloud.db.engine import make_engine
from tests.capacity import oracle
from tests.conftest import ADMIN_TOKEN, pg_exec, pg_url

NOW = datetime.now(UTC)
BASE = datetime(NOW.year + 2, 1, 1, tzinfo=UTC)
"""Every term starts on or after BASE, well after now: cancellations release whole terms and
the calendar is the same whenever the test runs."""
DELIVERY = "s2-gb200-next"
DELIVERY_DAY = (BASE + timedelta(days=60)).date()
S3_LIVE = (BASE + timedelta(days=30)).date()

# Node groups: (site, fabric, block, node prefix, accelerator, GPUs per node, kW, count).
GROUPS: list[tuple[str, str, str, str, str, int, str, int]] = [
    ("s1", "h1", "b1", "s1-h1-b1-n", "H100", 8, "10.2", 4),
    ("s1", "h1", "b2", "s1-h1-b2-n", "H100", 8, "10.2", 4),
    ("s1", "h1", "b3", "s1-h1-b3-n", "H100", 8, "10.2", 4),
    ("s1", "h2", "b1", "s1-h2-b1-n", "H100", 8, "10.2", 4),
    ("s2", "h1", "b1", "s2-h1-b1-n", "H100", 8, "10.2", 4),
    ("s2", "nvl", "r1", "s2-r1-t", "GB200", 4, "6.6", 18),
    ("s3", "h1", "b1", "s3-h1-b1-n", "H100", 8, "10.2", 4),
]
SITES = {
    "s1": {"power_mw": "2", "pue": "1.2", "state": "live", "dates": "{live: 2024-01-01}"},
    "s2": {"power_mw": "0.5", "pue": "1.1", "state": "live", "dates": "{live: 2024-01-01}"},
    "s3": {
        "power_mw": "1",
        "pue": "1.2",
        "state": "planned",
        "dates": f"{{planned: 2024-01-01, live: {S3_LIVE}}}",
    },
}
POWER_CUTS = {
    "s1": ["0.15", "0.3", "1"],
    "s2": ["0.17", "0.18", "0.2", "0.4"],
    "s3": ["0.03", "0.5"],
}
"""New facility power per site: some below the installed load (refused); s2's just above it,
so that commitments on its scheduled delivery lose their power."""
TENANTS = {"ops": "internal", "lab": "customer", "coder": "customer"}


def fleet_file(counts: dict[int, int]) -> str:
    """The fleet as a fleet file, with `counts[i]` nodes in group i (fewer: nodes retired)."""
    lines = ["apiVersion: neocloud/v1", "sites:"]
    for site, spec in SITES.items():
        lines += [
            f"  - name: {site}",
            "    location: Test",
            f"    power_mw: {spec['power_mw']}",
            f"    pue: {spec['pue']}",
            f"    state: {spec['state']}",
            f"    dates: {spec['dates']}",
            "    fabrics:",
        ]
        fabrics: dict[str, list[int]] = {}
        for i, g in enumerate(GROUPS):
            if g[0] == site:
                fabrics.setdefault(g[1], []).append(i)
        for fabric, groups in fabrics.items():
            lines += [f"      - name: {fabric}", "        blocks:"]
            for i in groups:
                _, _, block, prefix, acc, gpus, kw, _ = GROUPS[i]
                lines += [
                    f"          - name: {block}",
                    f'            nodes: {{name: "{prefix}{{i:02d}}", count: {counts[i]}, '
                    f"accelerator: {acc}, gpus: {gpus}, power_kw: {kw}}}",
                ]
    lines += [
        "deliveries:",
        f"  - {{name: {DELIVERY}, site: s2, fabric: nvl2, accelerator: GB200, nodes: 36, "
        f"gpus_per_node: 4, power_kw_per_node: 6.6, expected_on: {DELIVERY_DAY}}}",
    ]
    return "\n".join(lines) + "\n"


def at(days: int) -> str:
    return (BASE + timedelta(days=days)).isoformat().replace("+00:00", "Z")


def hour_now() -> int:
    return oracle.hour_of(datetime.now(UTC))


def hour_of_text(value: str) -> int:
    return oracle.hour_of(datetime.fromisoformat(value.replace("Z", "+00:00")))


def new_client(url: str) -> tuple[TestClient, Callable[[], None]]:
    engine = make_engine(url)
    app = create_app(Settings(db_url=url, bootstrap_token=ADMIN_TOKEN), engine=engine)
    client = TestClient(app, raise_server_exceptions=False)
    client.__enter__()
    client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"

    def close() -> None:
        client.__exit__(None, None, None)
        engine.dispose()

    return client, close


def build_world(url: str) -> None:
    client, close = new_client(url)
    try:
        r = client.post(
            "/v1/fleet/apply",
            content=fleet_file({i: g[7] for i, g in enumerate(GROUPS)}),
            headers={"Content-Type": "application/yaml"},
        )
        assert r.status_code == 200, r.text
        for name, kind in TENANTS.items():
            r = client.post(
                "/v1/tenants", json={"name": name, "display_name": name.title(), "kind": kind}
            )
            assert r.status_code == 201, r.text
    finally:
        close()


class Databases:
    """Fresh databases holding the world, one per example, cheap to make."""

    def __init__(self, make: Callable[[], str], drop: Callable[[str], None]) -> None:
        self.make, self.drop = make, drop


def sqlite_databases(template: Path, folder: Path) -> Databases:
    world = folder / "world.db"
    shutil.copyfile(template, world)
    build_world(f"sqlite:///{world}")

    def make() -> str:
        target = folder / f"example-{uuid.uuid4().hex[:10]}.db"
        shutil.copyfile(world, target)
        return f"sqlite:///{target}"

    def drop(url: str) -> None:
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)

    return Databases(make, drop)


@pytest.fixture
def sqlite_world(sqlite_template: Path, tmp_path: Path) -> Databases:
    return sqlite_databases(sqlite_template, tmp_path)


@pytest.fixture
def pg_world(pg_template: str) -> Iterator[Databases]:
    world = f"nc_world_{uuid.uuid4().hex[:10]}"
    pg_exec(f'CREATE DATABASE "{world}" TEMPLATE "{pg_template}"')
    made: list[str] = []

    def make() -> str:
        name = f"nc_ex_{uuid.uuid4().hex[:12]}"
        pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{world}"')
        made.append(name)
        return pg_url(name)

    def drop(url: str) -> None:
        pg_exec(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')

    try:
        build_world(pg_url(world))
        yield Databases(make, drop)
    finally:
        for name in made:
            pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        pg_exec(f'DROP DATABASE IF EXISTS "{world}" WITH (FORCE)')


# --- what a request may look like -----------------------------------------------------------

starts = st.sampled_from([0, 10, 30, 45, 60, 90])
days = st.sampled_from([5, 30, 60, 120])
sites = st.sampled_from(["s1", "s2", "s3"])
maybe_site = st.one_of(st.none(), sites)
accelerators = st.sampled_from(["H100", "H100", "GB200"])
gpu_counts = st.sampled_from([4, 8, 16, 24, 32, 48, 64, 72, 144])
units = st.sampled_from(["gpu", "gpu", "node", "block"])
picks = st.integers(0, 10_000)
CAPACITY_REASON = re.compile(r"\d+ possible, \d+ missing \(.+\)")
NONSENSE: list[tuple[str, dict[str, Any]] | None] = [
    ("gpus", {"gpus": 0}),
    ("gpus", {"gpus": -8}),
    ("end", {"end": at(-1)}),
    ("site", {"site": "nowhere"}),
    ("accelerator", {"accelerator": "Z99"}),
    ("start", {"start": at(0).replace("T00:00:00", "T00:30:00")}),
    ("type", {"tenant": "ops"}),
    ("floors", {"floors": [{"gpus": 8}]}),
]
"""Requests that cannot be right, and the field the refusal must name."""


class BookingMachine(RuleBasedStateMachine):
    """The API under random operations; the oracle and the conflicts report after each."""

    databases: ClassVar[Databases]

    def __init__(self) -> None:
        super().__init__()
        self.url = type(self).databases.make()
        self.client, self._close = new_client(self.url)
        self.engine = make_engine(self.url)
        self.contracts: list[str] = []
        self.counts = {i: g[7] for i, g in enumerate(GROUPS)}
        self.delivery_day = DELIVERY_DAY
        self.seq = 0

    def teardown(self) -> None:
        self._close()
        self.engine.dispose()
        type(self).databases.drop(self.url)

    # --- reading the database ---------------------------------------------------------------

    def facts(self) -> oracle.Facts:
        with self.engine.connect() as conn:
            return oracle.load(conn)

    def ledger(self) -> tuple[Any, ...]:
        """Contracts, claims, floors and revisions as stored: to show nothing changed."""
        t = Base.metadata.tables
        with self.engine.connect() as conn:
            c = t["contracts"]
            contracts = conn.execute(
                sa.select(
                    c.c.id,
                    c.c.name,
                    c.c.state,
                    c.c.gpus,
                    c.c.mw,
                    c.c.site_id,
                    c.c.start_at,
                    c.c.end_at,
                    c.c.revision,
                ).order_by(c.c.id)
            ).all()
            rows = []
            for name in ("capacity_claims", "capacity_floors"):
                table = t[name]
                cols = [col for col in table.c if col.name != "id"]
                rows.append(sorted(tuple(r) for r in conn.execute(sa.select(*cols)).all()))
            revisions = conn.scalar(sa.select(sa.func.count()).select_from(t["contract_revisions"]))
        return (contracts, *rows, revisions)

    # --- calling the API --------------------------------------------------------------------

    def call(self, method: str, url: str, body: dict[str, Any] | None = None) -> Response:
        """Make a request; any refusal must be a 4xx problem whose detail says why."""
        note(f"{method} {url} {body}")
        r: Response = self.client.request(method, url, json=body)
        note(f"-> {r.status_code} {r.text[:600]}")
        assert r.status_code < 500, f"{method} {url} {body}: {r.status_code} {r.text}"
        if r.status_code >= 400:
            assert r.status_code in (400, 404, 409, 422), r.text
            assert r.headers["content-type"].startswith("application/problem+json"), r.headers
            problem = r.json()
            detail = problem.get("detail") or ""
            assert len(detail.strip()) >= 15 and detail != problem.get("title"), (
                f"a refusal that does not say why: {problem}"
            )
            if r.status_code == 422:
                assert problem.get("errors") and all(e.get("loc") for e in problem["errors"]), (
                    f"a 422 that names no field: {problem}"
                )
            if r.status_code == 409 and detail.startswith("not enough capacity"):
                assert CAPACITY_REASON.search(detail), f"short of capacity, but why? {detail}"
        return r

    def commit_step(self, method: str, url: str, body: dict[str, Any]) -> Response:
        """A booking-type request: on success it breaks nothing new; a refusal changes nothing."""
        before, ledger = self.facts(), self.ledger()
        r = self.call(method, url, body)
        if r.status_code >= 400:
            assert self.ledger() == ledger, "a refused request changed the contracts"
            return r
        worse = oracle.no_worse(before, self.facts(), hour_now())
        assert worse == [], f"{method} {url} {body} oversold: {worse}"
        return r

    def supply_step(self, method: str, url: str, body: dict[str, Any] | None = None) -> Response:
        """A change of supply: contracts and their claims are never dropped or shrunk."""
        ledger = self.ledger()
        r = self.call(method, url, body)
        assert self.ledger() == ledger, "a supply change altered contracts or their claims"
        return r

    def book(self, body: dict[str, Any]) -> Response:
        self.seq += 1
        body = {"name": f"c{self.seq}", **body}
        r = self.commit_step("POST", "/v1/contracts", body)
        if r.status_code == 201:
            self.contracts.append(r.json()["name"])
        return r

    def pick(self, i: int) -> str:
        return self.contracts[i % len(self.contracts)]

    # --- rules: selling -------------------------------------------------------------------------

    @initialize(
        gpus=st.sampled_from([8, 16, 32]),
        start=starts,
        length=days,
        floor=st.sampled_from([None, 48, 96]),
    )
    def operator_books_its_own_training(
        self, gpus: int, start: int, length: int, floor: int | None
    ) -> None:
        """Internal work on s1 (a dedicated sale must move it), often with a floor."""
        body: dict[str, Any] = {
            "tenant": "ops",
            "type": "internal",
            "accelerator": "H100",
            "gpus": gpus,
            "site": "s1",
            "start": at(start),
            "end": at(start + length),
        }
        if floor:
            body["floors"] = [{"gpus": floor}]
        assert self.book(body).status_code == 201

    @initialize(
        gpus=st.sampled_from([0, 16, 32]),
        start=starts,
        length=days,
        presold=st.sampled_from([0, 72, 144]),
    )
    def customers_book_beside_it(self, gpus: int, start: int, length: int, presold: int) -> None:
        """Often a customer block on s1 (failures there then eat into the floor), and GB200s
        of s2's delivery sold ahead (a slip or a power cut then leaves them short)."""
        body: dict[str, Any] = {
            "tenant": "lab",
            "type": "reserved",
            "start": at(start),
            "end": at(start + length),
        }
        if gpus:
            self.book({**body, "accelerator": "H100", "gpus": gpus, "site": "s1"})
        if presold:
            body |= {"accelerator": "GB200", "gpus": presold, "start": at(60), "end": at(90)}
            assert self.book({**body, "site": "s2"}).status_code == 201

    @rule(
        tenant=st.sampled_from(["lab", "coder"]),
        acc=accelerators,
        gpus=gpu_counts,
        unit=units,
        same_fabric=st.booleans(),
        site=maybe_site,
        start=starts,
        length=days,
        nonsense=st.sampled_from([None] * 16 + NONSENSE),
    )
    def book_reserved(
        self,
        tenant: str,
        acc: str,
        gpus: int,
        unit: str,
        same_fabric: bool,
        site: str | None,
        start: int,
        length: int,
        nonsense: tuple[str, dict[str, Any]] | None,
    ) -> None:
        """A reserved block; now and then with a field that makes no sense (422 naming it)."""
        body: dict[str, Any] = {
            "tenant": tenant,
            "type": "reserved",
            "accelerator": acc,
            "gpus": gpus,
            "unit": unit,
            "same_fabric": same_fabric,
            "start": at(start),
            "end": at(start + length),
        }
        if site:
            body["site"] = site
        if nonsense:
            field, change = nonsense
            r = self.book({**body, **change})
            assert r.status_code == 422, r.text
            problem = r.json()
            named = problem["detail"] + " ".join(str(e["loc"]) for e in problem.get("errors", []))
            assert field in named, f"the refusal does not name '{field}': {problem}"
            return
        r = self.book(body)
        assert r.status_code in (201, 409), r.text
        if r.status_code == 201:
            assert r.json()["gpus"] == gpus and sum(c["gpus"] for c in r.json()["claims"]) == gpus

    @rule(
        acc=accelerators,
        gpus=gpu_counts,
        site=maybe_site,
        start=starts,
        length=days,
        floor=st.one_of(
            st.none(),
            st.sampled_from([8, 16, 32]).map(lambda g: {"gpus": g}),
            st.sampled_from(["0.25", "0.5"]).map(lambda s: {"share": s}),
        ),
    )
    def book_internal(
        self,
        acc: str,
        gpus: int,
        site: str | None,
        start: int,
        length: int,
        floor: dict[str, Any] | None,
    ) -> None:
        body: dict[str, Any] = {
            "tenant": "ops",
            "type": "internal",
            "accelerator": acc,
            "gpus": gpus,
            "start": at(start),
            "end": at(start + length),
        }
        if site:
            body["site"] = site
        if floor:
            body["floors"] = [floor]
        r = self.book(body)
        assert r.status_code in (201, 409), r.text

    @rule(site=sites, start=starts, length=days, relocate=st.booleans())
    def book_dedicated_site(self, site: str, start: int, length: int, relocate: bool) -> None:
        r = self.book(
            {
                "tenant": "lab",
                "type": "dedicated-site",
                "site": site,
                "start": at(start),
                "end": at(start + length),
                "relocate_internal": relocate,
            }
        )
        assert r.status_code in (201, 409), r.text
        if r.status_code == 201:
            assert {c["site"] for c in r.json()["claims"]} == {site}
            assert all(c["exclusive"] for c in r.json()["claims"])

    @rule(kind=st.sampled_from(["on-demand", "spot"]), acc=accelerators, gpus=gpu_counts)
    def book_uncommitted(self, kind: str, acc: str, gpus: int) -> None:
        """On-demand and spot hold nothing, so they are always accepted."""
        r = self.book(
            {
                "tenant": "coder",
                "type": kind,
                "accelerator": acc,
                "gpus": gpus,
                "start": at(0),
                "end": at(30),
            }
        )
        assert r.status_code == 201, r.text
        assert r.json()["claims"] == []

    @rule(
        kind=st.sampled_from(["reserved", "reserved", "dedicated-site", "spot"]),
        tenant=st.sampled_from(["lab", "ops"]),
        acc=accelerators,
        gpus=gpu_counts,
        site=maybe_site,
        start=starts,
        length=days,
        then_book=st.booleans(),
    )
    def quote(
        self,
        kind: str,
        tenant: str,
        acc: str,
        gpus: int,
        site: str | None,
        start: int,
        length: int,
        then_book: bool,
    ) -> None:
        """A quote holds nothing; booking its first option right away succeeds."""
        if kind == "dedicated-site" and site is None:
            site = "s3"
        body: dict[str, Any] = {
            "tenant": tenant,
            "type": kind,
            "start_after": at(start),
            "days": length,
        }
        if kind != "dedicated-site":
            body |= {"accelerator": acc, "gpus": gpus}
        if site:
            body["site"] = site
        ledger = self.ledger()
        r = self.call("POST", "/v1/quotes", body)
        assert self.ledger() == ledger, "a quote changed the contracts"
        if kind == "dedicated-site" and tenant == "ops":
            assert r.status_code in (201, 409, 422), r.text
            return
        assert r.status_code == 201, r.text
        out = r.json()
        if not out["options"]:
            gone = out["unavailable"]
            assert gone and gone["detail"].strip(), f"no option and no reason: {out}"
            for m in gone["missing"]:
                assert m["reason"].strip() and (m["missing"] > 0 or kind == "dedicated-site"), m
            return
        for o in out["options"]:
            if kind == "reserved":
                assert o["gpus"] == gpus and sum(p["gpus"] for p in o["pools"]) == gpus, o
                assert hour_of_text(o["start"]) >= hour_of_text(at(start))
        if then_book and kind != "spot":
            self.seq += 1
            r = self.commit_step(
                "POST", "/v1/contracts", {"name": f"c{self.seq}", "quote": out["id"], "option": 1}
            )
            assert r.status_code == 201, f"the quote's first option could not be booked: {r.text}"
            self.contracts.append(r.json()["name"])
            booked, option = r.json(), out["options"][0]
            assert (booked["site"], booked["start"], booked["end"]) == (
                option["site"],
                option["start"],
                option["end"],
            )

    # --- rules: changing what was sold ----------------------------------------------------------

    @precondition(lambda self: self.contracts)
    @rule(i=picks, more=days)
    def extend(self, i: int, more: int) -> None:
        name = self.pick(i)
        c = self.client.get(f"/v1/contracts/{name}").json()
        new_end = datetime.fromisoformat(c["end"].replace("Z", "+00:00")) + timedelta(days=more)
        r = self.commit_step(
            "POST",
            f"/v1/contracts/{name}/amendments",
            {"kind": "extend", "end": new_end.isoformat()},
        )
        assert r.status_code in (200, 409), r.text
        if c["state"] == "cancelled":
            assert r.status_code == 409 and "cancelled" in r.json()["detail"], r.text

    @precondition(lambda self: self.contracts)
    @rule(
        i=picks,
        kind=st.sampled_from(["grow", "shrink"]),
        delta=st.sampled_from([4, 8, 16, 72]),
        effective=st.one_of(st.none(), st.sampled_from([1, 10, 40])),
    )
    def resize(self, i: int, kind: str, delta: int, effective: int | None) -> None:
        name = self.pick(i)
        c = self.client.get(f"/v1/contracts/{name}").json()
        gpus = (c["gpus"] or 0) + (delta if kind == "grow" else -delta)
        body: dict[str, Any] = {"kind": kind, "gpus": gpus}
        if effective is not None:
            body["effective"] = (
                datetime.fromisoformat(c["start"].replace("Z", "+00:00"))
                + timedelta(days=effective)
            ).isoformat()
        r = self.commit_step("POST", f"/v1/contracts/{name}/amendments", body)
        assert r.status_code in (200, 409, 422), r.text
        if r.status_code == 200 and r.json()["type"] in ("reserved", "internal"):
            assert r.json()["gpus"] == gpus

    @precondition(lambda self: self.contracts)
    @rule(i=picks, site=sites)
    def move(self, i: int, site: str) -> None:
        name = self.pick(i)
        r = self.commit_step(
            "POST", f"/v1/contracts/{name}/amendments", {"kind": "move", "site": site}
        )
        assert r.status_code in (200, 409, 422), r.text
        if r.status_code == 200 and r.json()["type"] in ("reserved", "internal"):
            assert {c["site"] for c in r.json()["claims"]} <= {site}

    @precondition(lambda self: self.contracts)
    @rule(i=picks)
    def cancel(self, i: int) -> None:
        name = self.pick(i)
        state = self.client.get(f"/v1/contracts/{name}").json()["state"]
        r = self.commit_step("POST", f"/v1/contracts/{name}/cancel", {"reason": "test"})
        if state == "cancelled":
            assert r.status_code == 409, r.text
        else:
            assert r.status_code == 200, r.text
            assert r.json()["state"] == "cancelled" and r.json()["claims"] == []

    # --- rules: supply changes ------------------------------------------------------------------

    @rule(
        group=st.integers(0, len(GROUPS) - 1),
        first=st.integers(1, 4),
        many=st.integers(1, 4),
        state=st.sampled_from(["failed", "failed", "repair", "available"]),
    )
    def nodes_change_state(self, group: int, first: int, many: int, state: str) -> None:
        """A few nodes of a group fail, go to repair or come back."""
        prefix = GROUPS[group][3]
        for i in range(first, min(first + many, GROUPS[group][7] + 1)):
            r = self.supply_step(
                "PATCH", f"/v1/nodes/{prefix}{i:02d}", {"state": state, "reason": "test"}
            )
            assert r.status_code in (200, 409), r.text

    @rule(group=st.integers(0, len(GROUPS) - 1), fewer=st.integers(1, 3))
    def nodes_retire(self, group: int, fewer: int) -> None:
        """The fleet file lists fewer nodes: the last ones of the group are retired."""
        self.counts[group] = max(1, self.counts[group] - fewer)
        ledger = self.ledger()
        note(f"retire to {self.counts}")
        r = self.client.post(
            "/v1/fleet/apply",
            content=fleet_file(self.counts),
            headers={"Content-Type": "application/yaml"},
        )
        assert r.status_code == 200, r.text
        assert self.ledger() == ledger, "retiring nodes altered contracts or their claims"

    @rule(slip=st.sampled_from([10, 45, 200]))
    def delivery_slips(self, slip: int) -> None:
        later = self.delivery_day + timedelta(days=slip)
        r = self.supply_step("PATCH", f"/v1/deliveries/{DELIVERY}", {"expected_on": str(later)})
        if r.status_code == 200:
            self.delivery_day = later

    @rule(change=st.sampled_from([{"nodes": 18}, {"nodes": 1}, {"state": "cancelled"}]))
    def delivery_shrinks(self, change: dict[str, Any]) -> None:
        r = self.supply_step("PATCH", f"/v1/deliveries/{DELIVERY}", change)
        assert r.status_code in (200, 409, 422), r.text

    @rule(site=sites, data=st.data())
    def power_is_cut(self, site: str, data: st.DataObject) -> None:
        mw = data.draw(st.sampled_from(POWER_CUTS[site]))
        r = self.supply_step("PATCH", f"/v1/sites/{site}", {"power_mw": mw})
        assert r.status_code in (200, 409), r.text

    # --- after every step -----------------------------------------------------------------------

    @invariant()
    def calendar_agrees_with_the_oracle(self) -> None:
        facts = self.facts()
        self.conflicts_are_what_the_oracle_finds(facts)
        self.capacity_report_agrees_with_the_oracle(facts)

    def conflicts_are_what_the_oracle_finds(self, facts: oracle.Facts) -> None:
        now = hour_now()
        found = oracle.broken_from(facts, now)
        r = self.call("GET", "/v1/capacity/conflicts")
        assert r.status_code == 200, r.text
        conflicts = r.json()
        reported = {(c["kind"], c["site"], c["accelerator"], c["fabric"]) for c in conflicts}
        assert reported == {b.key for b in found}, (
            f"reported only: {reported - {b.key for b in found}}; "
            f"oracle only: {[b for b in found if b.key not in reported][:3]}"
        )
        spans = [
            (key, hour_of_text(c["start"]), hour_of_text(c["end"]), c)
            for c in conflicts
            for key in [(c["kind"], c["site"], c["accelerator"], c["fabric"])]
        ]
        for b in found:
            assert any(k == b.key and a <= b.hour < z for k, a, z, _ in spans), (
                f"the oracle finds {b}, no conflict covers that hour"
            )
        hours = facts.breakpoints(now)
        for key, a, z, c in spans:
            inside = [h for h in hours if a <= h < z] or [a]
            worst = max(
                (b.amount for b in oracle.broken(facts, [a, *inside]) if b.key == key),
                default=None,
            )
            assert worst is not None, f"conflict {c} but the oracle finds nothing at {a}"
            if c["unit"] == "gpus":
                assert Decimal(c["amount"]) == worst, f"{c}: the oracle's worst is {worst}"
            elif c["unit"] == "mw":
                pue = next(s.pue for s in facts.sites.values() if s.name == c["site"])
                mw = (Decimal(worst) * pue / 1_000_000).quantize(Decimal("0.001"), ROUND_HALF_EVEN)
                assert Decimal(c["amount"]) == mw, f"{c}: the oracle's worst is {worst} W"
            assert c["contracts"], f"a conflict that names no contract: {c}"
            names = set(facts.contracts.values())
            for short in c["contracts"]:
                assert short["contract"] in names and short["short_gpus"] > 0, c

    def capacity_report_agrees_with_the_oracle(self, facts: oracle.Facts) -> None:
        """Supply and commitments per pool, for the hour at which the most is committed."""
        hours = facts.breakpoints(hour_now(), hour_now() + 3 * 8760)
        hours = [max(hours, key=lambda h: sum(c.gpus for c in facts.claims if c.active(h)))]
        names = {sid: s.name for sid, s in facts.sites.items()}
        for h in hours:
            start = datetime.fromtimestamp(h * 3600, UTC)
            r = self.call(
                "GET",
                f"/v1/capacity?start={start:%Y-%m-%dT%H:%M:%SZ}"
                f"&end={start + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}&step=hour",
            )
            assert r.status_code == 200, r.text
            got = {
                (p["site"], p["accelerator"], p["fabric"]): (
                    p["series"][0]["supply"],
                    p["series"][0]["committed"],
                )
                for p in r.json()["pools"]
            }
            for key, pool in facts.pools.items():
                name = (names[key[0]], facts.accelerators[key[1]], key[2])
                committed = sum(c.gpus for c in facts.claims if c.pool == key and c.active(h))
                if name in got or pool.supply(h) or committed:
                    assert got.get(name) == (pool.supply(h), committed), (
                        f"{name} at {start}: report {got.get(name)}, "
                        f"oracle {(pool.supply(h), committed)}"
                    )


def run(databases: Databases, examples: int, steps: int) -> None:
    BookingMachine.databases = databases
    run_state_machine_as_test(
        BookingMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_bookings_never_oversell_and_refusals_say_why_on_sqlite(sqlite_world: Databases) -> None:
    run(sqlite_world, examples=25, steps=20)


@pytest.mark.postgres
def test_bookings_never_oversell_and_refusals_say_why_on_postgresql(pg_world: Databases) -> None:
    run(pg_world, examples=6, steps=15)


@pytest.mark.slow
def test_long_random_histories(sqlite_world: Databases) -> None:
    run(sqlite_world, examples=200, steps=40)


def test_the_fleet_file_builds_the_world(sqlite_world: Databases) -> None:
    """The fleet the machine starts from, as the calendar sees it (guards the fixtures)."""
    url = sqlite_world.make()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            facts = oracle.load(conn)
    finally:
        engine.dispose()
        sqlite_world.drop(url)
    names = {sid: s.name for sid, s in facts.sites.items()}
    later = oracle.hour_of(DELIVERY_DAY) + 1
    supply = {
        (names[k[0]], facts.accelerators[k[1]], k[2]): p.supply(later)
        for k, p in facts.pools.items()
    }
    assert supply == {
        ("s1", "H100", "h1"): 96,
        ("s1", "H100", "h2"): 32,
        ("s2", "H100", "h1"): 32,
        ("s2", "GB200", "nvl"): 72,
        ("s2", "GB200", "nvl2"): 144,
        ("s3", "H100", "h1"): 32,
    }
    assert facts.pools[next(k for k in facts.pools if k[2] == "nvl2")].watts_per_gpu == 1650
    assert date.fromisoformat(str(S3_LIVE)) > NOW.date()
