"""The Slurm engine: the protocol (`engines.protocol.Engine`) over scontrol, sacctmgr and
sacct."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime

from neocloud.engines.protocol import (
    Access,
    Action,
    ApplyResult,
    Capability,
    EngineObject,
    EngineUnavailable,
    FabricDesired,
    JobRun,
    Observed,
)
from neocloud.engines.slurm import commands, hostlist, mapping, observe
from neocloud.engines.slurm.options import SlurmOptions
from neocloud.engines.slurm.parse import format_time, slurm_time, table, tres
from neocloud.engines.slurm.runner import CommandFailed, Runner

SACCT_COLUMNS = (
    "job_id",
    "account",
    "qos",
    "reservation",
    "partition",
    "nodes",
    "alloc_tres",
    "start",
    "end",
    "state",
)
SACCT_FORMAT = "JobIDRaw,Account,QOS,Reservation,Partition,NodeList,AllocTRES,Start,End,State"


class SlurmEngine:
    name = "slurm"
    capabilities = frozenset(Capability)
    kinds = mapping.KINDS

    def __init__(
        self,
        options: SlurmOptions,
        *,
        fabric: str,
        run: Callable[[Sequence[str]], str] | None = None,
    ) -> None:
        self.options = options
        self.names = mapping.Names(cluster=options.cluster or fabric, prefix=options.prefix)
        self.run = run or Runner(
            conf=options.conf, bin_dir=options.bin_dir, timeout_s=options.timeout_s
        )

    @property
    def source(self) -> str:
        return f"slurm://{self.names.cluster}"

    def objects(self, want: FabricDesired) -> list[EngineObject]:
        return mapping.objects(want, self.names, self.options.users)

    def observe(self, node_names: Collection[str]) -> Observed:
        try:
            return self._observe(node_names)
        except CommandFailed as exc:  # Slurm answered but would not tell: nothing to go on
            raise EngineUnavailable(str(exc)) from exc

    def _observe(self, node_names: Collection[str]) -> Observed:
        run, c = self.run, self.names.cluster
        nodes = observe.node_health(run(("scontrol", "show", "-o", "node")), node_names)
        objects = [
            *observe.qos_objects(
                run(("sacctmgr", "-P", "-n", "show", "qos", "format=Name,GrpTRES")), self.names
            ),
            *observe.account_objects(
                run(("sacctmgr", "-P", "-n", "show", "account", "format=Account,Org")),
                run(
                    (
                        "sacctmgr",
                        "-P",
                        "-n",
                        "show",
                        "assoc",
                        f"cluster={c}",
                        "format=Account,User,QOS,DefaultQOS",
                    )
                ),
            ),
            *observe.partition_objects(run(("scontrol", "show", "-o", "partition")), self.names),
            *observe.reservation_objects(
                run(("scontrol", "show", "-o", "reservation")), self.names
            ),
            *observe.drain_objects(nodes),
        ]
        return Observed(objects=tuple(objects), nodes=tuple(nodes))

    def apply(self, actions: Sequence[Action]) -> list[ApplyResult]:
        """Each action's commands in order; a refused command fails its action only. Slurm
        becoming unreachable half-way raises: the next reconcile diffs again from what is."""
        errors: dict[int, str] = {}
        for step in commands.plan(actions, self.names):
            if id(step.action) in errors:
                continue
            for argv in step.commands:
                try:
                    self.run(argv)
                except CommandFailed as exc:
                    errors[id(step.action)] = str(exc)
                    break
        return [ApplyResult(a, errors.get(id(a))) for a in actions]

    def jobs(self, start: datetime, end: datetime) -> list[JobRun]:
        try:
            return self._jobs(start, end)
        except CommandFailed as exc:
            raise EngineUnavailable(str(exc)) from exc

    def _jobs(self, start: datetime, end: datetime) -> list[JobRun]:
        text = self.run(
            (
                "sacct",
                "-P",
                "-n",
                "-X",
                "-D",
                "--allocations",
                f"--clusters={self.names.cluster}",
                "--allusers",
                f"--starttime={format_time(start)}",
                f"--endtime={format_time(end)}",
                f"--format={SACCT_FORMAT}",
            )
        )
        return parse_jobs(text)

    def contract_of(self, run: JobRun, want: FabricDesired) -> str | None:
        """By the reservation it ran in, else its QOS, else its account's only contract."""
        by_res = {
            self.names.reservation(e.contract): e.contract
            for e in want.entitlements
            if e.access is Access.RESERVATION
        }
        if run.reservation in by_res:
            return by_res[run.reservation]
        by_qos = {self.names.qos(e.contract): e.contract for e in want.entitlements}
        if run.qos in by_qos:
            return by_qos[run.qos]
        mine = [e.contract for e in want.entitlements if e.tenant == run.account]
        return mine[0] if len(mine) == 1 else None


def parse_jobs(text: str) -> list[JobRun]:
    """`sacct -P -n -X -D --format=...` rows as job runs (runs that never started dropped)."""
    out = []
    for r in table(text, SACCT_COLUMNS):
        start = slurm_time(r["start"])
        state = r["state"].split()[0] if r["state"] else ""
        if start is None or state == "PENDING":
            continue
        try:
            nodes = tuple(hostlist.expand(r["nodes"]))
        except ValueError:
            continue
        out.append(
            JobRun(
                job_id=r["job_id"],
                account=r["account"],
                qos=r["qos"],
                reservation=r["reservation"],
                partition=r["partition"],
                nodes=nodes,
                gpus=tres(r["alloc_tres"]),
                start=start,
                end=None if state == "RUNNING" else slurm_time(r["end"]),
                state=state,
            )
        )
    return out
