"""The difference between a fleet file and the fleet as stored: what apply would change.

Pure: takes the expanded file and a snapshot of the database, returns a plan. Applying the
same file twice yields an empty plan; the plan is what `--dry-run` prints.

A fleet file owns the sites it names: inside them, nodes it no longer lists are retired
(kept for history) and scheduled deliveries it no longer lists are cancelled. Sites it does
not name are left as they are, so a fleet can be kept as one file per site.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from neocloud.core.units import facility_mw
from neocloud.fleet.expand import DesiredFleet, DesiredNode, PathT
from neocloud.fleet.lifecycle import site_move_allowed
from neocloud.fleet.models import DeliveryState, NodeState, SiteState
from neocloud.fleet.spec import FleetFile

SITE_FIELDS = (
    "display_name",
    "location",
    "power_mw",
    "pue",
    "spare_pct",
    "state",
    "planned_on",
    "building_on",
    "live_on",
    "draining_on",
    "retired_on",
)
DELIVERY_FIELDS = (
    "site",
    "fabric",
    "accelerator",
    "nodes",
    "gpus_per_node",
    "power_kw_per_node",
    "expected_on",
    "supplier",
    "state",
)
ACCELERATOR_FIELDS = ("vendor", "memory_gb", "tdp_w", "bf16_tflops")


@dataclass(frozen=True, slots=True)
class StoredNode:
    id: int
    name: str
    site: str
    fabric: str
    block: str
    accelerator: str
    gpus: int
    power_kw: Decimal
    state: NodeState


@dataclass
class Snapshot:
    """What the database holds, in names rather than ids."""

    accelerators: dict[str, dict[str, Any]]  # name -> fields + builtin
    sites: dict[str, dict[str, Any]]  # name -> SITE_FIELDS
    fabrics: set[tuple[str, str]]
    blocks: set[tuple[str, str, str]]
    nodes: dict[str, StoredNode]
    deliveries: dict[str, dict[str, Any]]  # name -> DELIVERY_FIELDS


class PlanError(Exception):
    """The file cannot be applied; `conflict` marks clashes with live state (HTTP 409)."""

    def __init__(self, path: PathT, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.conflict = conflict


@dataclass
class FleetPlan:
    accelerators_create: list[dict[str, Any]] = field(default_factory=list)
    accelerators_update: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(
        default_factory=list
    )
    sites_create: list[dict[str, Any]] = field(default_factory=list)
    sites_update: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    fabrics_create: list[tuple[str, str]] = field(default_factory=list)
    blocks_create: list[tuple[str, str, str]] = field(default_factory=list)
    nodes_create: list[DesiredNode] = field(default_factory=list)
    nodes_update: list[tuple[StoredNode, DesiredNode, list[str]]] = field(default_factory=list)
    nodes_retire: list[StoredNode] = field(default_factory=list)
    deliveries_create: list[dict[str, Any]] = field(default_factory=list)
    deliveries_update: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(
        default_factory=list
    )
    deliveries_cancel: list[str] = field(default_factory=list)
    engines_set: list[tuple[str, str, dict[str, Any] | None, dict[str, Any]]] = field(
        default_factory=list
    )
    """(site, fabric, before, after) of fabrics whose `engine:` the file sets or changes."""
    engines_unset: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(getattr(self, f) for f in self.__dataclass_fields__)

    def summary(self, sample: int = 3) -> dict[str, Any]:
        """A printable account of the change: counts, and object-level details."""
        return {
            "changed": not self.empty,
            "counts": {
                "accelerators_created": len(self.accelerators_create),
                "accelerators_updated": len(self.accelerators_update),
                "sites_created": len(self.sites_create),
                "sites_updated": len(self.sites_update),
                "fabrics_created": len(self.fabrics_create),
                "blocks_created": len(self.blocks_create),
                "nodes_created": len(self.nodes_create),
                "nodes_updated": len(self.nodes_update),
                "nodes_retired": len(self.nodes_retire),
                "gpus_created": sum(n.gpus for n in self.nodes_create),
                "gpus_retired": sum(n.gpus for n in self.nodes_retire),
                "deliveries_created": len(self.deliveries_create),
                "deliveries_updated": len(self.deliveries_update),
                "deliveries_cancelled": len(self.deliveries_cancel),
                "engines_set": len(self.engines_set),
                "engines_unset": len(self.engines_unset),
            },
            "changes": self._changes(sample),
        }

    def _changes(self, sample: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for a in self.accelerators_create:
            out.append(
                {"op": "create", "kind": "accelerator", "name": a["name"], "after": _jsonable(a)}
            )
        for name, before, after in self.accelerators_update:
            out.append(
                {
                    "op": "update",
                    "kind": "accelerator",
                    "name": name,
                    "before": _jsonable(before),
                    "after": _jsonable(after),
                }
            )
        for s in self.sites_create:
            out.append({"op": "create", "kind": "site", "name": s["name"], "after": _jsonable(s)})
        for name, before, after in self.sites_update:
            out.append(
                {
                    "op": "update",
                    "kind": "site",
                    "name": name,
                    "before": _jsonable(before),
                    "after": _jsonable(after),
                }
            )
        for op, nodes in (("create", self.nodes_create), ("retire", self.nodes_retire)):
            groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
            for n in nodes:
                groups[(n.site, n.fabric)].append(n)
            for (site, fabric), members in groups.items():
                out.append(
                    {
                        "op": op,
                        "kind": "nodes",
                        "site": site,
                        "fabric": fabric,
                        "count": len(members),
                        "gpus": sum(m.gpus for m in members),
                        "sample": [m.name for m in members[:sample]],
                    }
                )
        for stored, desired, fields in self.nodes_update[: sample * 10]:
            out.append(
                {
                    "op": "update",
                    "kind": "node",
                    "name": stored.name,
                    "before": {f: _jsonable_value(getattr(stored, f)) for f in fields},
                    "after": {f: _jsonable_value(_desired_value(desired, f)) for f in fields},
                }
            )
        if len(self.nodes_update) > sample * 10:
            out.append(
                {
                    "op": "update",
                    "kind": "nodes",
                    "count": len(self.nodes_update) - sample * 10,
                    "note": "more node updates not listed",
                }
            )
        for d in self.deliveries_create:
            out.append(
                {"op": "create", "kind": "delivery", "name": d["name"], "after": _jsonable(d)}
            )
        for name, before, after in self.deliveries_update:
            out.append(
                {
                    "op": "update",
                    "kind": "delivery",
                    "name": name,
                    "before": _jsonable(before),
                    "after": _jsonable(after),
                }
            )
        for name in self.deliveries_cancel:
            out.append({"op": "cancel", "kind": "delivery", "name": name})
        for site, fabric, old, new in self.engines_set:
            change = {"op": "create" if old is None else "update", "kind": "engine"}
            out.append({**change, "name": f"{site}/{fabric}", "before": old or {}, "after": new})
        for site, fabric, was in self.engines_unset:
            out.append(
                {"op": "retire", "kind": "engine", "name": f"{site}/{fabric}", "before": was}
            )
        return out


def _jsonable_value(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v.normalize()) if v == v.to_integral_value() else str(v)
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if hasattr(v, "value"):
        return v.value
    return v


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _jsonable_value(v) for k, v in d.items()}


def _desired_value(node: DesiredNode, field_name: str) -> Any:
    if field_name == "state":
        return node.initial_state
    return getattr(node, field_name)


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return Decimal(str(a)) != Decimal(str(b)) if a is not None and b is not None else a is not b
    return bool(a != b)


def _changed(
    stored: dict[str, Any], desired: dict[str, Any], fields: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, Any]]:
    before = {f: stored.get(f) for f in fields if _differs(stored.get(f), desired.get(f))}
    after = {f: desired.get(f) for f in before}
    return before, after


def plan(spec: FleetFile, desired: DesiredFleet, snap: Snapshot) -> FleetPlan:
    p = FleetPlan()
    _plan_accelerators(spec, snap, p)
    known_accelerators = set(snap.accelerators) | {a["name"] for a in p.accelerators_create}
    managed = _plan_sites(spec, desired, snap, p)
    p.fabrics_create = [f for f in desired.fabrics if f not in snap.fabrics]
    p.blocks_create = [b for b in desired.blocks if b not in snap.blocks]
    _plan_nodes(desired, snap, known_accelerators, managed, p)
    _plan_deliveries(spec, snap, known_accelerators, managed, p)
    return p


def _plan_accelerators(spec: FleetFile, snap: Snapshot, p: FleetPlan) -> None:
    seen: set[str] = set()
    for idx, acc in enumerate(spec.accelerators):
        path: PathT = ("accelerators", idx, "name")
        if acc.name in seen:
            raise PlanError(path, f"accelerator '{acc.name}' is defined twice")
        seen.add(acc.name)
        want = acc.model_dump()
        stored = snap.accelerators.get(acc.name)
        if stored is None:
            p.accelerators_create.append(want)
            continue
        before, after = _changed(stored, want, ACCELERATOR_FIELDS)
        if before and stored.get("builtin"):
            raise PlanError(
                path,
                f"'{acc.name}' is a built-in accelerator and cannot be redefined; give the custom chip another name",
            )
        if before:
            p.accelerators_update.append((acc.name, before, after))


def _plan_sites(spec: FleetFile, desired: DesiredFleet, snap: Snapshot, p: FleetPlan) -> set[str]:
    managed: set[str] = set()
    for idx, site in enumerate(spec.sites):
        path: PathT = ("sites", idx)
        if site.name in managed:
            raise PlanError((*path, "name"), f"site '{site.name}' is defined twice")
        managed.add(site.name)
        want: dict[str, Any] = {
            "display_name": site.display_name,
            "location": site.location,
            "power_mw": site.power_mw,
            "pue": site.pue,
            "spare_pct": site.spare_pct,
            "state": site.state,
            **{f"{k}_on": v for k, v in site.dates.model_dump().items()},
        }
        it_kw = desired.site_it_kw.get(site.name, Decimal(0))
        drawn = facility_mw(it_kw, site.pue)
        if drawn > site.power_mw:
            raise PlanError(
                (*path, "power_mw"),
                f"site '{site.name}' would draw {drawn} MW ({(it_kw / 1000).quantize(Decimal('0.001'))} MW of IT load "
                f"x PUE {site.pue}) but its facility power is {site.power_mw} MW",
            )
        stored = snap.sites.get(site.name)
        if stored is None:
            p.sites_create.append({"name": site.name, **want})
            continue
        if not site_move_allowed(stored["state"], site.state):
            raise PlanError(
                (*path, "state"),
                f"site '{site.name}' cannot go from {stored['state'].value} to {site.state.value}",
            )
        before, after = _changed(stored, want, SITE_FIELDS)
        if before:
            p.sites_update.append((site.name, before, after))
    return managed


def _plan_nodes(
    desired: DesiredFleet, snap: Snapshot, accelerators: set[str], managed: set[str], p: FleetPlan
) -> None:
    stored_nodes = snap.nodes
    wanted: set[str] = set()
    for node in desired.nodes:
        if node.accelerator not in accelerators:
            raise PlanError(
                (*node.path, "accelerator"),
                f"unknown accelerator '{node.accelerator}' (known: {', '.join(sorted(accelerators))})",
            )
        wanted.add(node.name)
        stored = stored_nodes.get(node.name)
        if stored is None:
            p.nodes_create.append(node)
            continue
        fields = [
            f
            for f in ("site", "fabric", "block", "accelerator", "gpus", "power_kw")
            if _differs(getattr(stored, f), getattr(node, f))
        ]
        if stored.state is NodeState.RETIRED:
            fields.append("state")
        elif fields and stored.state is NodeState.ALLOCATED:
            raise PlanError(
                node.path,
                f"node '{node.name}' is allocated; drain it before changing its {', '.join(fields)}",
                conflict=True,
            )
        if fields:
            p.nodes_update.append((stored, node, fields))
    blocked: list[str] = []
    for stored in stored_nodes.values():
        if (
            stored.site in managed
            and stored.name not in wanted
            and stored.state is not NodeState.RETIRED
        ):
            if stored.state is NodeState.ALLOCATED:
                blocked.append(stored.name)
            p.nodes_retire.append(stored)
    if blocked:
        site = stored_nodes[blocked[0]].site
        raise PlanError(
            ("sites",),
            f"{len(blocked)} allocated node(s) would be removed (e.g. {', '.join(blocked[:5])} in site '{site}'); drain them first",
            conflict=True,
        )


def _plan_deliveries(
    spec: FleetFile, snap: Snapshot, accelerators: set[str], managed: set[str], p: FleetPlan
) -> None:
    sites = set(snap.sites) | managed
    seen: set[str] = set()
    for idx, d in enumerate(spec.deliveries):
        path: PathT = ("deliveries", idx)
        if d.name in seen:
            raise PlanError((*path, "name"), f"delivery '{d.name}' is defined twice")
        seen.add(d.name)
        if d.site not in sites:
            raise PlanError((*path, "site"), f"unknown site '{d.site}'")
        if d.accelerator not in accelerators:
            raise PlanError((*path, "accelerator"), f"unknown accelerator '{d.accelerator}'")
        want = {**d.model_dump(exclude={"name"}), "state": DeliveryState.SCHEDULED}
        stored = snap.deliveries.get(d.name)
        if stored is None:
            p.deliveries_create.append({"name": d.name, **want})
            continue
        if stored["state"] is DeliveryState.DELIVERED:
            want["state"] = DeliveryState.DELIVERED  # history: a delivered batch stays delivered
        before, after = _changed(stored, want, DELIVERY_FIELDS)
        if before:
            p.deliveries_update.append((d.name, before, after))
    for name, stored in snap.deliveries.items():
        if (
            stored["site"] in managed
            and name not in seen
            and stored["state"] is DeliveryState.SCHEDULED
        ):
            p.deliveries_cancel.append(name)


__all__ = ["FleetPlan", "PlanError", "SiteState", "Snapshot", "StoredNode", "plan"]
