"""`neocloud simulate`: replay a cluster trace through the job queue and a placement policy.

Server-side: it reads files and needs no API. See docs/simulate.md.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from neocloud.cli.common import JsonOpt, console, err_console, fail, print_json
from neocloud.placement.policies import PolicySpec
from neocloud.sim.adapters import Fleet, TraceError, generated_fleet, read_alibaba_nodes, read_jobs
from neocloud.sim.replay import Progress as ProgressFn
from neocloud.sim.replay import replay


@contextmanager
def _progress_bar(show: bool) -> Iterator[ProgressFn | None]:
    if not show:
        yield None
        return
    with Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("jobs"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("replay", total=None)
        last = [-1]

        def update(done: int, total: int) -> None:
            if done != last[0] and (done - last[0] >= 200 or done == total):
                last[0] = done
                bar.update(task, completed=done, total=total)

        yield update


def _seconds(value: Any) -> str:
    if value is None:
        return "-"
    value = float(value)
    if value >= 86400:
        return f"{value / 86400:.2f} d"
    if value >= 3600:
        return f"{value / 3600:.2f} h"
    return f"{value:.1f} s"


def _rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    alloc, frag = report["allocation_rate"], report["fragmentation"]
    jobs, delay, jct = report["jobs"], report["queueing_delay_s"], report["jct_s"]

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.1%}"

    def gpus(v: float | None) -> str:
        return "-" if v is None else f"{v:,.1f}"

    cluster, trace = report["cluster"], report["trace"]
    return [
        ("cluster", f"{cluster['nodes']:,} nodes, {cluster['gpus']:,} GPUs"),
        (
            "jobs",
            f"{trace['gpu_jobs']:,} GPU jobs ({trace['no_gpu_jobs_left_out']:,} without GPU left out)",
        ),
        ("allocation rate, mean", pct(alloc["mean"])),
        ("allocation rate, while jobs wait", pct(alloc["while_waiting"])),
        ("allocation rate, peak", pct(alloc["peak"])),
        ("fragmented GPUs (FGD), mean", gpus(frag["fragmented_gpus"])),
        ("fragmentation rate", pct(frag["fragmentation_rate"])),
        ("stranded GPUs while jobs wait, mean", gpus(frag["stranded_gpus_while_waiting"])),
        ("queueing delay p50 / p99", f"{_seconds(delay['p50'])} / {_seconds(delay['p99'])}"),
        ("job completion time p50 / p99", f"{_seconds(jct['p50'])} / {_seconds(jct['p99'])}"),
        ("jobs that waited", f"{jobs['waited']:,}"),
        (
            "preemptions",
            f"{report['preemptions']['total']:,} ({report['preemptions']['jobs']:,} jobs)",
        ),
        ("unplaceable jobs", f"{jobs['unplaceable']:,}"),
        ("replay time", f"{report['replay_seconds']:.2f} s"),
    ]


def simulate(
    jobs: Path = typer.Option(
        ...,
        "--jobs",
        help="job trace CSV: Alibaba v2023 pods, or submit_time,duration,num_gpus[,gpu_type]",
    ),
    nodes: Path | None = typer.Option(
        None, "--nodes", help="node list CSV (Alibaba v2023: sn, gpu, model)"
    ),
    gpus: int | None = typer.Option(
        None, "--gpus", help="instead of --nodes: a generated fleet of this many GPUs"
    ),
    gpus_per_node: int = typer.Option(8, "--gpus-per-node", help="GPUs per generated node"),
    gpu_type: str = typer.Option("GPU", "--gpu-type", help="GPU model of the generated fleet"),
    policy: str = typer.Option(
        "fifo",
        "--policy",
        help="fifo or backfill, first-fit, best-fit or fgd, or both joined by '+' (backfill+fgd)",
    ),
    compress: float = typer.Option(
        1.0, "--compress", help="arrivals this many times faster (durations unchanged)"
    ),
    preemption: bool = typer.Option(
        True, "--preemption/--no-preemption", help="let jobs stop lower-priority preemptible ones"
    ),
    out: Path | None = typer.Option(
        None, "--out", help="directory for the PNG charts and summary.json"
    ),
    as_json: bool = JsonOpt,
    progress: bool = typer.Option(
        False, "--progress", help="show the progress bar even when stderr is not a terminal"
    ),
) -> None:
    """Replay a cluster trace through the job queue and a placement policy; report the metrics."""
    try:
        spec = PolicySpec.parse(policy)
    except ValueError as exc:
        fail(f"--policy: {exc}")
    if (nodes is None) == (gpus is None):
        fail("give the cluster as --nodes FILE or as --gpus N (with --gpus-per-node)")
    if not compress > 0 or compress == float("inf"):
        fail(f"--compress must be a positive number, not {compress}")
    try:
        if nodes is not None:
            fleet: Fleet = read_alibaba_nodes(nodes)
        else:
            assert gpus is not None
            if gpus < 1 or gpus_per_node < 1:
                fail("--gpus and --gpus-per-node must be at least 1")
            fleet = generated_fleet(gpus, gpus_per_node, gpu_type)
        trace = read_jobs(jobs)
    except TraceError as exc:
        fail(str(exc))
    with _progress_bar(progress or sys.stderr.isatty()) as update:
        result = replay(
            fleet, trace, spec, preemption=preemption, compress=compress, progress=update
        )
    report = result.summary()
    if out is not None:
        from neocloud.sim.charts import write_charts

        try:
            written = write_charts(result, out)
            (out / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
        except OSError as exc:
            fail(f"--out {out}: cannot write there ({exc.strerror or exc})")
        err_console.print(f"wrote {', '.join(p.name for p in written)} and summary.json to {out}")
    if as_json:
        print_json(report)
        return
    from rich.table import Table

    table = Table(title=f"{spec} on {trace.source}", header_style="bold", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in _rows(report):
        table.add_row(name, value)
    console.print(table)
