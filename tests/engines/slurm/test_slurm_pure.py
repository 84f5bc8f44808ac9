"""The Slurm engine's pure parts: host lists, reading Slurm's output, the objects a fabric
needs, the commands for a plan (golden file), usage events and health decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from neocloud.contracts.models import ContractType
from neocloud.engines.health import HealthMemory, health_steps
from neocloud.engines.protocol import (
    ContractView,
    FabricView,
    JobRun,
    NodeHealth,
    NodeView,
    desired,
    diff,
)
from neocloud.engines.slurm import commands, hostlist, mapping, observe
from neocloud.engines.slurm.engine import parse_jobs
from neocloud.engines.slurm.parse import records
from neocloud.engines.usage import events
from tests.golden import assert_golden

TESTDATA = Path(__file__).parent / "testdata"
NAMES = mapping.Names(cluster="east")
END = datetime(2027, 1, 1, tzinfo=UTC)


def test_host_lists_expand_like_slurm_prints_them() -> None:
    assert hostlist.expand("gpu[01-03,07],login1") == ["gpu01", "gpu02", "gpu03", "gpu07", "login1"]
    assert hostlist.expand("r[1-2]n[1-2]") == ["r1n1", "r1n2", "r2n1", "r2n2"]
    assert hostlist.expand("n[9-10]") == ["n9", "n10"]
    assert hostlist.expand("(null)") == []


@settings(max_examples=200, deadline=None)
@given(
    st.sets(
        st.builds(
            lambda p, n, pad: f"{p}{n:0{pad}d}",
            st.sampled_from(["n", "gpu", "x-b1-n"]),
            st.integers(0, 120),
            st.sampled_from([0, 2, 3]),
        ),
        max_size=30,
    )
)
def test_a_compressed_host_list_expands_to_the_same_names(names: set[str]) -> None:
    assert set(hostlist.expand(hostlist.compress(names))) == names


NODE_LINE = (
    "NodeName=sn4 Arch=x86_64 CoresPerSocket=1  CPUAlloc=0 CPUEfctv=4 CPUTot=4 Gres=gpu:8 "
    "NodeAddr=127.0.0.1 NodeHostName=localhost Port=56489 Version=22.05.8 OS=Linux 6.1.0 #1 "
    "SMP PREEMPT_DYNAMIC @0  RealMemory=4000 State=IDLE+DRAIN ThreadsPerCore=1 "
    "Partitions=ops  Reason=gpu 3 ECC storm [root@2026-12-03T18:01:20] CfgTRES=cpu=4"
)


def test_scontrol_records_keep_values_with_spaces() -> None:
    (rec,) = records(NODE_LINE)
    assert rec["OS"] == "Linux 6.1.0 #1 SMP PREEMPT_DYNAMIC @0"
    assert rec["Reason"] == "gpu 3 ECC storm [root@2026-12-03T18:01:20]"
    assert rec["State"] == "IDLE+DRAIN"


def test_node_health_reads_the_drain_and_who_set_it_when() -> None:
    (h,) = observe.node_health(NODE_LINE, ["sn4"])
    assert h == NodeHealth("sn4", True, "gpu 3 ECC storm", "root@2026-12-03T18:01:20")
    assert observe.node_health(NODE_LINE, ["other"]) == []


def test_reservations_and_partitions_read_back_as_objects() -> None:
    res = (
        "ReservationName=nc-acme-train StartTime=2026-12-03T17:57:54 EndTime=2027-01-01T00:00:00 "
        "Duration=29-06:02:06 Nodes=sn[1-2] NodeCnt=2 CoreCnt=8 Features=(null) "
        "PartitionName=nc-reserved Flags=IGNORE_JOBS,SPEC_NODES TRES=cpu=8 Users=(null) "
        "Groups=(null) Accounts=acme Licenses=(null) State=ACTIVE BurstBuffer=(null)\n"
        "ReservationName=maint StartTime=now Nodes=sn3 Accounts=root\n"
    )
    (r,) = observe.reservation_objects(res, NAMES)
    assert r.name == "nc-acme-train"
    assert dict(r.spec) == {
        "nodes": ("sn1", "sn2"),
        "accounts": ("acme",),
        "end": "2027-01-01T00:00:00",
    }
    part = (
        "PartitionName=nc-spot AllowGroups=ALL AllowAccounts=spotco AllowQos=ALL Nodes=(null) "
        "PriorityTier=1 ReqResv=NO PreemptMode=REQUEUE State=UP\n"
        "PartitionName=ops AllowAccounts=root Nodes=sn[1-4] PriorityTier=1\n"
    )
    (p,) = observe.partition_objects(part, NAMES)
    assert dict(p.spec) == {
        "nodes": (),
        "accounts": ("spotco",),
        "tier": 1,
        "preempt": "REQUEUE",
        "req_resv": "NO",
    }


def test_accounts_are_neoclouds_by_organization_with_their_users() -> None:
    accounts = "acme|neocloud\nroot|root\nlegacy|physics\n"
    assoc = (
        "root||normal|\nroot|root|normal|\n"
        "acme||nc-east-a,nc-east-b|nc-east-a\nacme|alice|nc-east-a,nc-east-b|nc-east-a\n"
        "legacy||normal|\n"
    )
    (a,) = observe.account_objects(accounts, assoc)
    assert dict(a.spec) == {
        "qos": ("nc-east-a", "nc-east-b"),
        "default_qos": "nc-east-a",
        "users": ("alice",),
    }
    # a user association left behind its account reads as a difference, to be brought along
    lagging = assoc.replace(
        "acme|alice|nc-east-a,nc-east-b|nc-east-a", "acme|alice|nc-east-b|nc-east-b"
    )
    (a,) = observe.account_objects(accounts, lagging)
    assert a.get("default_qos") == "nc-east-a (users differ)"


def fabric() -> FabricView:
    return FabricView(
        site="east",
        fabric="f1",
        nodes=tuple(
            NodeView(f"n{i}", 8, "allocated" if i < 5 else "available") for i in range(1, 9)
        ),
        contracts=(
            ContractView(
                "acme-train", "acme", ContractType.RESERVED, 24, END, frozenset({"n1", "n2", "n3"})
            ),
            ContractView("beta-res", "beta", ContractType.RESERVED, 8, END, frozenset({"n4"})),
            ContractView("beta-od", "beta", ContractType.ON_DEMAND, 16, END),
            ContractView("spotty", "spotco", ContractType.SPOT, 8, END, frozenset({"n8"})),
        ),
        spares=frozenset({"n7"}),
    )


def test_the_slurm_objects_of_a_fabric_and_the_commands_that_make_them() -> None:
    want = desired(fabric())
    objs = mapping.objects(want, NAMES, {"acme": ["alice"], "beta": ["bob", "bea"]})
    plan = diff(objs, [], order=mapping.KINDS)
    text = "\n".join(
        " ".join(argv) for step in commands.plan(plan.actions, NAMES) for argv in step.commands
    )
    assert_golden(TESTDATA / "create.txt", text + "\n")


def test_healing_shrinks_the_old_reservation_before_the_new_one_grows() -> None:
    """n3 fails: acme-train swaps it for n5, which beta-res held; both change in one plan."""
    before = desired(fabric())
    actual = mapping.objects(before, NAMES, {})
    v = fabric()
    healed = FabricView(
        v.site,
        v.fabric,
        tuple(NodeView(n.name, 8, "failed" if n.name == "n3" else n.state) for n in v.nodes),
        (
            ContractView(
                "acme-train", "acme", ContractType.RESERVED, 24, END, frozenset({"n1", "n2", "n4"})
            ),
            ContractView("beta-res", "beta", ContractType.RESERVED, 8, END, frozenset({"n5"})),
            *v.contracts[2:],
        ),
        v.spares,
    )
    plan = diff(mapping.objects(desired(healed), NAMES, {}), actual, order=mapping.KINDS)
    text = "\n".join(
        " ".join(argv) for step in commands.plan(plan.actions, NAMES) for argv in step.commands
    )
    assert_golden(TESTDATA / "heal.txt", text + "\n")
    lines = text.splitlines()
    shrink = lines.index("scontrol update ReservationName=nc-acme-train Nodes=n1,n2")
    grow_acme = lines.index(
        "scontrol update ReservationName=nc-acme-train Nodes=n1,n2,n4 Accounts=acme EndTime=2027-01-01T00:00:00"
    )
    drop_beta = lines.index("scontrol delete ReservationName=nc-beta-res")
    assert shrink < grow_acme and drop_beta < grow_acme


SACCT = """\
7|acme|nc-east-acme-train|nc-acme-train|nc-reserved|n[1-2]|billing=2,cpu=2,gres/gpu=16,node=2|2026-12-03T10:30:00|2026-12-03T12:15:00|COMPLETED
8|spotco|nc-east-spotty||nc-spot|n8|cpu=1,gres/gpu=8,node=1|2026-12-03T11:00:00|2026-12-03T11:20:00|PREEMPTED
8|spotco|nc-east-spotty||nc-spot|n8|cpu=1,gres/gpu=8,node=1|2026-12-03T11:25:00|Unknown|RUNNING
9|root|normal||ops|n5|cpu=1,node=1|2026-12-03T11:00:00|2026-12-03T11:01:00|COMPLETED
10|acme|nc-east-acme-train|nc-acme-train|nc-reserved|None assigned||Unknown|Unknown|PENDING
"""


def test_sacct_runs_become_hourly_usage_events_with_stable_ids() -> None:
    runs = parse_jobs(SACCT)
    assert [r.job_id for r in runs] == ["7", "8", "8", "9"]
    want = desired(fabric())
    from neocloud.engines.slurm.engine import SlurmEngine
    from neocloud.engines.slurm.options import SlurmOptions

    engine = SlurmEngine(SlurmOptions(cluster="east"), fabric="f1", run=lambda argv: "")
    now = datetime(2026, 12, 3, 12, 40, tzinfo=UTC)
    evs, skipped = events(
        runs,
        source="slurm://east",
        contract_of=lambda r: engine.contract_of(r, want),
        since=now - timedelta(days=1),
        now=now,
    )
    got = sorted(
        (
            e["data"]["contract"],
            e["data"]["node"],
            e["data"]["start"],
            e["data"]["end"],
            e["data"]["gpus"],
        )
        for e in evs
    )
    assert got == [
        ("acme-train", "n1", "2026-12-03T10:30:00Z", "2026-12-03T11:00:00Z", 8),
        ("acme-train", "n1", "2026-12-03T11:00:00Z", "2026-12-03T12:00:00Z", 8),
        ("acme-train", "n1", "2026-12-03T12:00:00Z", "2026-12-03T12:15:00Z", 8),
        ("acme-train", "n2", "2026-12-03T10:30:00Z", "2026-12-03T11:00:00Z", 8),
        ("acme-train", "n2", "2026-12-03T11:00:00Z", "2026-12-03T12:00:00Z", 8),
        ("acme-train", "n2", "2026-12-03T12:00:00Z", "2026-12-03T12:15:00Z", 8),
        ("spotty", "n8", "2026-12-03T11:00:00Z", "2026-12-03T11:20:00Z", 8),
        # the requeued run: its first hour is whole, its current one waits until it ends
        ("spotty", "n8", "2026-12-03T11:25:00Z", "2026-12-03T12:00:00Z", 8),
    ]
    assert [s.job_id for s in skipped] == []  # job 9 has no GPUs: not usage
    again, _ = events(
        runs,
        source="slurm://east",
        contract_of=lambda r: engine.contract_of(r, want),
        since=now - timedelta(days=1),
        now=now,
    )
    assert [e["id"] for e in again] == [e["id"] for e in evs]
    assert len({e["id"] for e in evs}) == len(evs)
    later, _ = events(
        runs,
        source="slurm://east",
        contract_of=lambda r: engine.contract_of(r, want),
        since=now - timedelta(minutes=30),
        now=now,
    )
    assert {e["data"]["end"] for e in later} == {"2026-12-03T12:15:00Z"}


def test_a_foreign_drain_fails_the_node_once_and_its_return_repairs_it() -> None:
    states = {"n1": "allocated", "n2": "failed", "n3": "available"}
    bad = [
        NodeHealth("n1", True, "gpu ECC", "root@t1"),
        NodeHealth("n2", True, "neocloud: failed", "x"),
    ]
    steps, memory = health_steps(bad, states, HealthMemory(), engine="slurm")
    assert [(s.node, s.op, s.reason) for s in steps] == [("n1", "fail", "slurm: gpu ECC")]
    states["n1"] = "failed"
    steps, memory = health_steps(bad, states, memory, engine="slurm")
    assert steps == []  # the same report is acted on once
    states["n1"] = "available"  # the operator repaired it in neocloud
    steps, memory = health_steps(bad, states, memory, engine="slurm")
    assert steps == [] and "n1" not in memory.failed
    states["n1"] = "failed"
    memory = HealthMemory(seen=memory.seen, failed=frozenset({"n1"}))
    steps, memory = health_steps([NodeHealth("n1", False)], states, memory, engine="slurm")
    assert [(s.node, s.op) for s in steps] == [("n1", "repair")]
    assert memory.failed == frozenset()
    assert HealthMemory.from_json(memory.to_json()) == memory


def test_job_runs_that_never_started_are_left_out() -> None:
    assert all(isinstance(r, JobRun) and r.start is not None for r in parse_jobs(SACCT))
