"""Jobs of the shared pools (on-demand, spot, internal): what each asks for, where it runs.

Pure data for the job queue (`placement.queue`). GPU capacity is counted in milli-GPUs, as
the Alibaba v2023 trace and Kubernetes GPU-sharing plugins do: a whole GPU is 1000, and a
fractional job asks for less than 1000 of one GPU (it shares that GPU with others). A job
either takes a share of one GPU or whole GPUs; it never takes parts of several GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MILLI_PER_GPU = 1000
"""A whole GPU, in milli-GPUs."""

JobId = int | str


@dataclass(frozen=True, slots=True)
class Shape:
    """What a job needs from the cluster, whoever it is: the unit that placement works in.

    `gpus` whole GPUs (`gpu_milli` 1000), or a share of one GPU (`gpus` 1, `gpu_milli` below
    1000). `gpu_types` lists the acceptable GPU models; empty means any model.
    """

    gpus: int = 1
    gpu_milli: int = MILLI_PER_GPU
    gpu_types: frozenset[str] = frozenset()
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Shapes key the queue's and the fragmentation table's dicts: hash once.
        object.__setattr__(self, "_hash", hash((self.gpus, self.gpu_milli, self.gpu_types)))
        if self.gpus < 1:
            raise ValueError(f"a job needs at least one GPU, not {self.gpus}")
        if not 1 <= self.gpu_milli <= MILLI_PER_GPU:
            raise ValueError(f"gpu_milli must be 1..{MILLI_PER_GPU}, not {self.gpu_milli}")
        if self.gpus > 1 and self.gpu_milli != MILLI_PER_GPU:
            raise ValueError("a job of several GPUs takes whole GPUs (gpu_milli 1000)")

    def __hash__(self) -> int:
        return self._hash

    @property
    def fractional(self) -> bool:
        return self.gpu_milli < MILLI_PER_GPU

    @property
    def milli(self) -> int:
        """All the GPU capacity the job takes, in milli-GPUs."""
        return self.gpus * self.gpu_milli

    def accepts(self, gpu_type: str) -> bool:
        return not self.gpu_types or gpu_type in self.gpu_types

    def __str__(self) -> str:
        size = f"{self.gpu_milli / MILLI_PER_GPU:g} GPU" if self.fractional else f"{self.gpus} GPU"
        kinds = "|".join(sorted(self.gpu_types)) if self.gpu_types else "any"
        return f"{size} ({kinds})"


@dataclass(frozen=True, slots=True)
class Job:
    """A job in a shared pool's queue.

    Higher `priority` runs first; jobs of equal priority run in submission order. A
    `preemptible` job (spot, best-effort) may be stopped and requeued to start a job of
    higher priority. `duration` is the expected run time in seconds (a time limit, or an
    estimate): backfill uses it to keep its promise to the first waiting job; None means
    unknown, which backfill treats as "runs forever".
    """

    id: JobId
    gpus: int = 1
    gpu_milli: int = MILLI_PER_GPU
    gpu_types: frozenset[str] = frozenset()
    priority: int = 0
    preemptible: bool = False
    duration: float | None = None
    submit_time: float = 0.0
    shape: Shape = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.duration is not None and self.duration < 0:
            raise ValueError(f"job {self.id}: duration must not be negative")
        shape = Shape(self.gpus, self.gpu_milli, self.gpu_types)
        object.__setattr__(self, "shape", _SHAPES.setdefault(shape, shape))


_SHAPES: dict[Shape, Shape] = {}
"""One Shape object per distinct shape, so that dict lookups on shapes hit by identity."""

Slice = tuple[int, int]
"""One GPU a job uses: (node index, GPU index on that node)."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a job runs: `gpu_milli` on each of its GPUs (`slices`), all of them at once."""

    slices: tuple[Slice, ...]
    gpu_milli: int

    @property
    def nodes(self) -> tuple[int, ...]:
        return tuple(sorted({node for node, _ in self.slices}))

    @property
    def milli(self) -> int:
        return len(self.slices) * self.gpu_milli


@dataclass(frozen=True, slots=True)
class Run:
    """A job that started: where, and when."""

    job: Job
    placement: Placement
    start: float

    @property
    def expected_end(self) -> float:
        """When the job is expected to end; infinity when its duration is unknown."""
        return float("inf") if self.job.duration is None else self.start + self.job.duration


@dataclass(frozen=True, slots=True)
class Preemption:
    """A running job stopped (and requeued) before it ended, and why."""

    job_id: JobId
    time: float
    reason: str
    by: JobId | None = None
    """The job it made room for, when it was stopped for one."""


PREEMPTED_FOR_PRIORITY = "higher-priority job"
"""The reason recorded when the queue stops a preemptible job to start a more urgent one."""
