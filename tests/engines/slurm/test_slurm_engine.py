"""The Slurm engine against real daemons (slurmctld, slurmdbd, six slurmd on loopback).

A contract booked through the API appears in Slurm within one reconcile, its tenant's job
runs on its nodes, sacct usage lands in the right contract once, and the contract leaves
Slurm when it ends; a node failed in neocloud is drained and the reservation healed; a hand
edit is corrected, or only reported when marked manual; a node drained in Slurm fails in
neocloud and comes back; spot work is requeued when the owner needs the node; slurmctld down
makes the fabric stale while the API serves, and it recovers. Each test has a database of
its own (see conftest.py).
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from fastapi.testclient import TestClient

from neocloud.engines.slurm import mapping, observe
from neocloud.engines.slurm.hostlist import expand
from tests.engines.slurm.conftest import USERS, wait_for
from tests.engines.slurm_cluster import SlurmCluster
from tests.placement.api import this_hour

pytestmark = [pytest.mark.slurm, pytest.mark.postgres]


def reconcile(c: TestClient, **body: Any) -> dict[str, Any]:
    r = c.post("/v1/engines/reconcile", json=body)
    assert r.status_code == 200, r.text
    (item,) = r.json()["items"]
    return dict(item)


def book(
    c: TestClient, name: str, tenant: str, gpus: int, type: str = "reserved", **extra: Any
) -> None:
    body = {
        "name": name,
        "tenant": tenant,
        "type": type,
        "accelerator": "H100",
        "gpus": gpus,
        "start": this_hour(),
        "end": this_hour(days=30),
        **({"unit": "node"} if type == "reserved" else {"site": "east"}),
        **extra,
    }
    r = c.post("/v1/contracts", json=body)
    assert r.status_code == 201, r.text


def used(c: TestClient, contract: str) -> int:
    """The contract's measured GPU-seconds (the last day)."""
    r = c.get("/v1/usage", params={"contract": contract})
    assert r.status_code == 200, r.text
    return sum(int(i["measured_gpu_seconds"]) for i in r.json()["items"])


def allocated(c: TestClient, contract: str) -> set[str]:
    r = c.get(f"/v1/contracts/{contract}/allocation")
    assert r.status_code == 200, r.text
    return {n["name"] for n in r.json()["nodes"] if n["reason"] != "spot"}


def reservations(slurm: SlurmCluster) -> dict[str, tuple[str, ...]]:
    names = mapping.Names(cluster=slurm.name)
    out = slurm.run("scontrol", "show", "-o", "reservation")
    found = {}
    for o in observe.reservation_objects(out, names):
        nodes = dict(o.spec)["nodes"]
        assert isinstance(nodes, tuple)
        found[o.name] = nodes
    return found


def partition_nodes(slurm: SlurmCluster, which: str) -> set[str]:
    names = mapping.Names(cluster=slurm.name)
    out = slurm.run("scontrol", "show", "-o", "partition")
    parts = {o.name: dict(o.spec) for o in observe.partition_objects(out, names)}
    nodes = parts[names.partition(which)]["nodes"]
    assert isinstance(nodes, tuple)
    return set(nodes)


def drained(slurm: SlurmCluster) -> dict[str, str]:
    out = slurm.run("scontrol", "show", "-o", "node")
    return {h.name: h.reason for h in observe.node_health(out, slurm.nodes) if h.bad}


def sbatch(slurm: SlurmCluster, tenant: str, *args: str, wrap: str = "hostname") -> str:
    """Submit a batch job as the tenant's Unix user; its job id."""
    done = subprocess.run(
        [
            "runuser",
            "-u",
            USERS[tenant],
            "--",
            "sbatch",
            "--parsable",
            f"--account={tenant}",
            "--output=/dev/null",
            "--chdir=/tmp",
            *args,
            f"--wrap={wrap}",
        ],
        env=slurm.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split(";")[0]


def job(slurm: SlurmCluster, job_id: str) -> tuple[str, set[str]]:
    """The job's state (squeue while it is queued or running, else sacct's last run) and the
    nodes it ran on."""
    out = slurm.run("squeue", "-h", "-j", job_id, "-o", "%T|%N", check=False).strip()
    if not out.startswith(("PENDING", "RUNNING")):
        rows = slurm.run("sacct", "-X", "-n", "-P", "-j", job_id, "--format=State,NodeList")
        out = rows.split()[-1] if rows.split() else "UNKNOWN|"
    state, _, nodes = out.partition("|")
    return state.split()[0], set(expand(nodes)) if nodes and nodes != "None assigned" else set()


def test_a_booked_contract_reaches_slurm_runs_the_tenants_job_and_its_usage_comes_back(
    nc: TestClient, slurm: SlurmCluster
) -> None:
    book(nc, "acme-train", "acme", 16)
    out = reconcile(nc)  # one reconcile: placement, then Slurm
    assert out["ok"] is True and out["stale"] is False, out
    nodes = allocated(nc, "acme-train")
    assert len(nodes) == 2
    assert set(reservations(slurm)["nc-acme-train"]) == nodes
    qos = f"nc-{slurm.name}-acme-train"
    assert f"{qos}|gres/gpu=16" in slurm.run(
        "sacctmgr", "-n", "-P", "show", "qos", f"name={qos}", "format=Name,GrpTRES"
    )
    assoc = slurm.run(
        "sacctmgr", "-n", "-P", "show", "assoc", f"cluster={slurm.name}", "account=acme",
        "format=Account,User,QOS",
    )  # fmt: skip
    assert f"acme|nctest-acme|{qos}" in assoc
    again = reconcile(nc)
    assert again["changes"] == [] and again["drift"] == []  # idempotent

    # the tenant's job in its reservation runs on its nodes
    jid = sbatch(
        slurm, "acme", "--reservation=nc-acme-train", "--partition=nc-reserved", "-N", "2",
        "--gres=gpu:8", wrap="sleep 2",
    )  # fmt: skip
    wait_for(lambda: job(slurm, jid)[0] == "COMPLETED", "the job to complete")
    # slurmdbd may hold a short job's first node list for a moment after it ends
    ran_on = wait_for(lambda: len(n := job(slurm, jid)[1]) == 2 and n, "sacct's node list")
    assert ran_on == nodes
    # nobody else's account may use the reservation
    refused = subprocess.run(
        ["runuser", "-u", USERS["beta"], "--", "sbatch", "--account=beta",
         "--reservation=nc-acme-train", "--partition=nc-reserved", "--wrap=hostname"],
        env=slurm.env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert refused.returncode != 0

    # sacct's usage lands in the contract, once
    out = reconcile(nc)
    assert out["usage"] and out["usage"]["accepted"] >= 2, out
    measured = used(nc, "acme-train")
    assert measured > 0 and measured % 16 == 0  # 16 GPUs for whole seconds
    r = nc.get("/v1/usage", params={"contract": "acme-train"})
    assert sum(i["billable_gpu_seconds"] for i in r.json()["items"]) == measured
    again = reconcile(nc)
    assert again["usage"]["accepted"] == 0 and again["usage"]["duplicates"] >= 2
    assert used(nc, "acme-train") == measured

    # the contract ends: it leaves Slurm, and so does its tenant
    r = nc.post("/v1/contracts/acme-train/cancel", json={"reason": "test"})
    assert r.status_code == 200, r.text
    gone = {f"{a['op']} {a['kind']}/{a['name']}" for a in reconcile(nc)["changes"]}
    assert {"delete reservation/nc-acme-train", f"delete qos/{qos}", "delete account/acme"} <= gone
    assert "nc-acme-train" not in reservations(slurm)


def test_a_node_failed_in_neocloud_is_drained_and_the_reservation_healed(
    nc: TestClient, slurm: SlurmCluster
) -> None:
    book(nc, "heal-me", "acme", 16)
    reconcile(nc)
    victim = sorted(allocated(nc, "heal-me"))[0]
    r = nc.post(f"/v1/nodes/{victim}/fail", json={"reason": "ECC storm"})
    assert r.status_code == 200, r.text
    after = allocated(nc, "heal-me")
    assert victim not in after and len(after) == 2
    out = reconcile(nc)
    assert out["ok"], out
    assert drained(slurm).get(victim) == "neocloud: failed"
    assert set(reservations(slurm)["nc-heal-me"]) == after  # the swapped node
    r = nc.post(f"/v1/nodes/{victim}/repair", json={})
    assert r.status_code == 200, r.text
    reconcile(nc)
    assert victim not in drained(slurm)


def test_a_hand_edited_reservation_is_corrected_unless_marked_manual(
    nc: TestClient, slurm: SlurmCluster
) -> None:
    book(nc, "edit-me", "acme", 16)
    reconcile(nc)
    nodes = allocated(nc, "edit-me")
    keep = sorted(nodes)[0]
    slurm.run("scontrol", "update", "ReservationName=nc-edit-me", f"Nodes={keep}")
    out = reconcile(nc)
    assert [a["detail"] for a in out["changes"] if a["kind"] == "reservation"] == [
        f"update reservation/nc-edit-me: nodes {keep} -> {','.join(sorted(nodes))}"
    ]
    assert set(reservations(slurm)["nc-edit-me"]) == nodes

    mark = "/v1/engines/fabrics/east/f1/manual/reservation/nc-edit-me"
    assert nc.put(mark, json={"note": "maint"}).status_code == 200
    slurm.run("scontrol", "update", "ReservationName=nc-edit-me", f"Nodes={keep}")
    out = reconcile(nc)
    assert out["changes"] == []
    (held,) = out["drift"]
    assert held["name"] == "nc-edit-me" and "manual" in held["error"]
    assert reservations(slurm)["nc-edit-me"] == (keep,)  # never silently overwritten
    status = nc.get("/v1/engines/fabrics/east/f1").json()
    assert [d["name"] for d in status["drift"]] == ["nc-edit-me"]
    assert [m["name"] for m in status["marks"]] == ["nc-edit-me"]

    assert nc.delete(mark).status_code == 204
    reconcile(nc)
    assert set(reservations(slurm)["nc-edit-me"]) == nodes


def test_a_node_drained_in_slurm_fails_in_neocloud_and_comes_back(
    nc: TestClient, slurm: SlurmCluster
) -> None:
    book(nc, "sick-one", "acme", 16)
    reconcile(nc)
    sick = sorted(allocated(nc, "sick-one"))[-1]
    slurm.run("scontrol", "update", f"NodeName={sick}", "State=DRAIN", "Reason=gpu 3 ECC storm")
    out = reconcile(nc)
    assert [(h["node"], h["op"]) for h in out["health"]] == [(sick, "fail")]
    assert nc.get(f"/v1/nodes/{sick}").json()["state"] == "failed"
    healed = allocated(nc, "sick-one")
    assert sick not in healed and len(healed) == 2
    assert set(reservations(slurm)["nc-sick-one"]) == healed
    assert drained(slurm)[sick] == "gpu 3 ECC storm"  # the operator's reason is kept
    assert reconcile(nc)["health"] == []  # one report, acted on once

    slurm.run("scontrol", "update", f"NodeName={sick}", "State=RESUME")
    out = reconcile(nc)
    assert [(h["node"], h["op"]) for h in out["health"]] == [(sick, "repair")]
    assert nc.get(f"/v1/nodes/{sick}").json()["state"] in ("available", "allocated")


def test_spot_work_is_requeued_when_the_owner_needs_the_node(
    nc: TestClient, slurm: SlurmCluster
) -> None:
    book(nc, "spotty", "spotco", 8, type="spot", notice_minutes=0)
    reconcile(nc)
    (leased,) = partition_nodes(slurm, "spot")
    spot_job = sbatch(
        slurm, "spotco", "--partition=nc-spot", "-N", "1", "--gres=gpu:8", wrap="sleep 600"
    )
    wait_for(lambda: job(slurm, spot_job)[0] == "RUNNING", "the spot job to run")

    book(nc, "acme-all", "acme", 8 * len(slurm.nodes))  # every node, the leased one too
    out = reconcile(nc)
    assert out["ok"], out
    mine = allocated(nc, "acme-all")
    assert leased in mine
    assert set(reservations(slurm)["nc-acme-all"]) == mine
    assert leased not in partition_nodes(slurm, "spot")

    owner = sbatch(
        slurm, "acme", "--reservation=nc-acme-all", "--partition=nc-reserved",
        f"--qos=nc-{slurm.name}-acme-all", "-N", str(len(mine)), "--gres=gpu:8", wrap="sleep 3",
    )  # fmt: skip
    wait_for(lambda: job(slurm, owner)[0] in ("RUNNING", "COMPLETED"), "the owner's job", 90)
    assert job(slurm, spot_job)[0] in ("PENDING", "REQUEUED", "PREEMPTED")
    history = slurm.run("sacct", "-X", "-n", "-P", "-D", "-j", spot_job, "--format=State")
    assert any(s in history for s in ("PREEMPTED", "REQUEUED")), history


def test_slurmctld_down_makes_the_fabric_stale_while_the_api_serves(
    nc: TestClient, slurm: SlurmCluster
) -> None:
    book(nc, "steady", "acme", 16)
    reconcile(nc)
    slurm.stop_ctld()
    try:
        out = reconcile(nc)
        assert out["ok"] is False and out["stale"] is True and out["error"], out
        status = nc.get("/v1/engines/fabrics/east/f1").json()
        assert status["stale"] is True and status["failures"] == 1
        assert status["next_attempt_at"] is not None
        assert nc.get("/v1/contracts").status_code == 200  # neocloud keeps serving
    finally:
        slurm.start_ctld()
    # slurmctld forgets partitions made at run time when it restarts: reconcile makes them again
    passes: list[dict[str, Any]] = []

    def clean() -> bool:
        passes.append(reconcile(nc))
        return bool(passes[-1]["ok"] and not passes[-1]["drift"])

    try:
        wait_for(clean, "the fabric to reconcile cleanly again", timeout=90)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {passes[-2:]}") from None
    recreated = {f"{a['op']} {a['kind']}/{a['name']}" for p in passes for a in p["changes"]}
    assert "create partition/nc-reserved" in recreated, passes
    status = nc.get("/v1/engines/fabrics/east/f1").json()
    assert status["stale"] is False and status["failures"] == 0
    assert set(reservations(slurm)["nc-steady"]) == allocated(nc, "steady")
