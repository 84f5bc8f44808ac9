"""`neocloud simulate` through the CLI: both input formats, outputs, and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from neocloud.cli.main import app
from tests.sim.conftest import NODES, POD_FILES, sample_pods

runner = CliRunner()

# 16 GPUs in two 8-GPU nodes. A whole node for an hour; 10 minutes later a job that needs
# both nodes (it waits for the first to end); 10 minutes after that a quarter of a GPU for
# a minute, which FIFO keeps behind the big job and backfill runs at once (it ends long
# before the big job's reservation at 01:00).
TIMESTAMPS = """\
submit_time,duration,num_gpus,gpu_type
2024-05-01T00:00:00Z,3600,8,
2024-05-01T00:10:00+00:00,600,16,H100
2024-05-01T00:20:00,60,0.25,H100|A100
"""


def simulate(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["simulate", *args])
    return result.exit_code, result.output


def simulate_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["simulate", *args, "--json"])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def squeeze(text: str) -> str:
    """Without whitespace: error lines may be wrapped to the terminal's width."""
    return "".join(text.split())


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_fifo_and_backfill_on_a_generated_fleet_give_the_hand_computed_figures(
    tmp_path: Path,
) -> None:
    jobs = write(tmp_path, "jobs.csv", TIMESTAMPS)
    fleet = ["--gpus", "16", "--gpus-per-node", "8", "--gpu-type", "H100", "--jobs", str(jobs)]
    fifo = simulate_json(*fleet, "--policy", "fifo")
    assert fifo["cluster"]["nodes"] == 2 and fifo["cluster"]["gpus_by_model"] == {"H100": 16}
    # Delays 0, 3000 (00:10 -> 01:00), 3000 (00:20 -> 01:10); JCTs 3600, 3600, 3060.
    assert fifo["queueing_delay_s"] == {"p50": 3000.0, "p99": 3000.0, "mean": 2000.0, "max": 3000.0}
    assert fifo["jct_s"]["p50"] == 3600.0 and fifo["jct_s"]["mean"] == 3420.0
    # Until the last arrival (00:20) one node of two is busy.
    assert fifo["allocation_rate"]["mean"] == 0.5
    assert fifo["allocation_rate"]["peak"] == 1.0
    assert fifo["gpu_seconds"] == {"jobs": 8 * 3600 + 16 * 600 + 0.25 * 60, "allocated": 38415.0}
    easy = simulate_json(*fleet, "--policy", "backfill")
    assert easy["queueing_delay_s"]["max"] == 3000.0
    assert easy["jct_s"]["mean"] == pytest.approx((3600 + 3600 + 60) / 3, abs=0.1)
    assert easy["jobs"]["waited"] == 1


def test_seconds_fractions_multi_node_jobs_and_models_missing_from_the_fleet(
    tmp_path: Path,
) -> None:
    jobs = write(
        tmp_path,
        "jobs.csv",
        "id,submit_time,duration,num_gpus,gpu_type,priority,preemptible\n"
        "train,0,100,24,,0,false\n"
        "tiny,5,10,0.5,,0,\n"
        "a100,5,10,1,A100,0,\n"
        "huge,5,10,64,,0,\n"
        "spot,6,50,8,,0,yes\n"
        "urgent,7,10,8,,5,no\n",
    )
    result = runner.invoke(
        app, ["simulate", "--gpus", "36", "--jobs", str(jobs), "--policy", "backfill+fgd", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["cluster"]["nodes"] == 5  # 4 of 8 GPUs and one of 4
    assert report["unplaceable"] == {
        "total": 2,
        "by_reason": {
            "no GPU of an acceptable model (A100)": 1,
            "needs 64 GPUs of one model; the cluster has at most 36 of an acceptable model": 1,
        },
    }
    # 24 GPUs on three whole nodes; the half GPU and then the spot job share the rest; the
    # urgent job (priority 5) needs a whole node: it stops the spot job, which starts over.
    assert report["jobs"]["completed"] == 4
    assert report["preemptions"] == {"total": 1, "jobs": 1, "by_reason": {"higher-priority job": 1}}
    assert report["gpu_seconds"]["jobs"] == pytest.approx(report["gpu_seconds"]["allocated"])
    assert report["gpu_seconds"]["jobs"] == 24 * 100 + 0.5 * 10 + 8 * (7 - 6) + 8 * 50 + 8 * 10


@pytest.mark.parametrize(
    "spec", ["fifo", "backfill", "first-fit", "best-fit", "fgd", "backfill+fgd"]
)
def test_the_alibaba_sample_through_the_cli_with_charts(
    trace_dir: Path, tmp_path: Path, spec: str
) -> None:
    pods = tmp_path / POD_FILES[1]
    sample_pods(trace_dir / POD_FILES[1], pods, every=40)
    out = tmp_path / "charts"
    args = ["--nodes", str(trace_dir / NODES), "--jobs", str(pods), "--policy", spec]
    result = runner.invoke(app, ["simulate", *args, "--out", str(out), "--json", "--progress"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert json.loads((out / "summary.json").read_text()) == report
    for chart in ("allocation.png", "fragmentation.png", "queue.png", "delays.png"):
        assert (out / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(report["timeline"]) == 100
    assert (
        report["jobs"]["completed"] + report["jobs"]["unplaceable"] == report["trace"]["gpu_jobs"]
    )


def test_the_table_names_the_policy_and_the_figures(tmp_path: Path) -> None:
    jobs = write(tmp_path, "jobs.csv", TIMESTAMPS)
    code, out = simulate(
        "--gpus", "16", "--gpu-type", "H100", "--jobs", str(jobs), "--policy", "BACKFILL+FGD"
    )
    assert code == 0, out
    assert "backfill+fgd" in out
    assert "queueing delay p50 / p99" in out and "0.0 s / 3000.0 s" in out


GOOD_POD = "openb-pod-1,12000,16384,1,500,,LS,Running,0,100,0"
POD_HEADER = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
    "creation_time,deletion_time,scheduled_time"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "submit_time,num_gpus\n0,1\n",
            "line 1: missing column(s) duration (the header has: submit_time, num_gpus)",
        ),
        (
            "submit_time,duration,num_gpus\n0,10,1\n5,-3,1\n",
            "line 3, field 'duration': must not be negative",
        ),
        (
            "submit_time,duration,num_gpus\n0,ten,1\n",
            "line 2, field 'duration': must be a number, not 'ten'",
        ),
        (
            "submit_time,duration,num_gpus\nyesterday,1,1\n",
            "line 2, field 'submit_time': must be seconds or an ISO-8601",
        ),
        (
            "submit_time,duration,num_gpus\n0,1,1.5\n",
            "line 2, field 'num_gpus': must be whole GPUs or a share below 1",
        ),
        (
            "submit_time,duration,num_gpus\n0,1,1\n2024-01-01,1,1\n",
            "line 3, field 'submit_time': mixes seconds and timestamps",
        ),
        ("submit_time,duration,num_gpus\n0,1\n", "line 2: has 2 fields, the header has 3"),
        (
            f"{POD_HEADER}\n{GOOD_POD}\nopenb-pod-2,1,1,1,500,,LS,Running,50,20,0\n",
            "line 3, field 'deletion_time': is before creation_time",
        ),
        (
            f"{POD_HEADER}\nopenb-pod-2,1,1,two,1000,,LS,Running,0,20,0\n",
            "line 2, field 'num_gpu': must be an integer, not 'two'",
        ),
        (
            f"{POD_HEADER}\nopenb-pod-2,1,1,2,500,,LS,Running,0,20,0\n",
            "line 2, field 'gpu_milli': must be 1000 for a pod of 2 GPUs",
        ),
        (
            f"{POD_HEADER}\nopenb-pod-2,1,1,1,500,,Gold,Running,0,20,0\n",
            "line 2, field 'qos': must be one of LS, Guaranteed, Burstable, BE",
        ),
        (
            "name,num_gpu\nx,1\n",
            "line 1: missing column(s) gpu_milli, creation_time, deletion_time",
        ),
        ("", "the file is empty"),
        ("a,b\n1,2\n", "line 1: not a job trace"),
    ],
)
def test_bad_job_traces_name_the_file_line_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    jobs = write(tmp_path, "bad.csv", text)
    code, out = simulate("--gpus", "8", "--jobs", str(jobs))
    assert code == 2
    sep = ", " if message.startswith("line") else ": "
    assert squeeze(f"{jobs}{sep}{message}") in squeeze(out)
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ("sn,gpu,model\nn1,eight,G2\n", "line 2, field 'gpu': must be an integer, not 'eight'"),
        ("sn,gpu,model\nn1,8,\n", "line 2, field 'model': is empty for a node with 8 GPUs"),
        ("sn,gpu,model\nn1,0,\n", "has no GPU nodes"),
        ("sn,model\nn1,G2\n", "line 1: missing column(s) gpu"),
    ],
)
def test_bad_node_lists_name_the_file_line_and_field(
    tmp_path: Path, nodes: str, message: str
) -> None:
    node_file = write(tmp_path, "nodes.csv", nodes)
    jobs = write(tmp_path, "jobs.csv", TIMESTAMPS)
    code, out = simulate("--nodes", str(node_file), "--jobs", str(jobs))
    assert code == 2
    sep = ", " if message.startswith("line") else ": "
    assert squeeze(f"{node_file}{sep}{message}") in squeeze(out)
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpus", "8", "--policy", "random"], "--policy: unknown policy 'random'"),
        (["--gpus", "8", "--policy", "fifo+backfill"], "unknown policy 'fifo+backfill'"),
        ([], "give the cluster as --nodes FILE or as --gpus N"),
        (["--gpus", "8", "--nodes", "x.csv"], "give the cluster as --nodes FILE or as --gpus N"),
        (["--gpus", "8", "--compress", "0"], "--compress must be a positive number"),
        (["--gpus", "0"], "--gpus and --gpus-per-node must be at least 1"),
    ],
)
def test_bad_options_are_refused_plainly(tmp_path: Path, args: list[str], message: str) -> None:
    jobs = write(tmp_path, "jobs.csv", TIMESTAMPS)
    code, out = simulate("--jobs", str(jobs), *args)
    assert code == 2
    assert squeeze(message) in squeeze(out)
    assert "Traceback" not in out


def test_a_missing_trace_file_is_named(tmp_path: Path) -> None:
    code, out = simulate("--gpus", "8", "--jobs", str(tmp_path / "nope.csv"))
    assert code == 2
    assert squeeze(f"{tmp_path / 'nope.csv'}: cannot read it") in squeeze(out)
