"""A fabric's entitlements as Slurm objects (pure).

| entitlement | Slurm |
|---|---|
| every contract | a QOS `<prefix><cluster>-<contract>` with `GrpTRES=gres/gpu=N` |
| every tenant | an account `<tenant>` (Organization=neocloud) allowed its contracts' QOS, with its users |
| reservation (reserved, dedicated-site) | a reservation `<prefix><contract>` on its nodes for its account; its jobs run in the `reserved` partition (ReqResv=YES) |
| shared (on-demand, internal) | the `shared` partition (internal contracts' and free nodes) allows its account |
| spot | the `spot` partition (PriorityTier 1, PreemptMode=REQUEUE) over the leased nodes allows its account |
| a node out of service | drained, reason `neocloud: <state>` |

QOS names are global in slurmdbd, hence the cluster in them; reservations and partitions
are per cluster. A reservation names no partition: slurmctld forgets partitions created at
run time when it restarts (reconcile makes them again), and would drop a reservation tied to
one with them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from neocloud.engines.protocol import Access, EngineObject, FabricDesired, obj
from neocloud.engines.slurm.parse import format_time

KINDS: tuple[str, ...] = ("qos", "account", "partition", "reservation", "drain")
ORGANIZATION = "neocloud"
NO_ACCOUNTS = ("root",)
"""A partition nobody's contract may use yet is left to the operators (root)."""
TIERS = {"reserved": (10, "OFF", "YES"), "shared": (10, "OFF", "NO"), "spot": (1, "REQUEUE", "NO")}
"""Partition -> (PriorityTier, PreemptMode, ReqResv). Spot's lower tier is what lets the
owners' jobs (and on-demand ones) preempt it, with PreemptType=preempt/partition_prio."""
ACCESS_ORDER = {Access.RESERVATION: 0, Access.SHARED: 1, Access.SPOT: 2}


@dataclass(frozen=True, slots=True)
class Names:
    cluster: str
    prefix: str = "nc-"

    def qos(self, contract: str) -> str:
        return f"{self.prefix}{self.cluster}-{contract}"

    def reservation(self, contract: str) -> str:
        return f"{self.prefix}{contract}"

    def partition(self, which: str) -> str:
        return f"{self.prefix}{which}"

    @property
    def partitions(self) -> dict[str, str]:
        """Slurm partition name -> which (reserved, shared, spot)."""
        return {self.partition(w): w for w in TIERS}

    def owns_qos(self, name: str) -> bool:
        return name.startswith(f"{self.prefix}{self.cluster}-")

    def owns_reservation(self, name: str) -> bool:
        return name.startswith(self.prefix)


def objects(
    want: FabricDesired, names: Names, users: Mapping[str, Sequence[str]]
) -> list[EngineObject]:
    """Every Slurm object the fabric should have."""
    out: list[EngineObject] = []
    by_tenant: dict[str, list[tuple[int, str]]] = defaultdict(list)
    access: dict[str, set[str]] = defaultdict(set)
    for e in want.entitlements:
        qos = names.qos(e.contract)
        out.append(obj("qos", qos, gpus=e.gpus))
        by_tenant[e.tenant].append((ACCESS_ORDER[e.access], qos))
        access[
            {Access.RESERVATION: "reserved", Access.SHARED: "shared", Access.SPOT: "spot"}[e.access]
        ].add(e.tenant)
        if e.access is Access.RESERVATION and e.nodes:
            out.append(
                obj(
                    "reservation",
                    names.reservation(e.contract),
                    nodes=tuple(sorted(e.nodes)),
                    accounts=(e.tenant,),
                    end=format_time(e.end_at),
                )
            )
    for tenant, qos_list in sorted(by_tenant.items()):
        qos_list.sort()
        out.append(
            obj(
                "account",
                tenant,
                qos=tuple(sorted(q for _, q in qos_list)),
                default_qos=qos_list[0][1],
                users=tuple(sorted(set(users.get(tenant, ())))),
            )
        )
    nodes = {"reserved": want.reserved_nodes, "shared": want.shared_nodes, "spot": want.spot_nodes}
    for which, (tier, preempt, req_resv) in TIERS.items():
        out.append(
            obj(
                "partition",
                names.partition(which),
                nodes=tuple(sorted(nodes[which])),
                accounts=tuple(sorted(access[which])) or NO_ACCOUNTS,
                tier=tier,
                preempt=preempt,
                req_resv=req_resv,
            )
        )
    for node, reason in sorted(want.drained.items()):
        out.append(EngineObject("drain", node, note=reason))
    return out
