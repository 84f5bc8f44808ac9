"""Trace adapters: cluster traces on disk into GPU nodes and jobs for the replay.

Two job formats, told apart by their header:

- the Alibaba GPU v2023 pods (`name, num_gpu, gpu_milli, gpu_spec, qos, creation_time,
  deletion_time, ...`): a pod runs from its creation to its deletion; `gpu_spec` lists the
  acceptable GPU models separated by `|`; `qos` BE (best-effort) pods are preemptible and
  wait behind the others; pods with `num_gpu` 0 need no GPU and are left out (counted);
- a generic CSV `submit_time, duration, num_gpus[, gpu_type, id, priority, preemptible]`
  (times in seconds or ISO-8601 timestamps; `num_gpus` below 1 is a share of one GPU).

Nodes come from the Alibaba node list (`sn, gpu, model`; CPU-only nodes are left out,
counted) or are generated (`generated_fleet`). Every error names the file, line and field.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from neocloud.placement.cluster import GpuNode
from neocloud.placement.jobs import MILLI_PER_GPU, Job

QOS = {"LS": (1, False), "Guaranteed": (1, False), "Burstable": (1, False), "BE": (0, True)}
"""Alibaba QoS class -> (priority, preemptible): best-effort pods are the spot of the trace."""

ALIBABA_POD_COLUMNS = ("name", "num_gpu", "gpu_milli", "creation_time", "deletion_time")
GENERIC_COLUMNS = ("submit_time", "duration", "num_gpus")
NODE_COLUMNS = ("sn", "gpu", "model")


class TraceError(ValueError):
    """Bad trace input, said with the file, line and field it is about."""

    def __init__(
        self, path: Path | str, message: str, line: int | None = None, column: str | None = None
    ) -> None:
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", field '{column}'"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class TraceJob:
    """A job of a trace and how long it actually runs once started (seconds)."""

    job: Job
    runtime: float


@dataclass
class Trace:
    """A trace's GPU jobs in submission order, and what was left out."""

    source: str
    jobs: list[TraceJob]
    no_gpu: int = 0
    """Jobs that need no GPU, left out of the GPU replay."""
    timestamps: bool = False
    """Whether submit times were timestamps (seconds since the Unix epoch)."""

    def compressed(self, factor: float) -> Trace:
        """The trace with arrivals `factor` times faster (durations unchanged)."""
        if factor == 1 or not self.jobs:
            return self
        t0 = self.jobs[0].job.submit_time
        jobs = [
            TraceJob(
                replace(tj.job, submit_time=t0 + (tj.job.submit_time - t0) / factor), tj.runtime
            )
            for tj in self.jobs
        ]
        return Trace(self.source, jobs, self.no_gpu, self.timestamps)


@dataclass
class Fleet:
    """The GPU nodes a trace is replayed on."""

    source: str
    nodes: list[GpuNode] = field(default_factory=list)
    cpu_only: int = 0
    """CPU-only nodes of the node list, left out."""


class _Rows:
    """A CSV file's data rows as dicts, with the line each came from; checks the header."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
        try:
            handle = self.path.open(newline="", encoding="utf-8-sig")
        except OSError as exc:
            raise TraceError(self.path, f"cannot read it ({exc.strerror})") from exc
        with handle:
            reader = csv.reader(handle)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise TraceError(self.path, "the file is empty (no header line)") from None
            except (csv.Error, UnicodeDecodeError) as exc:
                raise TraceError(self.path, f"not a CSV file ({exc})", 1) from None
            missing = [c for c in required if c not in header]
            if missing:
                raise TraceError(
                    self.path,
                    f"missing column(s) {', '.join(missing)} (the header has: {', '.join(header)})",
                    1,
                )
            try:
                for cells in reader:
                    if not cells or all(not c.strip() for c in cells):
                        continue
                    if len(cells) != len(header):
                        raise TraceError(
                            self.path,
                            f"has {len(cells)} fields, the header has {len(header)}",
                            reader.line_num,
                        )
                    yield (
                        reader.line_num,
                        {h: c.strip() for h, c in zip(header, cells, strict=True)},
                    )
            except (csv.Error, UnicodeDecodeError) as exc:
                raise TraceError(self.path, f"not a CSV file ({exc})", reader.line_num) from None


def _number(path: Path, line: int, column: str, text: str, kind: Callable[[str], float]) -> float:
    try:
        value = kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise TraceError(path, f"must be {what}, not {text!r}", line, column) from None
    if not math.isfinite(value):
        raise TraceError(path, f"must be a finite number, not {text!r}", line, column)
    return value


def _int(path: Path, line: int, column: str, text: str) -> int:
    return int(_number(path, line, column, text, int))


def _float(path: Path, line: int, column: str, text: str) -> float:
    return _number(path, line, column, text, float)


def read_jobs(path: Path) -> Trace:
    """A job trace in either format, told apart by its header."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            first = next(csv.reader(handle), None)
    except OSError as exc:
        raise TraceError(path, f"cannot read it ({exc.strerror})") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise TraceError(path, f"not a CSV file ({exc})", 1) from None
    if first is None:
        raise TraceError(path, "the file is empty (no header line)")
    header = {h.strip() for h in first}
    if "creation_time" in header or "num_gpu" in header:
        return read_alibaba_pods(path)
    if header & set(GENERIC_COLUMNS):
        return read_generic_jobs(path)
    raise TraceError(
        path,
        "not a job trace: expected the Alibaba pod columns "
        f"({', '.join(ALIBABA_POD_COLUMNS)}) or {', '.join(GENERIC_COLUMNS)}",
        1,
    )


def _types(text: str) -> frozenset[str]:
    return frozenset(t.strip() for t in text.split("|") if t.strip())


def read_alibaba_pods(path: Path) -> Trace:
    """Pods of the Alibaba GPU v2023 trace (`openb_pod_list_*.csv`)."""
    jobs: list[TraceJob] = []
    no_gpu = 0
    seen: set[str] = set()
    for line, row in _Rows(path).read(ALIBABA_POD_COLUMNS):
        name = row["name"]
        if not name:
            raise TraceError(path, "is empty", line, "name")
        if name in seen:
            raise TraceError(path, f"pod {name!r} appears twice", line, "name")
        seen.add(name)
        created = _float(path, line, "creation_time", row["creation_time"])
        deleted = _float(path, line, "deletion_time", row["deletion_time"])
        if created < 0:
            raise TraceError(path, f"must not be negative, not {created:g}", line, "creation_time")
        if deleted < created:
            raise TraceError(
                path,
                f"is before creation_time ({deleted:g} < {created:g}): a negative duration",
                line,
                "deletion_time",
            )
        gpus = _int(path, line, "num_gpu", row["num_gpu"])
        if gpus < 0:
            raise TraceError(path, f"must not be negative, not {gpus}", line, "num_gpu")
        if gpus == 0:
            no_gpu += 1
            continue
        milli = _int(path, line, "gpu_milli", row["gpu_milli"])
        if not 1 <= milli <= MILLI_PER_GPU:
            raise TraceError(path, f"must be 1..1000 for a GPU pod, not {milli}", line, "gpu_milli")
        if gpus > 1 and milli != MILLI_PER_GPU:
            raise TraceError(
                path, f"must be 1000 for a pod of {gpus} GPUs, not {milli}", line, "gpu_milli"
            )
        qos = row.get("qos", "") or "LS"
        if qos not in QOS:
            raise TraceError(path, f"must be one of {', '.join(QOS)}, not {qos!r}", line, "qos")
        priority, preemptible = QOS[qos]
        duration = deleted - created
        job = Job(
            id=name,
            gpus=gpus,
            gpu_milli=milli,
            gpu_types=_types(row.get("gpu_spec", "")),
            priority=priority,
            preemptible=preemptible,
            duration=duration,
            submit_time=created,
        )
        jobs.append(TraceJob(job, duration))
    jobs.sort(key=lambda tj: tj.job.submit_time)
    return Trace(str(path), jobs, no_gpu)


def _instant(path: Path, line: int, text: str) -> tuple[float, bool]:
    """Seconds, and whether the text was a timestamp rather than a number."""
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise TraceError(path, f"must be a finite number, not {text!r}", line, "submit_time")
        return value, False
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise TraceError(
            path,
            f"must be seconds or an ISO-8601 timestamp, not {text!r}",
            line,
            "submit_time",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp(), True


_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"", "0", "false", "no", "n"}


def read_generic_jobs(path: Path) -> Trace:
    """A generic job CSV: `submit_time, duration, num_gpus[, gpu_type, id, priority, preemptible]`."""
    jobs: list[TraceJob] = []
    seen: set[str] = set()
    stamped: bool | None = None
    for n, (line, row) in enumerate(_Rows(path).read(GENERIC_COLUMNS), start=1):
        submit, is_stamp = _instant(path, line, row["submit_time"])
        if stamped is None:
            stamped = is_stamp
        elif stamped != is_stamp:
            raise TraceError(
                path, "mixes seconds and timestamps; use one kind", line, "submit_time"
            )
        duration = _float(path, line, "duration", row["duration"])
        if duration < 0:
            raise TraceError(path, f"must not be negative, not {duration:g}", line, "duration")
        size = _float(path, line, "num_gpus", row["num_gpus"])
        if size <= 0:
            raise TraceError(path, f"must be positive, not {row['num_gpus']}", line, "num_gpus")
        if size < 1:
            gpus, milli = 1, round(size * MILLI_PER_GPU)
            if milli < 1:
                raise TraceError(path, "is less than a milli-GPU", line, "num_gpus")
        elif size.is_integer():
            gpus, milli = int(size), MILLI_PER_GPU
        else:
            raise TraceError(
                path,
                f"must be whole GPUs or a share below 1, not {row['num_gpus']}",
                line,
                "num_gpus",
            )
        job_id = row.get("id", "") or str(n)
        if job_id in seen:
            raise TraceError(path, f"job {job_id!r} appears twice", line, "id")
        seen.add(job_id)
        priority = _int(path, line, "priority", row["priority"]) if row.get("priority") else 0
        flag = row.get("preemptible", "").lower()
        if flag not in _TRUE | _FALSE:
            raise TraceError(path, f"must be true or false, not {flag!r}", line, "preemptible")
        job = Job(
            id=job_id,
            gpus=gpus,
            gpu_milli=milli,
            gpu_types=_types(row.get("gpu_type", "")),
            priority=priority,
            preemptible=flag in _TRUE,
            duration=duration,
            submit_time=submit,
        )
        jobs.append(TraceJob(job, duration))
    jobs.sort(key=lambda tj: tj.job.submit_time)
    return Trace(str(path), jobs, 0, bool(stamped))


def read_alibaba_nodes(path: Path) -> Fleet:
    """Nodes of the Alibaba GPU v2023 node list (`openb_node_list_*.csv`)."""
    fleet = Fleet(str(path))
    seen: set[str] = set()
    for line, row in _Rows(path).read(NODE_COLUMNS):
        name = row["sn"]
        if not name:
            raise TraceError(path, "is empty", line, "sn")
        if name in seen:
            raise TraceError(path, f"node {name!r} appears twice", line, "sn")
        seen.add(name)
        gpus = _int(path, line, "gpu", row["gpu"])
        if gpus < 0:
            raise TraceError(path, f"must not be negative, not {gpus}", line, "gpu")
        if gpus == 0:
            fleet.cpu_only += 1
            continue
        if not row["model"]:
            raise TraceError(path, f"is empty for a node with {gpus} GPUs", line, "model")
        fleet.nodes.append(GpuNode(name, row["model"], gpus))
    if not fleet.nodes:
        raise TraceError(path, "has no GPU nodes")
    return fleet


def generated_fleet(gpus: int, gpus_per_node: int = 8, gpu_type: str = "GPU") -> Fleet:
    """`gpus` GPUs of one model in nodes of `gpus_per_node` (the last one smaller if need be)."""
    if gpus < 1 or gpus_per_node < 1:
        raise ValueError("a fleet needs at least one GPU and one GPU per node")
    full, rest = divmod(gpus, gpus_per_node)
    sizes = [gpus_per_node] * full + ([rest] if rest else [])
    width = len(str(len(sizes)))
    nodes = [GpuNode(f"node-{i:0{width}d}", gpu_type, size) for i, size in enumerate(sizes)]
    return Fleet(f"{gpus} {gpu_type} GPUs, {gpus_per_node} per node", nodes)
