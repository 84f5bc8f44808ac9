"""Decoding and checking a batch of CloudEvents-style usage and telemetry events (pure).

Everything that can be checked without the database is checked here, event by event, so that
one bad event is rejected with its reason (naming the field) and the others are kept. The
decoder is msgspec: the batch is split into raw events in one pass, and each event is decoded
into typed structs, which also checks types and bounds in C.

Most batches are all good, so `decode` first reads the whole batch in one pass into typed
structs and checks it in bulk; only when something in it is wrong does it go event by event
(`parse`), which names each bad event and its reason. Both give the same answer for a good
batch. Usage comes back as columns (one list per field): a batch is 10,000 events, and a few
lists cost far less to build, and to the garbage collector, than 10,000 objects.

Times are kept to the second (a fraction is dropped), so GPU-seconds are exact integers.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import msgspec

USAGE_TYPE = "neocloud.usage.v1"
TELEMETRY_TYPE = "neocloud.telemetry.v1"
TYPES = (USAGE_TYPE, TELEMETRY_TYPE)
MAX_BATCH = 10_000
MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_INTERVAL_S = 86_400
"""An interval longer than a day is refused: engines report at least daily."""

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
When = Annotated[datetime, msgspec.Meta(tz=True)]


class Envelope(msgspec.Struct):
    """The CloudEvents attributes we read; other attributes (subject, datacontenttype...)
    are allowed and ignored."""

    specversion: str
    id: Text
    source: Text
    type: str
    time: When
    data: msgspec.Raw


class UsageData(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    contract: Annotated[str, msgspec.Meta(min_length=1, max_length=63)]
    node: Name
    gpus: Annotated[int, msgspec.Meta(gt=0, le=1_000_000)]
    start: When
    end: When


class TelemetryData(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    node: Name
    gpu: Annotated[int, msgspec.Meta(ge=0, le=1023)]
    utilization_pct: Annotated[float, msgspec.Meta(ge=0, le=100)]
    memory_used_mib: Annotated[int, msgspec.Meta(ge=0, le=2**40)]
    power_w: Annotated[float, msgspec.Meta(ge=0, le=100_000)]
    temperature_c: Annotated[float, msgspec.Meta(ge=-60, le=200)]


@dataclass(frozen=True, slots=True)
class Window:
    """How far back and ahead of now an event's times may lie."""

    back: timedelta = timedelta(days=35)
    ahead: timedelta = timedelta(minutes=5)


@dataclass(slots=True)
class Usage:
    index: int
    id: str
    source: str
    time: int
    contract: str
    node: str
    gpus: int
    start: int
    end: int


@dataclass(slots=True)
class Usages:
    """Usage events as columns, in batch order: row i of every list is one event."""

    index: list[int] = field(default_factory=list)
    id: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    time: list[int] = field(default_factory=list)
    contract: list[str] = field(default_factory=list)
    node: list[str] = field(default_factory=list)
    gpus: list[int] = field(default_factory=list)
    start: list[int] = field(default_factory=list)
    end: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.index)

    @classmethod
    def of(cls, rows: Iterable[Usage]) -> Usages:
        out = cls()
        for u in rows:
            out.index.append(u.index)
            out.id.append(u.id)
            out.source.append(u.source)
            out.time.append(u.time)
            out.contract.append(u.contract)
            out.node.append(u.node)
            out.gpus.append(u.gpus)
            out.start.append(u.start)
            out.end.append(u.end)
        return out

    def take(self, rows: list[int]) -> Usages:
        """The events at these positions (in this order)."""
        out = Usages()
        for name in _COLUMNS:
            column = getattr(self, name)
            value = [column[i] for i in rows]
            setattr(out, name, value)
        return out

    def row(self, i: int) -> Usage:
        return Usage(
            self.index[i],
            self.id[i],
            self.source[i],
            self.time[i],
            self.contract[i],
            self.node[i],
            self.gpus[i],
            self.start[i],
            self.end[i],
        )


_COLUMNS = ("index", "id", "source", "time", "contract", "node", "gpus", "start", "end")


@dataclass(slots=True)
class Telemetry:
    index: int
    id: str
    source: str
    time: int
    data: TelemetryData


@dataclass(frozen=True, slots=True)
class Reject:
    index: int
    id: str | None
    reason: str


@dataclass(slots=True)
class Parsed:
    usage: list[Usage]
    telemetry: list[Telemetry]
    rejected: list[Reject]


@dataclass(slots=True)
class Decoded:
    """A decoded batch: its good usage events as columns, its good telemetry, its rejects."""

    usage: Usages
    telemetry: list[Telemetry]
    rejected: list[Reject]


class RawBatch(list[msgspec.Raw]):
    """The raw events of a batch, with the bodies they were read from (`bodies`, in order:
    JSON arrays, or single events), so that `decode` can read them again in one pass."""

    def __init__(self, raws: Iterable[msgspec.Raw], bodies: list[bytes]) -> None:
        super().__init__(raws)
        self.bodies = bodies


class _UsageFields(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """`UsageData` with its times as text: a batch's times are read once per distinct value."""

    contract: Annotated[str, msgspec.Meta(min_length=1, max_length=63)]
    node: Name
    gpus: Annotated[int, msgspec.Meta(gt=0, le=1_000_000)]
    start: str
    end: str


class _Event(msgspec.Struct, gc=False):
    specversion: Literal["1.0"]
    id: Text
    source: Text
    time: str


class _UsageEvent(_Event, tag_field="type", tag=USAGE_TYPE):
    data: _UsageFields


class _TelemetryEvent(_Event, tag_field="type", tag=TELEMETRY_TYPE):
    data: TelemetryData


class BatchError(ValueError):
    """The batch as a whole is unusable (not a JSON array, or too large)."""

    def __init__(self, detail: str, *, too_large: bool = False) -> None:
        super().__init__(detail)
        self.too_large = too_large


_batch = msgspec.json.Decoder(list[msgspec.Raw])
_typed = msgspec.json.Decoder(list[_UsageEvent | _TelemetryEvent])
_single = msgspec.json.Decoder(_UsageEvent | _TelemetryEvent)
_envelope = msgspec.json.Decoder(Envelope)
_usage = msgspec.json.Decoder(UsageData)
_telemetry = msgspec.json.Decoder(TelemetryData)
_any = msgspec.json.Decoder()
_AT = re.compile(r"^(.*?)(?: - at `\$(.*)`)?$", re.S)


def epoch(value: datetime) -> int:
    """Whole seconds since the epoch (fractions dropped)."""
    return math.floor(value.timestamp()) if value.microsecond else int(value.timestamp())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _reason(exc: msgspec.MsgspecError, prefix: str) -> str:
    """msgspec's message, led by the field it is about: `data.gpus: Expected int >= 1`."""
    match = _AT.match(str(exc))
    assert match is not None
    message, path = match.group(1), (match.group(2) or "").lstrip(".")
    missing = re.match(r"Object missing required field `(.+)`", message)
    if missing:
        path, message = (path + "." if path else "") + missing.group(1), "required"
    unknown = re.match(r"Object contains unknown field `(.+)`", message)
    if unknown:
        path, message = (path + "." if path else "") + unknown.group(1), "unknown field"
    where = ".".join(p for p in (prefix, path) if p) or "event"
    return f"{where}: {message.replace('`', '')}"


def _id_of(raw: bytes) -> str | None:
    try:
        value = _any.decode(raw)
    except msgspec.DecodeError:
        return None
    ident = value.get("id") if isinstance(value, dict) else None
    return ident if isinstance(ident, str) else None


def split_batch(body: bytes) -> list[msgspec.Raw]:
    """The raw events of a batch: a JSON array of at most MAX_BATCH objects."""
    if len(body) > MAX_BODY_BYTES:
        raise BatchError(f"the body is over {MAX_BODY_BYTES} bytes", too_large=True)
    try:
        raws = _batch.decode(body)
    except msgspec.ValidationError as exc:
        try:
            _any.decode(body)
        except msgspec.DecodeError as bad:
            raise BatchError(f"body: not valid JSON ({bad})") from bad
        raise BatchError(f"body: must be a JSON array of events ({exc})") from exc
    except msgspec.DecodeError as exc:
        raise BatchError(f"body: not valid JSON ({exc})") from exc
    if len(raws) > MAX_BATCH:
        raise BatchError(
            f"body: {len(raws)} events; a batch holds at most {MAX_BATCH}", too_large=True
        )
    return RawBatch(raws, [body])


def decode(raws: list[msgspec.Raw], *, now: datetime, window: Window) -> Decoded:
    """Decode and check every event: the whole batch in one pass when it is all good, else
    event by event (`parse`)."""
    fast = _whole(raws, now=now, window=window)
    if fast is not None:
        return fast
    parsed = parse(raws, now=now, window=window)
    return Decoded(Usages.of(parsed.usage), parsed.telemetry, parsed.rejected)


def _whole(raws: list[msgspec.Raw], *, now: datetime, window: Window) -> Decoded | None:
    """The batch read in one pass (from the bodies of a `RawBatch`, arrays or single events)
    and checked in bulk, or None if any event in it is bad (decoding, types, bounds, the
    acceptance window, the interval's length)."""
    items: list[_UsageEvent | _TelemetryEvent] = []
    try:
        if isinstance(raws, RawBatch):
            for body in raws.bodies:
                if body.lstrip()[:1] == b"[":
                    items += _typed.decode(body)
                else:
                    items.append(_single.decode(body))
        else:
            items = [_single.decode(raw) for raw in raws]
    except msgspec.MsgspecError:
        return None
    usage: list[_UsageEvent] = []
    telemetry: list[tuple[int, _TelemetryEvent]] = []
    where: list[int] = []
    if all(type(e) is _UsageEvent for e in items):
        usage = items  # type: ignore[assignment]
    else:
        for i, e in enumerate(items):
            if isinstance(e, _UsageEvent):
                usage.append(e)
                where.append(i)
            else:
                telemetry.append((i, e))
    data = [e.data for e in usage]
    times = [e.time for e in usage]
    starts = [d.start for d in data]
    ends = [d.end for d in data]
    texts = list({*times, *starts, *ends, *(e.time for _, e in telemetry)})
    try:
        seconds = dict(zip(texts, map(epoch, msgspec.convert(texts, list[When])), strict=True))
    except msgspec.ValidationError:
        return None
    earliest, latest = epoch(now - window.back), epoch(now + window.ahead)
    out = Decoded(Usages(), [], [])
    if usage:
        second = seconds.__getitem__
        u = out.usage
        u.index = where if where else list(range(len(usage)))
        u.time, u.start, u.end = (
            list(map(second, times)),
            list(map(second, starts)),
            list(map(second, ends)),
        )
        if not (
            earliest <= min(u.time)
            and max(u.time) <= latest
            and earliest <= min(u.start)
            and max(u.end) <= latest
            and all(map(operator.lt, u.start, u.end))
            and max(map(operator.sub, u.end, u.start)) <= MAX_INTERVAL_S
        ):
            return None
        u.id = [e.id for e in usage]
        u.source = [e.source for e in usage]
        u.contract = [d.contract for d in data]
        u.node = [d.node for d in data]
        u.gpus = [d.gpus for d in data]
    for i, t in telemetry:
        time = seconds[t.time]
        if not earliest <= time <= latest:
            return None
        out.telemetry.append(Telemetry(i, t.id, t.source, time, t.data))
    return out


def parse(raws: list[msgspec.Raw], *, now: datetime, window: Window) -> Parsed:
    """Decode and check every event, one by one; the good ones come back typed, the bad
    ones as rejects."""
    out = Parsed([], [], [])
    earliest, latest = epoch(now - window.back), epoch(now + window.ahead)
    for index, raw in enumerate(raws):
        try:
            env = _envelope.decode(raw)
        except msgspec.MsgspecError as exc:
            out.rejected.append(Reject(index, _id_of(raw), _reason(exc, "")))
            continue
        reason = None
        if env.specversion != "1.0":
            reason = "specversion: must be '1.0'"
        elif env.type not in TYPES:
            reason = f"type: must be one of {', '.join(TYPES)}"
        else:
            time = epoch(env.time)
            if not earliest <= time <= latest:
                reason = _outside("time", window)
        if reason is not None:
            out.rejected.append(Reject(index, env.id, reason))
            continue
        if env.type == USAGE_TYPE:
            item: Usage | Telemetry | Reject = _usage_of(index, env, time, earliest, latest, window)
        else:
            item = _telemetry_of(index, env, time)
        if isinstance(item, Usage):
            out.usage.append(item)
        elif isinstance(item, Telemetry):
            out.telemetry.append(item)
        else:
            out.rejected.append(item)
    return out


def _outside(field: str, window: Window) -> str:
    days = window.back.total_seconds() / 86_400
    minutes = window.ahead.total_seconds() / 60
    return f"{field}: outside the acceptance window ({days:g} days back, {minutes:g} minutes ahead)"


def _usage_of(
    index: int, env: Envelope, time: int, earliest: int, latest: int, window: Window
) -> Usage | Reject:
    try:
        data = _usage.decode(env.data)
    except msgspec.MsgspecError as exc:
        return Reject(index, env.id, _reason(exc, "data"))
    start, end = epoch(data.start), epoch(data.end)
    if end <= start:
        return Reject(index, env.id, "data.end: must be after data.start")
    if end - start > MAX_INTERVAL_S:
        return Reject(index, env.id, f"data.end: an interval may last at most {MAX_INTERVAL_S} s")
    if start < earliest:
        return Reject(index, env.id, _outside("data.start", window))
    if end > latest:
        return Reject(index, env.id, _outside("data.end", window))
    return Usage(index, env.id, env.source, time, data.contract, data.node, data.gpus, start, end)


def _telemetry_of(index: int, env: Envelope, time: int) -> Telemetry | Reject:
    try:
        data = _telemetry.decode(env.data)
    except msgspec.MsgspecError as exc:
        return Reject(index, env.id, _reason(exc, "data"))
    return Telemetry(index, env.id, env.source, time, data)
