"""Benchmark the trace simulator: the whole Alibaba GPU v2023 trace through every policy.

The trace (`../shared/traces/alibaba-gpu-v2023/`, or `--traces DIR`) is replayed with
`neocloud.sim.replay.replay`, the same code as `neocloud simulate`, on all of its 1,213 GPU
nodes (6,212 GPUs): both pod lists (`default`, and `gpuspec33` where a third of the GPU pods
accept only some GPU models), 7,064 GPU pods each, at two loads:

- real time: pods arrive at their creation time and run until their deletion. The real
  cluster never had more than ~66 GPUs of these pods at once: no policy makes anyone wait,
  and the figures show the trace as it was;
- crowded (`--compress 1000000`): the same pods, arriving a million times faster (all of
  them within 13 s), running as long as they did: almost the whole trace at once, as the
  FGD paper's "workload inflation" experiment, but with pods that end and a queue.

Policies: the queue disciplines FIFO and EASY backfill, each with the node choices
first-fit, best-fit and FGD. FIFO with first-fit is the baseline, measured in the same
run; every other policy is reported side by side with it. The figures per replay are those
of `neocloud simulate` (docs/simulate.md defines them), plus the seconds the replay took
(reading the CSV files is timed apart, once per file).

Target: every replay under 10 s on 2 cores.

Run it (progress on stderr, one JSON object on stdout; about a minute on 2 cores):

    .venv/bin/python bench/replay.py
    .venv/bin/python bench/replay.py --quick     # the gpuspec33 pods, crowded, only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from neocloud.placement.policies import PolicySpec
from neocloud.sim.adapters import read_alibaba_nodes, read_jobs
from neocloud.sim.replay import replay

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces" / "alibaba-gpu-v2023"
NODES = "openb_node_list_all_node.csv"
PODS = ("openb_pod_list_default.csv", "openb_pod_list_gpuspec33.csv")
LOADS = {"real_time": 1.0, "crowded": 1e6}
BASELINE = "fifo+first-fit"
POLICIES = (
    BASELINE,
    "fifo+best-fit",
    "fifo+fgd",
    "backfill+first-fit",
    "backfill+best-fit",
    "backfill+fgd",
)
SECONDS_TARGET = 10.0


def log(message: str) -> None:
    print(f"[replay] {message}", file=sys.stderr, flush=True)


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The figures compared side by side, from a replay's summary."""
    frag = report["fragmentation"]
    return {
        "allocation_rate_mean": report["allocation_rate"]["mean"],
        "allocation_rate_while_waiting": report["allocation_rate"]["while_waiting"],
        "allocation_rate_peak": report["allocation_rate"]["peak"],
        "fragmented_gpus_mean": frag["fragmented_gpus"],
        "fragmentation_rate": frag["fragmentation_rate"],
        "stranded_gpus_while_waiting": frag["stranded_gpus_while_waiting"],
        "queueing_delay_p50_s": report["queueing_delay_s"]["p50"],
        "queueing_delay_p99_s": report["queueing_delay_s"]["p99"],
        "jct_p50_s": report["jct_s"]["p50"],
        "jct_p99_s": report["jct_s"]["p99"],
        "jobs_waited": report["jobs"]["waited"],
        "preemptions": report["preemptions"]["total"],
        "unplaceable": report["jobs"]["unplaceable"],
        "gpu_seconds_conserved": abs(
            report["gpu_seconds"]["jobs"] - report["gpu_seconds"]["allocated"]
        )
        <= 1e-9 * max(1.0, report["gpu_seconds"]["jobs"]),
        "seconds": report["replay_seconds"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, default=TRACES, help="the trace's folder")
    parser.add_argument("--quick", action="store_true", help="gpuspec33, crowded, only")
    args = parser.parse_args()
    pods = PODS[1:] if args.quick else PODS
    loads = {"crowded": LOADS["crowded"]} if args.quick else LOADS

    began = time.perf_counter()
    fleet = read_alibaba_nodes(args.traces / NODES)
    read_nodes_s = time.perf_counter() - began
    report: dict[str, Any] = {
        "benchmark": "replay of the Alibaba GPU v2023 trace",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "baseline": BASELINE,
        "target_seconds_per_replay": SECONDS_TARGET,
        "traces": {},
    }
    slowest = 0.0
    for name in pods:
        started = time.perf_counter()
        trace = read_jobs(args.traces / name)
        read_s = time.perf_counter() - started
        entry: dict[str, Any] = {
            "gpu_pods": len(trace.jobs),
            "pods_without_gpu_left_out": trace.no_gpu,
            "read_seconds": round(read_s + read_nodes_s, 3),
        }
        for load, compress in loads.items():
            side: dict[str, Any] = {"compress": compress}
            for spec in POLICIES:
                result = replay(fleet, trace, PolicySpec.parse(spec), compress=compress)
                summary = result.summary(with_timeline=False)
                side[spec] = figures(summary)
                slowest = max(slowest, summary["replay_seconds"])
                log(
                    f"{name} {load} {spec}: {summary['replay_seconds']:.2f} s, "
                    f"allocation while waiting {summary['allocation_rate']['while_waiting']}, "
                    f"queueing p99 {summary['queueing_delay_s']['p99']} s"
                )
            entry[load] = side
        report["traces"][name] = entry
        if "cluster" not in report:
            report["cluster"] = {
                "nodes": len(fleet.nodes),
                "gpus": sum(n.gpus for n in fleet.nodes),
            }
    report["slowest_replay_seconds"] = slowest
    report["target_met"] = slowest < SECONDS_TARGET
    report["total_seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
