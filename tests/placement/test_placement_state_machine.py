"""Random sequences of bookings, cancellations, node failures, repairs, spot and reconciles
through the HTTP API, with placement's invariants checked from the database after each step:

- a node belongs to at most one contract at a time, and only to one whose claims in force
  hold the node's pool (so a healed allocation still meets its one-fabric constraint);
- a block contract holds whole blocks only;
- a node's state says whether a contract holds it;
- a running spot lease is on a healthy node, and a preempted one ended exactly at the end of
  its notice, never later;
- a node lent to spot stays allocated to its owner only; spot never runs, without notice, on
  a node that anyone but its lender holds; only lendable contracts lend, and only nodes
  whose telemetry showed them idle (no telemetry: never lent);
- a contract is marked degraded exactly when it holds fewer usable GPUs than it bought;
- no answer is a 5xx.

Each example starts from a fresh copy of a database holding the fleet below.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from neocloud.api.app import create_app
from neocloud.config import Settings
from neocloud.db.engine import make_engine
from neocloud.placement.idle import MIN_SAMPLES_PER_GPU, Thresholds
from tests.conftest import ADMIN_TOKEN
from tests.metering.helpers import TELEMETRY, iso

FLEET = """\
apiVersion: neocloud/v1
sites:
  - name: p1
    location: Test
    power_mw: 2
    pue: 1.2
    spare_pct: 10
    state: live
    dates: {live: 2024-01-01}
    fabrics:
      - name: f1
        blocks: {name: "b{i}", count: 3, nodes: {name: "p1-f1-{block}-n{i}", count: 4, accelerator: H100, gpus: 8, power_kw: 10.2}}
      - name: f2
        blocks: {name: "b{i}", count: 2, nodes: {name: "p1-f2-{block}-n{i}", count: 4, accelerator: H100, gpus: 8, power_kw: 10.2}}
  - name: p2
    location: Test
    power_mw: 2
    pue: 1.2
    state: live
    dates: {live: 2024-01-01}
    fabrics:
      - name: nvl
        blocks: {name: "r{i}", count: 2, nodes: {name: "p2-{block}-t{i:02d}", count: 18, accelerator: GB200, gpus: 4, power_kw: 6.6}}
"""
NODES = [f"p1-f1-b{b}-n{i}" for b in (1, 2, 3) for i in (1, 2, 3, 4)]
NODES += [f"p1-f2-b{b}-n{i}" for b in (1, 2) for i in (1, 2, 3, 4)]
H100_NODES = list(NODES)
NODES += [f"p2-r{b}-t{i:02d}" for b in (1, 2) for i in range(1, 19)]
IDLE = Thresholds()


def telemetry(node: str, minutes_ago: tuple[int, ...], util: float) -> list[dict[str, Any]]:
    """Samples of every GPU of an H100 node (8), as its agent would send them."""
    now = datetime.now(UTC)
    return [
        {
            "specversion": "1.0",
            "id": uuid.uuid4().hex,
            "source": f"agent://{node}",
            "type": TELEMETRY,
            "time": iso(now - timedelta(minutes=m)),
            "data": {
                "node": node,
                "gpu": gpu,
                "utilization_pct": util,
                "memory_used_mib": 200 if util < IDLE.util_pct else 60_000,
                "power_w": 100.0,
                "temperature_c": 40.0,
            },
        }
        for gpu in range(8)
        for m in minutes_ago
    ]


def this_hour(days: int = 0) -> str:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=days)
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


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


class PlacementMachine(RuleBasedStateMachine):
    world: ClassVar[Path]
    folder: ClassVar[Path]
    loans: ClassVar[int] = 0
    """Lent leases seen across the run (the test checks that lending was exercised)."""

    @initialize()
    def start(self) -> None:
        target = self.folder / f"example-{uuid.uuid4().hex[:10]}.db"
        shutil.copyfile(self.world, target)
        self.file = target
        self.url = f"sqlite:///{target}"
        self.client, self._close = new_client(self.url)
        self.engine = make_engine(self.url)
        self.contracts: list[str] = []
        self.n = 0

    def teardown(self) -> None:
        if hasattr(self, "client"):
            self._close()
            self.engine.dispose()
            self.file.unlink(missing_ok=True)

    def call(self, method: str, path: str, json: Any = None) -> Any:
        r = self.client.request(method, path, json=json)
        assert r.status_code < 500, f"{method} {path}: {r.status_code} {r.text}"
        return r

    def book(self, fields: dict[str, Any]) -> None:
        self.n += 1
        name = f"c{self.n}"
        body = {
            "name": name,
            "tenant": "lab",
            "start": this_hour(),
            "end": this_hour(days=30),
            **fields,
        }
        r = self.call("POST", "/v1/contracts", body)
        assert r.status_code in (201, 409), r.text
        if r.status_code == 201:
            self.contracts.append(name)

    # --- rules -------------------------------------------------------------------------------

    @rule(nodes=st.integers(1, 6), same_fabric=st.booleans())
    def book_nodes(self, nodes: int, same_fabric: bool) -> None:
        self.book(
            {
                "type": "reserved",
                "accelerator": "H100",
                "gpus": 8 * nodes,
                "unit": "node",
                "site": "p1",
                "same_fabric": same_fabric,
            }
        )

    @rule(gpus=st.integers(1, 20))
    def book_gpus(self, gpus: int) -> None:
        self.book({"type": "reserved", "accelerator": "H100", "gpus": gpus, "site": "p1"})

    @rule()
    def book_rack(self) -> None:
        self.book(
            {"type": "reserved", "accelerator": "GB200", "gpus": 72, "unit": "block", "site": "p2"}
        )

    @rule(gpus=st.sampled_from([8, 16, 24]), notice=st.sampled_from([0, 30]))
    def book_spot(self, gpus: int, notice: int) -> None:
        self.book(
            {
                "type": "spot",
                "accelerator": "H100",
                "gpus": gpus,
                "site": "p1",
                "notice_minutes": notice,
            }
        )

    @rule(nodes=st.integers(2, 10))
    def book_lendable(self, nodes: int) -> None:
        self.book(
            {
                "type": "reserved",
                "accelerator": "H100",
                "gpus": 8 * nodes,
                "unit": "node",
                "site": "p1",
                "lendable": True,
            }
        )

    @rule(node=st.sampled_from(H100_NODES))
    def node_idle(self, node: str) -> None:
        """The node's GPUs sat idle for the last half hour."""
        r = self.call("POST", "/v1/usage/events", telemetry(node, (28, 15, 1), 0.0))
        assert r.status_code == 200, r.text

    @rule()
    def crowd(self) -> None:
        """A lendable contract takes what is left of p1's H100 and sits idle on it, while a
        spot contract waits for capacity."""
        for nodes in range(18, 1, -1):
            before = len(self.contracts)
            self.book_lendable(nodes)
            if len(self.contracts) > before:
                break
        self.book_spot(16, 30)
        events = [e for node in H100_NODES for e in telemetry(node, (28, 15, 1), 0.0)]
        r = self.call("POST", "/v1/usage/events", events)
        assert r.status_code == 200, r.text

    @rule(node=st.sampled_from(H100_NODES))
    def node_busy(self, node: str) -> None:
        """Work starts on the node (the owner's, or the spot tenant's)."""
        r = self.call("POST", "/v1/usage/events", telemetry(node, (0,), 95.0))
        assert r.status_code == 200, r.text

    @rule(data=st.data())
    def reclaim(self, data: st.DataObject) -> None:
        if not self.contracts:
            return
        name = data.draw(st.sampled_from(self.contracts))
        r = self.call("POST", f"/v1/contracts/{name}/reclaim", {})
        assert r.status_code in (200, 409), r.text
        for node in r.json().get("nodes", []) if r.status_code == 200 else []:
            assert node["until"] >= node["notice_at"]

    @rule(node=st.sampled_from(NODES))
    def fail_another(self, node: str) -> None:
        self.fail(node)

    @rule(node=st.sampled_from(NODES))
    def fail(self, node: str) -> None:
        r = self.call("POST", f"/v1/nodes/{node}/fail", {"reason": "random"})
        assert r.status_code in (200, 409), r.text

    @rule(node=st.sampled_from(NODES))
    def repair(self, node: str) -> None:
        r = self.call("POST", f"/v1/nodes/{node}/repair", {})
        assert r.status_code in (200, 409), r.text

    @rule()
    def reconcile(self) -> None:
        r = self.call("POST", "/v1/placement/reconcile", {})
        assert r.status_code == 200, r.text
        # A reconcile right after changes nothing more.
        again = self.call("POST", "/v1/placement/reconcile", {}).json()
        assert all(s["changes"] == [] for s in again["sites"]), again
        self.check_degraded()

    @rule(minutes=st.sampled_from([31, 90]))
    def later(self, minutes: int) -> None:
        """A reconcile some time from now (spot notices run out)."""
        from neocloud.auth.principal import SYSTEM
        from neocloud.db.engine import make_sessionmaker, transaction
        from neocloud.placement import service

        with transaction(make_sessionmaker(self.engine)) as session:
            service.reconcile(
                session, actor=SYSTEM, now=datetime.now(UTC) + timedelta(minutes=minutes)
            )

    # --- invariants --------------------------------------------------------------------------

    def rows(self, sql: str) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql)))

    @invariant()
    def a_node_is_held_by_one_contract_of_its_pool(self) -> None:
        if not hasattr(self, "engine"):
            return
        open_rows = self.rows(
            "SELECT a.node_id, a.contract_id, n.site_id, n.accelerator_id, f.name "
            "FROM allocations a JOIN nodes n ON n.id = a.node_id "
            "JOIN fabrics f ON f.id = n.fabric_id WHERE a.until IS NULL"
        )
        nodes = [r[0] for r in open_rows]
        assert len(nodes) == len(set(nodes)), "a node with two open allocations"
        pools = {
            (cid, sid, acc, fabric)
            for cid, sid, acc, fabric in self.rows(
                "SELECT contract_id, site_id, accelerator_id, fabric FROM capacity_claims"
            )
        }
        for node, cid, sid, acc, fabric in open_rows:
            if cid is not None:
                assert (cid, sid, acc, fabric) in pools, (
                    f"node {node} outside contract {cid}'s pools"
                )

    @invariant()
    def block_contracts_hold_whole_blocks(self) -> None:
        if not hasattr(self, "engine"):
            return
        held = self.rows(
            "SELECT n.block_id, a.contract_id FROM allocations a "
            "JOIN nodes n ON n.id = a.node_id JOIN contracts c ON c.id = a.contract_id "
            "WHERE a.until IS NULL AND c.unit = 'block'"
        )
        for block, cid in set(held):
            owners = self.rows(
                "SELECT a.contract_id FROM nodes n LEFT JOIN allocations a "
                f"ON a.node_id = n.id AND a.until IS NULL WHERE n.block_id = {block}"
            )
            assert {o[0] for o in owners} == {cid}, f"block {block} shared: {owners}"

    @invariant()
    def node_states_follow_their_allocation(self) -> None:
        if not hasattr(self, "engine"):
            return
        for name, state, cid in self.rows(
            "SELECT n.name, n.state, a.contract_id FROM nodes n LEFT JOIN allocations a "
            "ON a.node_id = n.id AND a.until IS NULL"
        ):
            if state == "allocated":
                assert cid is not None, f"{name} allocated to nobody"
            if cid is not None and state == "available":
                raise AssertionError(f"{name} held by {cid} but available")

    @invariant()
    def spot_never_outlives_its_notice(self) -> None:
        if not hasattr(self, "engine"):
            return
        for node, state in self.rows(
            "SELECT n.name, n.state FROM spot_leases s JOIN nodes n ON n.id = s.node_id "
            "WHERE s.ended_at IS NULL"
        ):
            assert state in ("available", "allocated"), f"spot running on {state} node {node}"
        for notice_at, ends_at, ended_at, minutes in self.rows(
            "SELECT s.notice_at, s.ends_at, s.ended_at, c.notice_minutes FROM spot_leases s "
            "JOIN contracts c ON c.id = s.contract_id WHERE s.preempted"
        ):

            def t(v: Any) -> datetime:
                return v if isinstance(v, datetime) else datetime.fromisoformat(str(v))

            assert t(ended_at) == t(ends_at) == t(notice_at) + timedelta(minutes=minutes)

    @invariant()
    def lent_nodes_stay_their_owners(self) -> None:
        if not hasattr(self, "engine"):
            return
        for node, lender, holder, kind, noticed, lendable in self.rows(
            "SELECT s.node_id, s.lent_by_contract_id, a.contract_id, a.kind, s.notice_at, "
            "c.lendable FROM spot_leases s "
            "LEFT JOIN allocations a ON a.node_id = s.node_id AND a.until IS NULL "
            "LEFT JOIN contracts c ON c.id = s.lent_by_contract_id WHERE s.ended_at IS NULL"
        ):
            if lender is not None:
                type(self).loans += 1
            if noticed is None and kind is not None:
                # Running without notice on a held node: only on its lender's, still lendable.
                assert kind == "contract" and holder == lender, (node, lender, holder, kind)
                assert lendable, f"node {node} lent by a contract that is not lendable"
        assert (
            self.rows(
                "SELECT node_id FROM spot_leases WHERE ended_at IS NULL "
                "GROUP BY node_id HAVING count(*) > 1"
            )
            == []
        ), "two running leases on one node"
        # Ever: only lendable contracts lent (the API never turns lendable off).
        assert (
            self.rows(
                "SELECT s.id FROM spot_leases s JOIN contracts c ON c.id = s.lent_by_contract_id "
                "WHERE NOT c.lendable"
            )
            == []
        )

    @invariant()
    def only_nodes_seen_idle_are_lent(self) -> None:
        if not hasattr(self, "engine"):
            return

        def t(v: Any) -> datetime:
            v = v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
            return v if v.tzinfo else v.replace(tzinfo=UTC)

        for node, started in self.rows(
            "SELECT node_id, started_at FROM spot_leases WHERE lent_by_contract_id IS NOT NULL"
        ):
            began = t(started)
            samples = [
                (t(at), util)
                for at, util in self.rows(
                    "SELECT event_time, utilization_pct FROM telemetry_samples "
                    f"WHERE node_id = {node}"
                )
                if began - IDLE.window <= t(at) <= began
            ]
            assert len(samples) >= MIN_SAMPLES_PER_GPU * 8, f"node {node} lent unseen"
            # Event times are whole seconds: a sample sent just after the lease began may
            # carry the lease's own second, so only those before it are the lender's.
            before = [util for at, util in samples if at <= began - timedelta(seconds=1)]
            assert all(util < IDLE.util_pct for util in before), f"busy node {node} lent"

    @invariant()
    def one_open_degradation_per_contract(self) -> None:
        if not hasattr(self, "engine"):
            return
        rows = self.rows(
            "SELECT contract_id, count(*) FROM degradations WHERE ended_at IS NULL "
            "GROUP BY contract_id HAVING count(*) > 1"
        )
        assert rows == []

    def check_degraded(self) -> None:
        degraded = {d["contract"] for d in self.call("GET", "/v1/placement/degraded").json()}
        for name in self.contracts:
            a = self.call("GET", f"/v1/contracts/{name}/allocation").json()
            if a["contracted_gpus"] and a["state"] != "cancelled":
                short = a["usable_gpus"] < a["contracted_gpus"]
                body = self.call("GET", f"/v1/contracts/{name}").json()
                if body["type"] == "spot":
                    continue
                assert short == (name in degraded), (name, a, degraded)


def test_placement_invariants_hold_through_random_histories(
    sqlite_template: Path, tmp_path: Path
) -> None:
    world = tmp_path / "world.db"
    shutil.copyfile(sqlite_template, world)
    client, close = new_client(f"sqlite:///{world}")
    try:
        r = client.post(
            "/v1/fleet/apply", content=FLEET, headers={"Content-Type": "application/yaml"}
        )
        assert r.status_code == 200, r.text
        r = client.post(
            "/v1/tenants", json={"name": "lab", "display_name": "Lab", "kind": "customer"}
        )
        assert r.status_code == 201, r.text
    finally:
        close()
    PlacementMachine.world, PlacementMachine.folder = world, tmp_path
    PlacementMachine.loans = 0
    run_state_machine_as_test(
        PlacementMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    assert PlacementMachine.loans > 0, "no history lent an idle node: the lending rules went unused"
