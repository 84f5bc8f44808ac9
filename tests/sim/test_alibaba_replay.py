"""Replays of the Alibaba GPU v2023 trace (a sample of its pods, its real nodes).

The expected figures are computed here from the CSV rows, independently of the simulator.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neocloud.placement.policies import PolicySpec
from neocloud.sim.adapters import read_alibaba_nodes, read_jobs
from neocloud.sim.replay import ReplayResult, replay
from tests.sim.conftest import NODES, POD_FILES, sample_pods

SPECS = [
    "fifo+first-fit",
    "fifo+best-fit",
    "fifo+fgd",
    "backfill+first-fit",
    "backfill+best-fit",
    "backfill+fgd",
]


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def gpus_of(row: dict[str, str]) -> float:
    return (
        int(row["num_gpu"]) * int(row["gpu_milli"]) / 1000
        if row["num_gpu"] == "1"
        else int(row["num_gpu"])
    )


def peak_demand(rows: list[dict[str, str]]) -> float:
    """Most GPUs in use at once if every pod runs from its creation to its deletion."""
    events = sorted(
        [(float(r["deletion_time"]), -gpus_of(r)) for r in rows]
        + [(float(r["creation_time"]), gpus_of(r)) for r in rows]
    )
    level = peak = 0.0
    for _, delta in events:  # ends sort before starts at the same instant
        level += delta
        peak = max(peak, level)
    return peak


def assert_conserved(result: ReplayResult) -> dict[str, Any]:
    """Every GPU job ran to completion or was reported unplaceable; GPU-seconds add up."""
    report = result.summary()
    jobs = report["jobs"]
    assert jobs["started"] + jobs["unplaceable"] == len(result.trace.jobs)
    assert jobs["completed"] == jobs["started"]
    assert jobs["never_started"] == 0
    gpu_s = report["gpu_seconds"]
    assert gpu_s["jobs"] == pytest.approx(gpu_s["allocated"], rel=1e-9)
    assert max(result.timeline.allocated) <= result.cluster.total_milli
    return report


@pytest.mark.parametrize("pods", POD_FILES)
@pytest.mark.parametrize("spec", SPECS)
def test_a_sample_replayed_in_real_time_matches_the_trace(
    trace_dir: Path, tmp_path: Path, pods: str, spec: str
) -> None:
    rows = sample_pods(trace_dir / pods, tmp_path / pods)
    gpu_rows = [r for r in rows if r["num_gpu"] != "0"]
    result = replay(
        read_alibaba_nodes(trace_dir / NODES), read_jobs(tmp_path / pods), PolicySpec.parse(spec)
    )
    report = assert_conserved(result)
    assert report["cluster"] == {
        "source": str(trace_dir / NODES),
        "nodes": 1213,
        "gpus": 6212,
        "gpus_by_model": {
            "A10": 2,
            "G2": 4392,
            "G3": 312,
            "P100": 265,
            "T4": 842,
            "V100M16": 195,
            "V100M32": 204,
        },
        "cpu_only_nodes_left_out": 310,
    }
    assert report["trace"]["no_gpu_jobs_left_out"] == len(rows) - len(gpu_rows) > 0
    # The real cluster never needed more than a sliver of its GPUs at once, so nothing waits,
    # nothing is preempted, and each pod completes exactly its lifetime after it arrived.
    assert report["jobs"]["unplaceable"] == 0
    assert report["jobs"]["waited"] == 0
    assert report["queueing_delay_s"]["p99"] == 0
    assert report["preemptions"]["total"] == 0
    lifetimes = [float(r["deletion_time"]) - float(r["creation_time"]) for r in gpu_rows]
    assert report["jct_s"]["p50"] == round(nearest_rank(lifetimes, 50), 1)
    assert report["jct_s"]["p99"] == round(nearest_rank(lifetimes, 99), 1)
    assert report["allocation_rate"]["peak"] == round(peak_demand(gpu_rows) / 6212, 4)
    assert report["gpu_seconds"]["jobs"] == pytest.approx(
        sum(gpus_of(r) * t for r, t in zip(gpu_rows, lifetimes, strict=True)), rel=1e-9
    )


def crowded_fleet(trace_dir: Path, tmp_path: Path) -> tuple[Path, list[dict[str, str]]]:
    """Every 25th GPU node but the V100M32 ones: some 50 nodes, too few for the sample at once."""
    with (trace_dir / NODES).open(newline="") as handle:
        reader = csv.DictReader(handle)
        gpu_nodes = [r for r in reader if r["gpu"] != "0" and r["model"] != "V100M32"]
        fields = reader.fieldnames
    kept = [r for n, r in enumerate(gpu_nodes) if n % 25 == 0]
    path = tmp_path / "nodes.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields or [])
        writer.writeheader()
        writer.writerows(kept)
    return path, kept


def never_fits(row: dict[str, str], nodes: list[dict[str, str]]) -> bool:
    wanted = {t for t in row["gpu_spec"].split("|") if t}
    ok = [n for n in nodes if not wanted or n["model"] in wanted]
    gpus = int(row["num_gpu"])
    if any(int(n["gpu"]) >= gpus for n in ok):
        return False
    per_model = Counter[str]()
    for n in ok:
        per_model[n["model"]] += int(n["gpu"])
    return max(per_model.values(), default=0) < gpus


@pytest.mark.parametrize("spec", SPECS)
def test_a_crowded_replay_places_or_rejects_every_pod_and_preempts_only_best_effort(
    trace_dir: Path, tmp_path: Path, spec: str
) -> None:
    pods = POD_FILES[1]
    rows = sample_pods(trace_dir / pods, tmp_path / pods)
    nodes_csv, nodes = crowded_fleet(trace_dir, tmp_path)
    result = replay(
        read_alibaba_nodes(nodes_csv),
        read_jobs(tmp_path / pods),
        PolicySpec.parse(spec),
        compress=1e6,  # the sample's arrivals within seconds: a queue forms
    )
    report = assert_conserved(result)
    gpu_rows = [r for r in rows if r["num_gpu"] != "0"]
    expected_unplaceable = {r["name"] for r in gpu_rows if never_fits(r, nodes)}
    assert expected_unplaceable  # V100M32-only pods: this fleet has none
    assert set(result.unplaceable) == expected_unplaceable
    assert report["jobs"]["waited"] > 0
    assert report["queueing_delay_s"]["p99"] > 0
    qos = {r["name"]: r["qos"] for r in rows}
    preempted = {job_id for job_id, rec in result.records.items() if rec.preempted}
    assert report["preemptions"]["jobs"] == len(preempted)
    assert {qos[str(j)] for j in preempted} <= {"BE"}
    # A preempted pod starts over: the GPU-seconds spent exceed the pods' own work by the
    # runs that were cut short, and by nothing when there was no preemption.
    placed = [r for r in gpu_rows if r["name"] not in expected_unplaceable]
    work = sum(gpus_of(r) * (float(r["deletion_time"]) - float(r["creation_time"])) for r in placed)
    spent = report["gpu_seconds"]["jobs"]
    assert spent >= work * (1 - 1e-9)
    if not preempted:
        assert spent == pytest.approx(work, rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("pods", POD_FILES)
def test_the_whole_trace_replays_with_every_policy(trace_dir: Path, pods: str) -> None:
    fleet, trace = read_alibaba_nodes(trace_dir / NODES), read_jobs(trace_dir / pods)
    assert len(trace.jobs) == 7064 and trace.no_gpu == 1088
    for spec in SPECS:
        for compress in (1.0, 1e6):
            report = assert_conserved(
                replay(fleet, trace, PolicySpec.parse(spec), compress=compress)
            )
            assert report["jobs"]["unplaceable"] == 0
            assert np.isfinite(report["allocation_rate"]["peak"])
