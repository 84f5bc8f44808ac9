"""The agent's disk buffer: batches not delivered yet, one file per batch, oldest first.

A batch is written to a temporary file, fsynced, renamed to its final name (atomic on POSIX)
and the directory fsynced, so after a crash or `kill -9` a final file is always whole, and a
half-written one is only ever a `*.tmp` file, which the next start deletes. File names carry
a sequence number (the order) and the batch's event count (no need to read a file to
coalesce it with others): `0000000000000042-8.json`. A delivered batch's file is unlinked;
should the unlink be lost in a crash, the batch is sent again and the database's (source, id)
key makes it a duplicate. One agent owns a directory at a time (an exclusive `flock` on
`.lock`, released by the kernel however the process ends).

The buffer has a cap in bytes: past it the oldest batches are dropped, each with a warning,
so a long outage costs the oldest samples rather than the disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from neocloud.metering.events import MAX_BATCH

log = logging.getLogger(__name__)
_NAME = re.compile(r"^(\d{16})-(\d+)\.json$")
_array = msgspec.json.Decoder(list[msgspec.Raw])


class BufferBusy(Exception):
    """Another agent holds the directory."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One buffered batch: its file name, sequence number, events and size in bytes."""

    name: str
    seq: int
    count: int
    size: int


def default_dir() -> Path:
    """`$XDG_STATE_HOME/neocloud/agent`, else `~/.local/state/neocloud/agent`."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "neocloud" / "agent"


class DiskBuffer:
    """Opening it takes the directory's lock, deletes half-written files and indexes the
    batches left by an earlier run."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.dropped_batches = 0
        self.dropped_samples = 0
        path.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._lock)
            raise BufferBusy(f"another agent is using the buffer directory {path}") from exc
        self._entries: list[Entry] = []
        for item in path.iterdir():
            if item.name.endswith(".tmp"):
                log.warning("buffer: deleting %s, half-written when an agent stopped", item.name)
                item.unlink(missing_ok=True)
            elif match := _NAME.match(item.name):
                size = item.stat().st_size
                self._entries.append(
                    Entry(item.name, int(match.group(1)), int(match.group(2)), size)
                )
        self._entries.sort(key=lambda e: e.seq)
        self._next = self._entries[-1].seq + 1 if self._entries else 1

    def close(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock, fcntl.LOCK_UN)
        os.close(self._lock)

    def __enter__(self) -> DiskBuffer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def entries(self) -> list[Entry]:
        """The batches waiting, oldest first."""
        return list(self._entries)

    @property
    def batches(self) -> int:
        return len(self._entries)

    @property
    def samples(self) -> int:
        return sum(e.count for e in self._entries)

    @property
    def size(self) -> int:
        return sum(e.size for e in self._entries)

    def append(self, payload: bytes, count: int) -> Entry:
        """Store a batch durably (written, fsynced, renamed, directory fsynced), then drop
        the oldest batches while the buffer is over its cap (never the new one)."""
        entry = Entry(f"{self._next:016d}-{count}.json", self._next, count, len(payload))
        tmp = self.path / (entry.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, self.path / entry.name)
        self._sync_dir()
        self._next += 1
        self._entries.append(entry)
        self._enforce_cap()
        return entry

    def read(self, entry: Entry) -> bytes | None:
        """A batch's events; None (and the file set aside as `*.bad`) if it is not the JSON
        array of `count` events the agent wrote, so one damaged file never blocks the rest."""
        file = self.path / entry.name
        try:
            data = file.read_bytes()
            ok = len(_array.decode(data)) == entry.count
        except FileNotFoundError:
            self._forget([entry])
            return None
        except (OSError, msgspec.DecodeError):
            ok = False
        if ok:
            return data
        log.warning("buffer: %s is damaged; set aside as %s.bad", entry.name, entry.name)
        with contextlib.suppress(OSError):
            file.rename(self.path / (entry.name + ".bad"))
        self._forget([entry])
        return None

    def remove(self, entries: list[Entry]) -> None:
        """Delivered: delete the files (a lost unlink only means a harmless resend)."""
        for entry in entries:
            (self.path / entry.name).unlink(missing_ok=True)
        self._forget(entries)

    def groups(
        self, max_events: int = MAX_BATCH, max_bytes: int = 4 << 20
    ) -> Iterator[list[Entry]]:
        """The waiting batches, oldest first, in runs that fit one request or message
        (at least one batch per run, whatever its size)."""
        run: list[Entry] = []
        events = size = 0
        for entry in list(self._entries):
            if run and (events + entry.count > max_events or size + entry.size > max_bytes):
                yield run
                run, events, size = [], 0, 0
            run.append(entry)
            events += entry.count
            size += entry.size
        if run:
            yield run

    def _forget(self, entries: list[Entry]) -> None:
        gone = {e.seq for e in entries}
        self._entries = [e for e in self._entries if e.seq not in gone]

    def _enforce_cap(self) -> None:
        total = self.size
        while total > self.max_bytes and len(self._entries) > 1:
            oldest = self._entries[0]
            (self.path / oldest.name).unlink(missing_ok=True)
            self._forget([oldest])
            total -= oldest.size
            self.dropped_batches += 1
            self.dropped_samples += oldest.count
            log.warning(
                "buffer over its cap of %.1f MB: dropped the oldest batch (%d samples, %s)",
                self.max_bytes / 1e6,
                oldest.count,
                oldest.name,
            )

    def _sync_dir(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
