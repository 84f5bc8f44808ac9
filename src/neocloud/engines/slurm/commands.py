"""Actions as Slurm commands (pure; golden-tested in tests/engines/testdata/).

Why the command-line tools and not slurmrestd: scontrol and sacctmgr are in every Slurm
install and speak to slurmctld and slurmdbd with the cluster's own munge authentication,
while slurmrestd is optional, versioned per Slurm release (its OpenAPI plugins change
between releases) and wants its own daemon and JWT setup. Every command here is one that an
operator could type, which makes what neocloud does auditable and reproducible by hand.

Reservations get one subtlety: a node moving from one reservation to another would clash
(reservations may not overlap), so every reservation that loses nodes is first shrunk to the
nodes it keeps (deleted if it keeps none), and only then are the others grown or created.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from neocloud.engines.protocol import Action, Op, Value
from neocloud.engines.slurm.mapping import ORGANIZATION, TIERS, Names

Argv = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Step:
    """The commands that carry out one action (a failing command fails the action)."""

    action: Action
    commands: tuple[Argv, ...]


RANK = {
    ("reservation", Op.DELETE): 0,
    ("partition", Op.DELETE): 2,
    ("qos", Op.CREATE): 3,
    ("qos", Op.UPDATE): 3,
    ("account", Op.CREATE): 4,
    ("account", Op.UPDATE): 4,
    ("partition", Op.CREATE): 5,
    ("partition", Op.UPDATE): 5,
    ("account", Op.DELETE): 6,
    ("qos", Op.DELETE): 7,
    ("reservation", Op.CREATE): 8,
    ("reservation", Op.UPDATE): 8,
}
"""The order Slurm needs: reservations let go of nodes and accounts before anything else;
a QOS exists before an account names it, and goes only once no account (or user) names it
any more; partitions and reservations name accounts that exist. Drains come last (rank 9)."""
SHRINK = 1


def plan(actions: Sequence[Action], names: Names) -> list[Step]:
    """Every action's commands in the order Slurm needs (`RANK`); a reservation that loses
    nodes is shrunk first (see above)."""
    ranked: list[tuple[int, int, Step]] = []
    for i, a in enumerate(actions):
        rank = RANK.get((a.kind, a.op), 9)
        if a.kind == "reservation" and a.op is Op.UPDATE:
            old, new = set(_tuple(a.before, "nodes")), set(_tuple(a.spec, "nodes"))
            if old - new:
                kept = old & new
                pre: Argv = (
                    ("scontrol", "update", f"ReservationName={a.name}", f"Nodes={_nodes(kept)}")
                    if kept
                    else ("scontrol", "delete", f"ReservationName={a.name}")
                )
                ranked.append((SHRINK, i, Step(a, (pre,))))
                body = _commands(a, names) if kept else _reservation_create(a)
                ranked.append((rank, i, Step(a, body)))
                continue
        ranked.append((rank, i, Step(a, _commands(a, names))))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [step for _, _, step in ranked]


def _commands(a: Action, names: Names) -> tuple[Argv, ...]:
    spec = dict(a.spec)
    c = names.cluster
    if a.kind == "qos":
        tres = f"GrpTRES=gres/gpu={spec.get('gpus', 0)}"
        if a.op is Op.CREATE:
            return (("sacctmgr", "-i", "add", "qos", a.name, tres),)
        if a.op is Op.UPDATE:
            return (("sacctmgr", "-i", "modify", "qos", "where", f"name={a.name}", "set", tres),)
        return (("sacctmgr", "-i", "delete", "qos", "where", f"name={a.name}"),)
    if a.kind == "account":
        return _account(a, c)
    if a.kind == "partition":
        if a.op is Op.DELETE:
            return (("scontrol", "delete", f"PartitionName={a.name}"),)
        which = names.partitions.get(a.name, "shared")
        tier, preempt, req_resv = TIERS[which]
        settings = (
            f"Nodes={_nodes(_tuple(a.spec, 'nodes'))}",
            f"AllowAccounts={','.join(_tuple(a.spec, 'accounts'))}",
            f"PriorityTier={tier}",
            f"PreemptMode={preempt}",
            f"ReqResv={req_resv}",
        )
        if a.op is Op.CREATE:
            return (("scontrol", "create", f"PartitionName={a.name}", *settings, "State=UP"),)
        return (("scontrol", "update", f"PartitionName={a.name}", *settings),)
    if a.kind == "reservation":
        if a.op is Op.DELETE:
            return (("scontrol", "delete", f"ReservationName={a.name}"),)
        if a.op is Op.CREATE:
            return _reservation_create(a)
        return (
            (
                "scontrol",
                "update",
                f"ReservationName={a.name}",
                f"Nodes={_nodes(_tuple(a.spec, 'nodes'))}",
                f"Accounts={','.join(_tuple(a.spec, 'accounts'))}",
                f"EndTime={spec.get('end', '')}",
            ),
        )
    if a.kind == "drain":
        if a.op is Op.DELETE:
            return (("scontrol", "update", f"NodeName={a.name}", "State=RESUME"),)
        return (("scontrol", "update", f"NodeName={a.name}", "State=DRAIN", f"Reason={a.note}"),)
    raise ValueError(f"Slurm has no object kind '{a.kind}'")


def _reservation_create(a: Action) -> tuple[Argv, ...]:
    spec = dict(a.spec)
    return (
        (
            "scontrol",
            "create",
            "reservation",
            f"ReservationName={a.name}",
            "StartTime=now",
            f"EndTime={spec.get('end', '')}",
            f"Nodes={_nodes(_tuple(a.spec, 'nodes'))}",
            f"Accounts={','.join(_tuple(a.spec, 'accounts'))}",
            "Flags=IGNORE_JOBS",
        ),
    )


def _account(a: Action, cluster: str) -> tuple[Argv, ...]:
    where = ("where", f"name={a.name}", f"cluster={cluster}")
    if a.op is Op.DELETE:
        return (("sacctmgr", "-i", "delete", "account", *where),)
    spec = dict(a.spec)
    qos = ",".join(_tuple(a.spec, "qos"))
    limits = (f"qos={qos}", f"defaultqos={spec.get('default_qos', '')}")
    out: list[Argv] = []
    old_users: set[str] = set()
    if a.op is Op.CREATE:
        out.append(
            (
                "sacctmgr",
                "-i",
                "add",
                "account",
                a.name,
                f"cluster={cluster}",
                f"Organization={ORGANIZATION}",
                f"Description=neocloud tenant {a.name}",
            )
        )
    else:
        old_users = set(_tuple(a.before, "users"))
    new_users = set(_tuple(a.spec, "users"))
    if (
        a.op is Op.CREATE
        or dict(a.before).get("qos") != spec.get("qos")
        or dict(a.before).get("default_qos") != spec.get("default_qos")
    ):
        out.append(("sacctmgr", "-i", "modify", "account", *where, "set", *limits))
    for user in sorted(old_users - new_users):
        out.append(
            (
                "sacctmgr",
                "-i",
                "delete",
                "user",
                "where",
                f"name={user}",
                f"account={a.name}",
                f"cluster={cluster}",
            )
        )
    for user in sorted(new_users - old_users):
        out.append(
            ("sacctmgr", "-i", "add", "user", user, f"account={a.name}", f"cluster={cluster}")
        )
    if new_users:
        # user associations keep the QOS they were created with: bring them along
        out.append(
            (
                "sacctmgr",
                "-i",
                "modify",
                "user",
                "where",
                f"account={a.name}",
                f"cluster={cluster}",
                "set",
                *limits,
            )
        )
    return tuple(out)


def _tuple(spec: tuple[tuple[str, Value], ...], key: str) -> tuple[str, ...]:
    value = dict(spec).get(key, ())
    return value if isinstance(value, tuple) else (str(value),)


def _nodes(names: Sequence[str] | set[str]) -> str:
    return ",".join(sorted(names))
