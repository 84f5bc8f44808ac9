"""The engine protocol: what a workload manager can do, what each fabric should look like on
it, and the difference between that and what it has — all pure.

An engine (Slurm, Kueue) is the system customers submit jobs to. neocloud keeps it in step
with its contracts in three steps that every engine shares:

1. `desired(view)` turns a fabric's contracts, allocations, spot leases and node health
   (plain data, read by `engines.store`) into engine-neutral *entitlements*: who may run on
   which nodes, capped at how many GPUs, and which nodes must take no new work.
2. The engine maps them to its own objects (`EngineObject`: a Slurm QOS, account,
   reservation, partition or drained node; a Kueue ClusterQueue...) and reads its actual
   ones the same way.
3. `diff(desired, actual)` lists the `Action`s that make actual equal desired; objects the
   operator marked manual are held back and reported instead. Applying the actions and
   diffing again gives nothing: the reconcile is idempotent by construction.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from neocloud.contracts.models import ContractType


class Capability(enum.StrEnum):
    """What an engine can do; each engine declares its set (`Engine.capabilities`)."""

    RESERVATIONS = "reservations"
    """Pin a contract to the very nodes placement gave it."""
    QUOTAS = "quotas"
    """Cap a tenant's running GPUs at what its contract bought."""
    PREEMPTION = "preemption"
    """Spot work yields (is requeued) when the nodes' owner needs them."""
    ACCOUNTING = "accounting"
    """Report what ran, per job, as usage."""
    NODE_HEALTH = "node-health"
    """Report node failures, and take failed nodes out of service."""


class Access(enum.StrEnum):
    """How a contract's tenant reaches its capacity on the engine."""

    RESERVATION = "reservation"
    """Its own nodes, nobody else's jobs (reserved, dedicated-site)."""
    SHARED = "shared"
    """A GPU cap on the shared nodes (on-demand, internal)."""
    SPOT = "spot"
    """A GPU cap on the nodes lent to spot, preemptible."""


ACCESS_BY_TYPE: Mapping[ContractType, Access] = {
    ContractType.RESERVED: Access.RESERVATION,
    ContractType.DEDICATED_SITE: Access.RESERVATION,
    ContractType.ON_DEMAND: Access.SHARED,
    ContractType.INTERNAL: Access.SHARED,
    ContractType.SPOT: Access.SPOT,
}

IN_SERVICE = frozenset({"available", "allocated"})
"""Node states that take work; every other state is drained on the engine."""

DRAIN_PREFIX = "neocloud:"
"""How neocloud's own drains read on the engine (a drain without it is someone else's)."""


# -- what neocloud knows about a fabric --------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeView:
    name: str
    gpus: int
    state: str
    """neocloud's node state (`fleet.models.NodeState` value)."""


@dataclass(frozen=True, slots=True)
class ContractView:
    """A contract in force with a footing on the fabric."""

    name: str
    tenant: str
    type: ContractType
    gpus: int
    """GPUs it may run at once on this fabric (its claims in force here, or its size)."""
    end_at: datetime
    nodes: frozenset[str] = frozenset()
    """Nodes of the fabric it holds now (allocations; for spot: its running leases)."""
    lent: frozenset[str] = frozenset()
    """Of those, nodes lent to spot now (a lendable contract's idle nodes)."""


@dataclass(frozen=True, slots=True)
class FabricView:
    site: str
    fabric: str
    nodes: tuple[NodeView, ...]
    contracts: tuple[ContractView, ...]
    spares: frozenset[str] = frozenset()


# -- what the engine should have ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entitlement:
    contract: str
    tenant: str
    access: Access
    gpus: int
    end_at: datetime
    nodes: frozenset[str] = frozenset()
    """RESERVATION: its nodes; SPOT: the nodes it leases; SHARED: none of its own."""


@dataclass(frozen=True, slots=True)
class FabricDesired:
    entitlements: tuple[Entitlement, ...]
    reserved_nodes: frozenset[str]
    """Nodes in some contract's reservation."""
    shared_nodes: frozenset[str]
    """Nodes on-demand and internal work may use: internal contracts' and free ones."""
    spot_nodes: frozenset[str]
    """Nodes spot work may start on now (its running leases, not those on notice)."""
    drained: Mapping[str, str] = field(default_factory=dict)
    """Node -> why it must take no new work (neocloud's reason, `DRAIN_PREFIX` first)."""


def desired(view: FabricView) -> FabricDesired:
    """What the fabric's engine should enforce now (pure).

    A reservation holds the contract's healthy nodes minus those lent to spot (a lent node
    goes back into the reservation when the loan gets notice, so the owner's jobs preempt the
    spot work on it). Shared work runs on internal contracts' nodes and on free ones, never
    on hot spares (healing needs them idle).
    """
    healthy = {n.name for n in view.nodes if n.state in IN_SERVICE}
    drained = {n.name: f"{DRAIN_PREFIX} {n.state}" for n in view.nodes if n.state not in IN_SERVICE}
    held: set[str] = set()
    reserved: set[str] = set()
    spot: set[str] = set()
    internal: set[str] = set()
    out: list[Entitlement] = []
    for c in sorted(view.contracts, key=lambda c: c.name):
        access = ACCESS_BY_TYPE[c.type]
        mine = frozenset(c.nodes & healthy)
        nodes: frozenset[str] = frozenset()
        if access is Access.RESERVATION:
            nodes = mine - c.lent
            held |= c.nodes
            reserved |= nodes
        elif access is Access.SPOT:
            nodes = mine
            spot |= nodes
        elif c.type is ContractType.INTERNAL:
            held |= c.nodes
            internal |= mine
        out.append(Entitlement(c.name, c.tenant, access, c.gpus, c.end_at, nodes))
    free = healthy - held - view.spares
    return FabricDesired(
        entitlements=tuple(out),
        reserved_nodes=frozenset(reserved),
        shared_nodes=frozenset(internal | free),
        spot_nodes=frozenset(spot),
        drained=drained,
    )


# -- engine objects and the difference -----------------------------------------------------

Value = str | int | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EngineObject:
    """One object on an engine, as far as neocloud manages it.

    `spec` is what is compared (sorted key/value pairs of plain values); `note` travels
    with the object (a drain's reason, say) without making two objects differ.
    """

    kind: str
    name: str
    spec: tuple[tuple[str, Value], ...] = ()
    note: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    def get(self, attr: str, default: Value | None = None) -> Value | None:
        return dict(self.spec).get(attr, default)


def obj(kind: str, name: str, note: str = "", **spec: Value) -> EngineObject:
    """An `EngineObject` with its spec sorted, so equal specs compare equal."""
    return EngineObject(kind, name, tuple(sorted(spec.items())), note)


class Op(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Action:
    op: Op
    kind: str
    name: str
    spec: tuple[tuple[str, Value], ...] = ()
    """What it should be (create, update)."""
    before: tuple[tuple[str, Value], ...] = ()
    """What it was (update, delete)."""
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    def describe(self) -> str:
        """One line for people: `update reservation/nc-a: nodes n1,n2 -> n1,n3`."""
        if self.op is Op.UPDATE:
            old, new = dict(self.before), dict(self.spec)
            parts = [
                f"{k} {_show(old.get(k))} -> {_show(new.get(k))}"
                for k in sorted(set(old) | set(new))
                if old.get(k) != new.get(k)
            ]
            return f"update {self.key}: " + "; ".join(parts)
        spec = self.spec if self.op is Op.CREATE else self.before
        shown = ", ".join(f"{k}={_show(v)}" for k, v in spec)
        extra = f" ({self.note})" if self.note else ""
        return f"{self.op.value} {self.key}" + (f": {shown}" if shown else "") + extra


def _show(value: Value | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return ",".join(value) if value else "(none)"
    return str(value)


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[Action, ...]
    """What to apply, in order."""
    held: tuple[Action, ...]
    """Drift found on objects the operator marked manual: reported, never applied."""


def diff(
    desired_objects: Iterable[EngineObject],
    actual_objects: Iterable[EngineObject],
    *,
    order: Sequence[str],
    manual: Collection[str] = (),
) -> Plan:
    """The actions that turn `actual` into `desired` (pure).

    `order` lists the kinds so that a later kind may refer to an earlier one (a Slurm account
    names its QOS): creates and updates run in that order, deletes in reverse and first.
    `manual` holds object keys (`kind/name`) the operator manages by hand.
    """
    want = {o.key: o for o in desired_objects}
    have = {o.key: o for o in actual_objects}
    rank = {kind: i for i, kind in enumerate(order)}
    deletes = [
        Action(Op.DELETE, o.kind, o.name, before=o.spec, note=o.note)
        for k, o in have.items()
        if k not in want
    ]
    upserts: list[Action] = []
    for k, o in want.items():
        old = have.get(k)
        if old is None:
            upserts.append(Action(Op.CREATE, o.kind, o.name, spec=o.spec, note=o.note))
        elif old.spec != o.spec:
            upserts.append(Action(Op.UPDATE, o.kind, o.name, o.spec, old.spec, o.note))
    deletes.sort(key=lambda a: (-rank.get(a.kind, len(order)), a.name))
    upserts.sort(key=lambda a: (rank.get(a.kind, len(order)), a.name))
    every = deletes + upserts
    return Plan(
        actions=tuple(a for a in every if a.key not in manual),
        held=tuple(a for a in every if a.key in manual),
    )


def apply_actions(
    actual_objects: Iterable[EngineObject], actions: Iterable[Action]
) -> list[EngineObject]:
    """What the engine holds after `actions` (pure): the model of applying a plan, for
    tests and dry runs."""
    have = {o.key: o for o in actual_objects}
    for a in actions:
        if a.op is Op.DELETE:
            have.pop(a.key, None)
        else:
            have[a.key] = EngineObject(a.kind, a.name, a.spec, a.note)
    return sorted(have.values(), key=lambda o: o.key)


# -- what an engine is ------------------------------------------------------------------


class EngineUnavailable(Exception):
    """The engine did not answer (down, slow, refused): the fabric's state becomes stale."""


@dataclass(frozen=True, slots=True)
class NodeHealth:
    """A node as the engine sees it."""

    name: str
    bad: bool
    """Down, drained or failing: takes no work."""
    reason: str = ""
    since: str = ""
    """When the reason was set (the engine's own stamp; tells two failures apart)."""


@dataclass(frozen=True, slots=True)
class ApplyResult:
    action: Action
    error: str | None = None


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of one job, as the engine's accounting reports it."""

    job_id: str
    account: str
    qos: str
    reservation: str
    partition: str
    nodes: tuple[str, ...]
    gpus: int
    """GPUs of the whole run (over all its nodes)."""
    start: datetime
    end: datetime | None
    """None while it runs."""
    state: str


@dataclass(frozen=True, slots=True)
class Observed:
    """What the engine holds now: its managed objects and its nodes' health."""

    objects: tuple[EngineObject, ...]
    nodes: tuple[NodeHealth, ...]


class Engine(Protocol):
    """A workload manager for one fabric. Every call may raise `EngineUnavailable`."""

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> frozenset[Capability]: ...

    @property
    def kinds(self) -> Sequence[str]:
        """Its object kinds in dependency order (see `diff`)."""
        ...

    @property
    def source(self) -> str:
        """The usage events' source, e.g. `slurm://east`."""
        ...

    def objects(self, want: FabricDesired) -> list[EngineObject]:
        """The engine's objects for `want` (pure)."""
        ...

    def observe(self, node_names: Collection[str]) -> Observed:
        """Read the managed objects and the health of these nodes."""
        ...

    def apply(self, actions: Sequence[Action]) -> list[ApplyResult]:
        """Carry out the actions in order; one failing does not stop the others."""
        ...

    def jobs(self, start: datetime, end: datetime) -> list[JobRun]:
        """Job runs that overlapped [start, end) (engines with ACCOUNTING)."""
        ...

    def contract_of(self, run: JobRun, want: FabricDesired) -> str | None:
        """Which contract a run belongs to (None: not a tenant's, or unknown)."""
        ...
