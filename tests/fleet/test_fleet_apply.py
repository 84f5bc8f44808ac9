"""The fleet file: idempotent apply, differences, line-numbered errors, nothing half-applied.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from neocloud.auth.models import AuditEvent
from neocloud.auth.principal import SYSTEM
from neocloud.core.errors import Conflict, InvalidInput
from neocloud.db.engine import transaction
from neocloud.fleet.apply import apply_fleet_file
from neocloud.fleet.models import Delivery, DeliveryState, Node, NodeState, Site

FLEET = textwrap.dedent(
    """\
    apiVersion: neocloud/v1
    accelerators:
      - {name: X9, vendor: Acme, memory_gb: 96, tdp_w: 800, bf16_tflops: 1200}
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
              count: 3
              nodes: {name: "{fabric}-{block}-n{i}", count: 4, accelerator: H100, gpus: 8, power_kw: 10.2}
      - name: beta
        location: Orbit
        power_mw: 1
        pue: 1.1
        fabrics:
          - name: nvl
            blocks:
              - name: r1
                nodes:
                  - {name: "beta-r1-t{i:02d}", count: 18, accelerator: GB200, gpus: 4, power_kw: 6.6}
                  - {name: "beta-r1-x{i}", count: 2, accelerator: X9, gpus: 8, power_kw: 9}
    deliveries:
      - {name: d1, site: beta, accelerator: GB300, nodes: 36, gpus_per_node: 4, power_kw_per_node: 7.3, expected_on: 2027-03-01}
    """
)


def apply(factory: sessionmaker[Session], text: str, dry_run: bool = False) -> dict[str, Any]:
    with transaction(factory) as s:
        return apply_fleet_file(s, actor=SYSTEM, text=text, dry_run=dry_run).summary()


def count(factory: sessionmaker[Session], stmt: Any) -> int:
    with factory() as s:
        return int(s.scalar(stmt) or 0)


def test_first_apply_creates_the_whole_fleet(factory: sessionmaker[Session]) -> None:
    result = apply(factory, FLEET)
    assert result["applied"] is True
    c = result["counts"]
    assert (c["sites_created"], c["fabrics_created"], c["blocks_created"], c["nodes_created"]) == (
        2,
        3,
        7,
        44,
    )
    assert c["gpus_created"] == 24 * 8 + 18 * 4 + 2 * 8
    assert c["deliveries_created"] == 1 and c["accelerators_created"] == 1
    assert (
        count(
            factory,
            sa.select(sa.func.sum(Node.gpus)).where(
                Node.site_id == sa.select(Site.id).where(Site.name == "alpha").scalar_subquery()
            ),
        )
        == 192
    )
    with factory() as s:
        node = s.scalar(sa.select(Node).where(Node.name == "f02-b3-n4"))
        assert node is not None and node.state is NodeState.AVAILABLE and node.gpus == 8


def test_applying_the_same_file_twice_changes_nothing(factory: sessionmaker[Session]) -> None:
    apply(factory, FLEET)
    audit_before = count(factory, sa.select(sa.func.count()).select_from(AuditEvent))
    again = apply(factory, FLEET)
    assert again["changed"] is False and again["applied"] is False
    assert all(v == 0 for v in again["counts"].values())
    assert count(factory, sa.select(sa.func.count()).select_from(AuditEvent)) == audit_before


def test_a_changed_file_applies_only_the_difference(factory: sessionmaker[Session]) -> None:
    apply(factory, FLEET)
    changed = (
        FLEET.replace("count: 3", "count: 2")
        .replace("power_mw: 2\n", "power_mw: 3\n")
        .replace("2027-03-01", "2027-06-01")
    )
    plan = apply(factory, changed, dry_run=True)
    assert plan["applied"] is False and plan["changed"] is True
    assert plan["counts"]["nodes_retired"] == 8  # block b3 of both fabrics: 2 x 4 nodes
    assert (
        count(
            factory,
            sa.select(sa.func.count()).select_from(Node).where(Node.state == NodeState.RETIRED),
        )
        == 0
    )  # dry run
    result = apply(factory, changed)
    c = result["counts"]
    assert (
        c["nodes_created"],
        c["nodes_retired"],
        c["sites_updated"],
        c["deliveries_updated"],
    ) == (0, 8, 1, 1)
    site_change = next(ch for ch in result["changes"] if ch["kind"] == "site")
    assert site_change["before"] == {"power_mw": "2"} and site_change["after"] == {"power_mw": "3"}
    assert (
        count(
            factory,
            sa.select(sa.func.count()).select_from(Node).where(Node.state == NodeState.RETIRED),
        )
        == 8
    )
    with factory() as s:
        assert (
            str(s.scalar(sa.select(Delivery.expected_on).where(Delivery.name == "d1")))
            == "2027-06-01"
        )
    # putting the nodes back revives them instead of creating new ones
    back = apply(factory, FLEET)
    assert back["counts"]["nodes_updated"] == 8 and back["counts"]["nodes_created"] == 0
    assert (
        count(
            factory,
            sa.select(sa.func.count()).select_from(Node).where(Node.state == NodeState.RETIRED),
        )
        == 0
    )


def test_deliveries_dropped_from_the_file_are_cancelled(factory: sessionmaker[Session]) -> None:
    apply(factory, FLEET)
    without = FLEET.split("deliveries:")[0]
    result = apply(factory, without)
    assert result["counts"]["deliveries_cancelled"] == 1
    with factory() as s:
        assert (
            s.scalar(sa.select(Delivery.state).where(Delivery.name == "d1"))
            is DeliveryState.CANCELLED
        )


def test_sites_not_named_in_the_file_are_left_alone(factory: sessionmaker[Session]) -> None:
    apply(factory, FLEET)
    text = FLEET.replace("  - name: alpha", "  - name: gamma").replace("Memphis, TN", "Elsewhere")
    text = text.replace("{fabric}-{block}-n{i}", "g-{fabric}-{block}-n{i}")
    result = apply(factory, text)
    assert result["counts"]["sites_created"] == 1
    assert (
        count(
            factory,
            sa.select(sa.func.count()).select_from(Node).where(Node.state == NodeState.RETIRED),
        )
        == 0
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("sites: [\n", "not valid YAML: line 2"),
        (
            "sites:\n  - name: a\n    location: x\n    power_mw: 1\n    pue: 1.1\n    colour: red\n",
            "line 6: sites[0].colour: unknown field",
        ),
        (
            "sites:\n  - name: a\n    location: x\n    power_mw: -5\n    pue: 1.1\n",
            "line 4: sites[0].power_mw",
        ),
        (
            "sites:\n  - name: a\n    location: x\n    power_mw: 1\n    pue: 1.1\n    fabrics:\n      - name: f\n        blocks:\n          - name: b\n            nodes: {count: 2, accelerator: H100, gpus: 0, power_kw: 10}\n",
            "line 10: sites[0].fabrics[0].blocks[0].nodes[0].gpus",
        ),
        (
            "sites:\n  - name: a\n    location: x\n    power_mw: 1\n    pue: 1.1\n    fabrics:\n      - name: f\n        blocks:\n          - name: b\n            nodes: {count: 2, accelerator: Z1, gpus: 8, power_kw: 10}\n",
            "line 10: unknown accelerator 'Z1'",
        ),
        (
            "sites:\n  - name: a\n    location: x\n    power_mw: 1\n    pue: 1.1\n    fabrics:\n      - name: f\n        blocks:\n          - name: b\n            nodes: {name: same, count: 2, accelerator: H100, gpus: 8, power_kw: 10}\n",
            "has no {i}",
        ),
        (
            "sites:\n  - name: a\n    location: x\n    power_mw: 1\n    pue: 1.1\n  - name: a\n    location: y\n    power_mw: 1\n    pue: 1.1\n",
            "line 6: site 'a' is defined twice",
        ),
        (
            "sites:\n  - name: a\n    location: x\n    power_mw: 1\n    location: y\n",
            "duplicate key 'location'",
        ),
        (
            "deliveries:\n  - {name: d, site: nowhere, accelerator: H100, nodes: 1, gpus_per_node: 8, power_kw_per_node: 10, expected_on: 2027-01-01}\n",
            "line 2: unknown site 'nowhere'",
        ),
        ("- just a list\n", "must be a mapping"),
        (
            "sites:\n  - name: a\n    location: x\n    power_mw: 1\n    pue: 1.1\n    fabrics:\n      - name: f\n        blocks:\n          - name: b\n            nodes: {name: 'n{j}', count: 1, accelerator: H100, gpus: 8, power_kw: 10}\n",
            "unknown placeholder {j}",
        ),
    ],
)
def test_bad_files_name_the_line_and_change_nothing(
    factory: sessionmaker[Session], text: str, fragment: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        apply(factory, text)
    assert fragment in err.value.detail
    assert count(factory, sa.select(sa.func.count()).select_from(Site)) == 0


def test_an_over_power_site_is_refused_with_the_figures(factory: sessionmaker[Session]) -> None:
    # 24 nodes x 10.2 kW = 244.8 kW of IT load; x PUE 1.2 = 0.294 MW of facility power
    text = FLEET.replace("power_mw: 2\n", "power_mw: 0.25\n")
    with pytest.raises(InvalidInput) as err:
        apply(factory, text)
    assert (
        "site 'alpha' would draw 0.294 MW (0.245 MW of IT load x PUE 1.2) but its facility power is 0.25 MW"
        in err.value.detail
    )
    assert "line 7" in err.value.detail
    assert count(factory, sa.select(sa.func.count()).select_from(Node)) == 0


def test_allocated_nodes_cannot_be_removed_by_the_file(factory: sessionmaker[Session]) -> None:
    apply(factory, FLEET)
    with transaction(factory) as s:
        s.execute(sa.update(Node).where(Node.name == "f01-b3-n1").values(state=NodeState.ALLOCATED))
    with pytest.raises(Conflict) as err:
        apply(factory, FLEET.replace("count: 3", "count: 2"))
    assert "f01-b3-n1" in err.value.detail and "drain" in err.value.detail
    assert (
        count(
            factory,
            sa.select(sa.func.count()).select_from(Node).where(Node.state == NodeState.RETIRED),
        )
        == 0
    )


def test_a_site_cannot_move_backwards_in_its_lifecycle(factory: sessionmaker[Session]) -> None:
    apply(factory, FLEET)
    with pytest.raises(InvalidInput) as err:
        apply(factory, FLEET.replace("state: live", "state: building"))
    assert "cannot go from live to building" in err.value.detail


def test_built_in_accelerators_cannot_be_redefined(factory: sessionmaker[Session]) -> None:
    with pytest.raises(InvalidInput) as err:
        apply(
            factory,
            "accelerators:\n  - {name: H100, vendor: NVIDIA, memory_gb: 96, tdp_w: 700, bf16_tflops: 989}\n",
        )
    assert "built-in" in err.value.detail
