"""Plan runs (`POST /v1/plans`): asked for in a request, run in the background.

A request parses its scenarios at once — a malformed one is refused there, with its line —
and stores a queued run. A planner thread in each API process (`PlanWorker`) claims queued
runs with a conditional UPDATE, so several processes never run one twice; it keeps the
run's heartbeat fresh while it works, writes progress as `run_plan` reports it, and stores
the report. A run whose process died (its heartbeat stale) is claimed again, up to
`MAX_ATTEMPTS` times; a server that stops puts its run back in the queue.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, sessionmaker

from neocloud.auth import audit
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.core import yamlfile
from neocloud.core.errors import Conflict, InvalidInput, NotFound
from neocloud.core.paging import Page, PageRequest, paginate
from neocloud.core.timeutil import utcnow
from neocloud.planning.models import PlanRun, PlanStatus
from neocloud.planning.scenario import Scenario, ScenarioError, load_scenario

log = logging.getLogger("neocloud.planning")

HEARTBEAT_S = 10.0
STALE = timedelta(seconds=60)
"""A running plan whose heartbeat is older than this was abandoned by its process."""
MAX_ATTEMPTS = 3
CHARTS = ("revenue", "utilization", "coverage", "comparison")
MAX_ERROR = 4000


# --- asking ---------------------------------------------------------------------------------


def _as_text(value: str | dict[str, Any]) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2)


BUILTIN_DIR = Path(__file__).resolve().parent.parent / "demo"
"""The built-in scenario files (the story of docs/planning.md) and the demo fleet file: the
only files a scenario sent to the API may name."""


def builtin_files() -> list[str]:
    return sorted(p.name for p in BUILTIN_DIR.glob("*.yaml"))


STORY = ("sell-site-1.yaml", "keep-site-1.yaml")
"""The story's comparison (docs/planning.md): sell memphis-1 to the lab, or keep it."""


def _leading_comment(text: str) -> str:
    """The comment lines a file opens with, as one paragraph (its description)."""
    lines: list[str] = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(x for x in lines if x)


def examples() -> dict[str, Any]:
    """The built-in scenarios with their text (what a client may send as it is, or edit), and
    the story's comparison of two of them. The demo fleet file is not a scenario: scenarios
    name it (`fleet: {file: fleet.yaml}`), so it is left out."""
    scenarios = []
    for name in builtin_files():
        text = (BUILTIN_DIR / name).read_text()
        try:
            data, _ = yamlfile.load(text, name)
        except InvalidInput:  # pragma: no cover - the built-in files are valid
            continue
        if not isinstance(data, dict) or not ({"start", "extends"} & data.keys()):
            continue
        scenarios.append(
            {
                "file": name,
                "name": str(data.get("name") or name.removesuffix(".yaml")),
                "description": _leading_comment(text),
                "text": text,
            }
        )
    comparisons = [
        {
            "name": "sell memphis-1 or keep it",
            "description": "The story of docs/planning.md: sell all of memphis-1 to the AI lab "
            "(sell-site-1.yaml) compared with keeping it for the operator's own work and the "
            "rest of the pipeline (keep-site-1.yaml).",
            "scenario": STORY[0],
            "compare": STORY[1],
        }
    ]
    return {"scenarios": scenarios, "comparisons": comparisons}


def _source(field: str) -> str:
    """Where a scenario sent to the API is read from: beside the built-in files."""
    return str(BUILTIN_DIR / field)


def _plain(message: str) -> str:
    return message.replace(f"{BUILTIN_DIR}/", "")


def _only_builtin_files(text: str, field: str) -> None:
    """A scenario sent to the server may name no file of it but the built-in ones."""
    try:
        data, lines = yamlfile.load(text, field)
    except InvalidInput:
        return  # load_scenario says what is wrong, with the line
    if not isinstance(data, dict):
        return
    fleet = data.get("fleet")
    named: list[tuple[tuple[str, ...], Any]] = [(("extends",), data.get("extends"))]
    if isinstance(fleet, dict):
        named.append((("fleet", "file"), fleet.get("file")))
    allowed = builtin_files()
    for path, value in named:
        if value is None or (isinstance(value, str) and value in allowed):
            continue
        line = lines.line_of(path)
        msg = (
            "a scenario sent to the API names no files on the server but the built-in ones "
            f"({', '.join(allowed)}): give the fleet inline (sites:) or take it from the "
            "database (fleet: {from: database})"
        )
        raise InvalidInput(
            f"{field}:{line}: {'.'.join(path)}: {msg}",
            errors=[{"loc": ["body", field, *path], "line": line, "msg": msg}],
        )


def check_scenario(session: Session, text: str, field: str) -> Scenario:
    """Parse and check a scenario now; errors are 422 naming the line and field."""
    _only_builtin_files(text, field)
    try:
        return load_scenario(text, source=_source(field), session=session)
    except ScenarioError as exc:
        loc: list[Any] = ["body", field]
        if exc.field:
            loc.append(exc.field)
        message = _plain(str(exc))
        raise InvalidInput(
            message, errors=[{"loc": loc, "line": exc.line, "msg": message}]
        ) from exc


def submit(
    session: Session,
    *,
    actor: Principal,
    scenario: str | dict[str, Any],
    compare: str | dict[str, Any] | None,
    runs: int,
    seed: int,
) -> PlanRun:
    actor.demand(Permission.PLANS_WRITE)
    text = _as_text(scenario)
    other = None if compare is None else _as_text(compare)
    names = [check_scenario(session, text, "scenario").name]
    if other is not None:
        names.append(check_scenario(session, other, "compare").name)
    row = PlanRun(
        created_by=actor.name,
        status=PlanStatus.QUEUED,
        progress=0.0,
        message="queued",
        name=" vs ".join(names)[:120],
        scenario=text,
        compare=other,
        runs=runs,
        seed=seed,
    )
    session.add(row)
    session.flush()
    after = {"name": row.name, "runs": runs, "seed": seed}
    audit.record(session, actor, "plan.create", "plan", row.id, after=after)
    return row


def get_run(session: Session, *, actor: Principal, run_id: int) -> PlanRun:
    actor.demand(Permission.PLANS_READ)
    row = session.get(PlanRun, run_id)
    if row is None:
        raise NotFound(f"plan {run_id} not found")
    return row


def list_runs(
    session: Session, *, actor: Principal, page: PageRequest, status: PlanStatus | None
) -> Page[PlanRun]:
    actor.demand(Permission.PLANS_READ)
    stmt = sa.select(PlanRun)
    if status is not None:
        stmt = stmt.where(PlanRun.status == status)
    return paginate(session, stmt, PlanRun.id, page)


# --- charts ---------------------------------------------------------------------------------

_chart_cache: OrderedDict[tuple[int, str], dict[str, bytes]] = OrderedDict()
_chart_lock = threading.Lock()


def chart(session: Session, *, actor: Principal, run_id: int, name: str) -> bytes:
    """One PNG chart of a finished run, drawn from its report (kept for the last few)."""
    row = get_run(session, actor=actor, run_id=run_id)
    if name not in CHARTS:
        raise NotFound(f"no chart '{name}' (charts: {', '.join(CHARTS)})")
    if row.status != PlanStatus.SUCCEEDED or row.result is None:
        raise Conflict(f"plan {run_id} is {row.status.value}: its charts come with its report")
    key = (row.id, (row.finished_at or row.updated_at).isoformat())
    with _chart_lock:
        found = _chart_cache.get(key)
        if found is not None:
            _chart_cache.move_to_end(key)
            return found[name]
    from neocloud.planning.service import render_charts

    with tempfile.TemporaryDirectory(prefix="neocloud-plan-") as tmp:
        drawn = {p.stem: p.read_bytes() for p in render_charts(row.result, Path(tmp))}
    with _chart_lock:
        _chart_cache[key] = drawn
        while len(_chart_cache) > 16:
            _chart_cache.popitem(last=False)
    if name not in drawn:
        raise NotFound(f"plan {run_id} has no '{name}' chart")
    return drawn[name]


# --- running --------------------------------------------------------------------------------


def _changed(session: Session, stmt: Any) -> int:
    """Rows an UPDATE changed."""
    return cast("CursorResult[Any]", session.execute(stmt)).rowcount


class _Lost(Exception):
    """The run is no longer ours (claimed again after a stale heartbeat) or we are stopping."""


def claim(factory: sessionmaker[Session], owner: str, now: datetime | None = None) -> int | None:
    """Take the oldest queued run (or an abandoned one) for `owner`; None if there is none."""
    now = now or utcnow()
    stale = now - STALE
    claimable = sa.or_(
        PlanRun.status == PlanStatus.QUEUED,
        sa.and_(PlanRun.status == PlanStatus.RUNNING, PlanRun.heartbeat_at < stale),
    )
    with factory() as session, session.begin():
        ids = list(
            session.scalars(sa.select(PlanRun.id).where(claimable).order_by(PlanRun.id).limit(8))
        )
        for run_id in ids:
            given_up = _changed(
                session,
                sa.update(PlanRun)
                .where(PlanRun.id == run_id, claimable, PlanRun.attempts >= MAX_ATTEMPTS)
                .values(
                    status=PlanStatus.FAILED,
                    message="failed",
                    error=f"abandoned {MAX_ATTEMPTS} times by servers that stopped mid-run",
                    claimed_by=None,
                    finished_at=now,
                    updated_at=now,
                ),
            )
            if given_up:
                continue
            taken = _changed(
                session,
                sa.update(PlanRun)
                .where(PlanRun.id == run_id, claimable)
                .values(
                    status=PlanStatus.RUNNING,
                    claimed_by=owner,
                    heartbeat_at=now,
                    started_at=now,
                    progress=0.0,
                    message="starting",
                    attempts=PlanRun.attempts + 1,
                    updated_at=now,
                ),
            )
            if taken == 1:
                return run_id
    return None


def _mine(run_id: int, owner: str) -> Any:
    return sa.and_(
        PlanRun.id == run_id, PlanRun.claimed_by == owner, PlanRun.status == PlanStatus.RUNNING
    )


def _write(factory: sessionmaker[Session], run_id: int, owner: str, **values: Any) -> bool:
    now = utcnow()
    with factory() as session, session.begin():
        done = _changed(
            session,
            sa.update(PlanRun).where(_mine(run_id, owner)).values(updated_at=now, **values),
        )
    return done == 1


def heartbeat(factory: sessionmaker[Session], run_id: int, owner: str) -> bool:
    return _write(factory, run_id, owner, heartbeat_at=utcnow())


def execute(
    factory: sessionmaker[Session],
    run_id: int,
    owner: str,
    stopping: threading.Event | None = None,
) -> None:
    """Run a claimed plan to its end: the report, or the error, stored while it is ours."""
    from neocloud.planning.service import run_plan

    with factory() as session:
        row = session.get(PlanRun, run_id)
        if row is None:
            return
        text, other, runs, seed = row.scenario, row.compare, row.runs, row.seed
    last: dict[str, Any] = {"at": 0.0, "message": ""}

    def progress(fraction: float, message: str) -> None:
        if stopping is not None and stopping.is_set():
            raise _Lost("the server is stopping")
        now = time.monotonic()
        if message == last["message"] and now - last["at"] < 0.5 and fraction < 1:
            return
        last.update(at=now, message=message)
        if not _write(
            factory,
            run_id,
            owner,
            progress=round(fraction, 4),
            message=message[:500],
            heartbeat_at=utcnow(),
        ):
            raise _Lost("claimed by another process")

    beating = threading.Event()

    def beat() -> None:
        while not beating.wait(HEARTBEAT_S):
            heartbeat(factory, run_id, owner)

    beater = threading.Thread(target=beat, name=f"neocloud-plan-{run_id}-heartbeat", daemon=True)
    beater.start()
    try:
        with factory() as session:
            scenario = load_scenario(text, source=_source("scenario"), session=session)
            compare = (
                None
                if other is None
                else load_scenario(other, source=_source("compare"), session=session)
            )
        report = run_plan(scenario, compare=compare, runs=runs, seed=seed, progress=progress)
        # Plain JSON, as it is stored; the scenarios' sources (in `scenario.source` and the
        # reasons' "decision (scenario:5)") name the request's field, not a server's path.
        report = json.loads(_plain(json.dumps(report, default=str)))
        _write(
            factory,
            run_id,
            owner,
            status=PlanStatus.SUCCEEDED,
            progress=1.0,
            message="done",
            result=report,
            finished_at=utcnow(),
            claimed_by=None,
        )
    except _Lost as exc:
        if stopping is not None and stopping.is_set():
            _write(
                factory,
                run_id,
                owner,
                status=PlanStatus.QUEUED,
                progress=0.0,
                message="queued again: the server running it stopped",
                claimed_by=None,
                attempts=PlanRun.attempts - 1,
            )
        else:
            log.info("planner: run %d left: %s", run_id, exc)
    except (ScenarioError, InvalidInput) as exc:
        # The fleet it reads from the database changed since it was asked for.
        _fail(factory, run_id, owner, _plain(str(exc)))
    except Exception as exc:
        log.exception("planner: run %d failed", run_id)
        _fail(factory, run_id, owner, f"the planner failed: {type(exc).__name__}: {exc}")
    finally:
        beating.set()
        beater.join(timeout=5)


def _fail(factory: sessionmaker[Session], run_id: int, owner: str, error: str) -> None:
    _write(
        factory,
        run_id,
        owner,
        status=PlanStatus.FAILED,
        message="failed",
        error=error[:MAX_ERROR],
        finished_at=utcnow(),
        claimed_by=None,
    )


class PlanWorker:
    """The planner thread of one API process: runs queued plans one at a time, looking for
    one every `interval_s` seconds, or at once when this process queues one (`wake`)."""

    def __init__(self, factory: sessionmaker[Session], interval_s: float) -> None:
        self.factory = factory
        self.interval_s = interval_s
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="neocloud-planner", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self) -> bool:
        """Claim and run one plan; False when none was waiting."""
        run_id = claim(self.factory, self.owner)
        if run_id is None:
            return False
        log.info("planner: running plan %d", run_id)
        execute(self.factory, run_id, self.owner, self._stop)
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.run_once():
                    continue
            except Exception:  # the next round tries again
                log.exception("planner: the background planner failed")
            self._wake.wait(self.interval_s)
            self._wake.clear()
