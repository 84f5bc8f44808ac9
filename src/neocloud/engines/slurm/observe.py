"""What the cluster holds, as engine objects (pure over the commands' output).

Only what neocloud manages is read as its own: QOS and reservations by name prefix, accounts
by `Organization=neocloud`, the three partitions by name; drains on the fabric's nodes
whoever set them (health back decides what a foreign drain means).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

from neocloud.engines.protocol import EngineObject, NodeHealth, obj
from neocloud.engines.slurm import hostlist
from neocloud.engines.slurm.mapping import ORGANIZATION, Names
from neocloud.engines.slurm.parse import csv, node_state, records, table, tres

QOS_COLUMNS = ("name", "grp_tres")
ACCOUNT_COLUMNS = ("account", "org")
ASSOC_COLUMNS = ("account", "user", "qos", "default_qos")
BAD_STATES = frozenset({"DOWN", "FAIL"})
"""UNKNOWN is left out: every node reads so while slurmctld starts, before its slurmd
registers; taking it for a failure would fail the whole fabric at each controller restart."""
BAD_FLAGS = frozenset({"DRAIN", "FAIL", "POWERED_DOWN"})
"""NOT_RESPONDING alone is left out: Slurm sets it for a moment after every resume, and a
node that truly stops answering turns DOWN after SlurmdTimeout."""


def qos_objects(text: str, names: Names) -> list[EngineObject]:
    """`sacctmgr -P -n show qos format=Name,GrpTRES`."""
    return [
        obj("qos", r["name"], gpus=tres(r["grp_tres"]))
        for r in table(text, QOS_COLUMNS)
        if names.owns_qos(r["name"])
    ]


def account_objects(accounts_text: str, assoc_text: str) -> list[EngineObject]:
    """`sacctmgr -P -n show account format=Account,Org` and `sacctmgr -P -n show assoc
    cluster=C format=Account,User,QOS,DefaultQOS`: the neocloud accounts with an association
    on this cluster."""
    ours = {r["account"] for r in table(accounts_text, ACCOUNT_COLUMNS) if r["org"] == ORGANIZATION}
    qos: dict[str, tuple[str, ...]] = {}
    default: dict[str, str] = {}
    users: dict[str, set[str]] = defaultdict(set)
    user_limits: dict[str, set[tuple[tuple[str, ...], str]]] = defaultdict(set)
    for r in table(assoc_text, ASSOC_COLUMNS):
        if r["account"] not in ours:
            continue
        if r["user"]:
            users[r["account"]].add(r["user"])
            user_limits[r["account"]].add((csv(r["qos"]), r["default_qos"]))
        else:
            qos[r["account"]] = csv(r["qos"])
            default[r["account"]] = r["default_qos"]
    for name, limits in user_limits.items():
        if name in qos and limits != {(qos[name], default[name])}:
            # a user association lags behind its account: read as a difference, so that
            # the next update brings the users along
            default[name] = f"{default[name]} (users differ)"
    return [
        obj(
            "account",
            name,
            qos=qos[name],
            default_qos=default[name],
            users=tuple(sorted(users[name])),
        )
        for name in sorted(qos)
    ]


def partition_objects(text: str, names: Names) -> list[EngineObject]:
    """`scontrol show -o partition`: neocloud's three partitions."""
    out = []
    for r in records(text):
        name = r.get("PartitionName", "")
        if name not in names.partitions:
            continue
        out.append(
            obj(
                "partition",
                name,
                nodes=tuple(sorted(hostlist.expand(r.get("Nodes", "")))),
                accounts=csv(r.get("AllowAccounts", "")),
                tier=_int(r.get("PriorityTier", "0")),
                preempt=r.get("PreemptMode", "").upper(),
                req_resv=r.get("ReqResv", "NO").upper(),
            )
        )
    return out


def reservation_objects(text: str, names: Names) -> list[EngineObject]:
    """`scontrol show -o reservation`: neocloud's reservations."""
    out = []
    for r in records(text):
        name = r.get("ReservationName", "")
        if not names.owns_reservation(name):
            continue
        out.append(
            obj(
                "reservation",
                name,
                nodes=tuple(sorted(hostlist.expand(r.get("Nodes", "")))),
                accounts=csv(r.get("Accounts", "")),
                end=r.get("EndTime", ""),
            )
        )
    return out


def node_health(text: str, node_names: Collection[str]) -> list[NodeHealth]:
    """`scontrol show -o node`: each of the fabric's nodes, bad or not, and why."""
    wanted = set(node_names)
    out = []
    for r in records(text):
        name = r.get("NodeName", "")
        if name not in wanted:
            continue
        base, flags = node_state(r.get("State", ""))
        bad = base in BAD_STATES or bool(flags & BAD_FLAGS)
        reason = r.get("Reason", "")
        if reason in ("(null)", "none"):
            reason = ""
        since = ""
        if reason.endswith("]") and "[" in reason:  # `why [user@2026-12-03T18:01:20]`
            reason, _, stamp = reason.rpartition("[")
            reason, since = reason.strip(), stamp.rstrip("]")
        if bad and not reason:
            reason = base.lower() + "".join(f"+{f.lower()}" for f in sorted(flags))
        out.append(NodeHealth(name, bad, reason, since or r.get("ReasonTime", "")))
    return out


def drain_objects(health: Collection[NodeHealth]) -> list[EngineObject]:
    return [EngineObject("drain", h.name, note=h.reason) for h in health if h.bad]


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0
