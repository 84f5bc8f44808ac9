"""Slurm host lists (`gpu[01-03,07],login1`) to names and back (pure).

Slurm prints node lists compressed; neocloud compares sets of names. Expanding here, rather
than calling `scontrol show hostnames` once per list, keeps one observation to a handful of
commands however many reservations there are.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

_NULL = {"", "(null)", "None", "None assigned"}
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def expand(text: str) -> list[str]:
    """Every name of a host list, in its order. Raises ValueError on a malformed list."""
    text = text.strip()
    if text in _NULL:
        return []
    out: list[str] = []
    for item in _split_top(text):
        out.extend(_expand_one(item))
    return out


def _split_top(text: str) -> list[str]:
    """Split on commas outside brackets."""
    items: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ']' in host list '{text}'")
        if ch == "," and depth == 0:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise ValueError(f"unbalanced '[' in host list '{text}'")
    items.append("".join(cur))
    return [i for i in items if i]


def _expand_one(item: str) -> list[str]:
    start = item.find("[")
    if start < 0:
        return [item]
    end = item.index("]", start)
    head, body, tail = item[:start], item[start + 1 : end], item[end + 1 :]
    rests = _expand_one(tail) if tail else [""]
    out: list[str] = []
    for part in body.split(","):
        m = _RANGE.match(part.strip())
        if m is None:
            raise ValueError(f"bad range '{part}' in host list '{item}'")
        lo, hi = m.group(1), m.group(2) or m.group(1)
        width = len(lo) if lo.startswith("0") or len(lo) == len(hi) else 0
        if int(hi) < int(lo):
            raise ValueError(f"range '{part}' runs backwards in host list '{item}'")
        for n in range(int(lo), int(hi) + 1):
            out.extend(f"{head}{n:0{width}d}{rest}" for rest in rests)
    return out


def compress(names: Iterable[str]) -> str:
    """A host list for these names (for readable commands; `expand` gives them back)."""
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    plain: list[str] = []
    for name in sorted(set(names)):
        m = _NUMBERED.match(name)
        if m is None or "[" in name or "," in name:
            plain.append(name)
            continue
        digits = m.group(2)
        width = len(digits) if digits.startswith("0") and len(digits) > 1 else 0
        groups[(m.group(1), width)].append(int(digits))
    parts = list(plain)
    for (prefix, width), nums in sorted(groups.items()):
        nums.sort()
        if len(nums) == 1:
            parts.append(f"{prefix}{nums[0]:0{width}d}")
            continue
        ranges: list[str] = []
        lo = prev = nums[0]
        for n in [*nums[1:], None]:
            if n is not None and n == prev + 1:
                prev = n
                continue
            ranges.append(f"{lo:0{width}d}" if lo == prev else f"{lo:0{width}d}-{prev:0{width}d}")
            if n is not None:
                lo = prev = n
        parts.append(f"{prefix}[{','.join(ranges)}]")
    return ",".join(parts)
