"""Reading Slurm's command output (pure): `scontrol show -o` records and `sacctmgr -P -n` /
`sacct -P -n` tables.

`scontrol show -o` prints one record per line as `Key=value` pairs separated by spaces, and
a value may itself hold spaces (`OS=Linux 6.1 #1 SMP`, `Reason=bad gpu [root@...]`). A pair
starts where a space is followed by a word and `=`; a value with ` Word=` inside it would be
cut there, which Slurm's own keys never are and free text (a drain reason) rarely is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

_PAIR_START = re.compile(r"(?:^|\s+)(?=[A-Za-z][A-Za-z0-9_:/]*=)")


def records(text: str) -> list[dict[str, str]]:
    """One dict per non-empty line of `scontrol show -o ...` output."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or (line.startswith("No ") and "in the system" in line):
            continue
        rec: dict[str, str] = {}
        for pair in _PAIR_START.split(line):
            if not pair:
                continue
            key, sep, value = pair.partition("=")
            if sep:
                rec[key] = value.strip()
        if rec:
            out.append(rec)
    return out


def table(text: str, columns: Sequence[str]) -> list[dict[str, str]]:
    """Rows of `sacctmgr -P -n` / `sacct -P -n` output, named by `columns`.

    A line with the wrong number of fields is skipped rather than misread.
    """
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) == len(columns) + 1 and fields[-1] == "":
            fields = fields[:-1]  # sacctmgr ends some lines with a separator
        if len(fields) != len(columns):
            continue
        rows.append(dict(zip(columns, fields, strict=True)))
    return rows


def csv(value: str) -> tuple[str, ...]:
    """A comma list as a sorted tuple; Slurm's `(null)`, empty and `N/A` are empty."""
    if value.strip() in ("", "(null)", "N/A", "None"):
        return ()
    return tuple(sorted({v.strip() for v in value.split(",") if v.strip()}))


def tres(value: str, name: str = "gres/gpu") -> int:
    """The count of one TRES in `cpu=4,gres/gpu=16,node=2` (0 when absent)."""
    for item in value.split(","):
        key, _, count = item.partition("=")
        if key.strip() == name:
            try:
                return int(count)
            except ValueError:
                return 0
    return 0


def slurm_time(value: str) -> datetime | None:
    """A Slurm time (`2026-12-03T18:00:07`, printed in UTC: the runner sets TZ=UTC)."""
    value = value.strip()
    if value in ("", "Unknown", "None", "(null)", "N/A"):
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        return None


def format_time(at: datetime) -> str:
    """The inverse of `slurm_time`: UTC, to the second."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def node_state(state: str) -> tuple[str, frozenset[str]]:
    """`IDLE+DRAIN` -> ("IDLE", {"DRAIN"}); `down*` style suffixes are dropped."""
    base, *flags = state.strip().rstrip("*~#!%$@^-").upper().split("+")
    return base, frozenset(flags)
