"""Splitting a usage interval into billable and excluded stretches (pure, integer seconds).

An interval [start, end) of a contract on a node is billable where it lies inside the
contract's term and the contract held the node (placement's allocation rows, or a spot
lease). The rest is excluded: `outside-term` first, then `node-down` for time inside the
term when the contract did not hold the node (it had failed, or was not yet or no longer
allocated to it). Pieces are whole seconds, so the GPU-seconds of the pieces sum exactly to
the interval's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from neocloud.metering.models import ExclusionReason

Span = tuple[int, int]
"""[start, end) in seconds since the epoch."""

FOREVER = 2**62


@dataclass(frozen=True, slots=True)
class Piece:
    reason: ExclusionReason
    start: int
    end: int


def _clip(spans: Sequence[Span], lo: int, hi: int) -> list[Span]:
    out = []
    for a, b in spans:
        a, b = max(a, lo), min(b, hi)
        if a < b:
            out.append((a, b))
    return out


def _merge(spans: Sequence[Span]) -> list[Span]:
    out: list[Span] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _gaps(covered: Sequence[Span], lo: int, hi: int) -> list[Span]:
    """The parts of [lo, hi) that `covered` (merged, in order) leaves out."""
    out, at = [], lo
    for a, b in _clip(covered, lo, hi):
        if a > at:
            out.append((at, a))
        at = max(at, b)
    if at < hi:
        out.append((at, hi))
    return out


Window = tuple[ExclusionReason, int, int]
"""An operator's exclusion (maintenance or operator-fault) over [start, end)."""


def exclusions(
    start: int, end: int, term: Span, held: Sequence[Span], windows: Sequence[Window] = ()
) -> list[Piece]:
    """The excluded pieces of [start, end), in time order; what is left is billable.
    `outside-term` comes first, then `node-down`, then the operator's windows in order, each
    taking only what is still billable."""
    t0, t1 = term
    if t0 <= start and end <= t1 and not windows:
        for a, b in held:  # the usual case: in the term, on a node held throughout
            if a <= start and end <= b:
                return []
    pieces = [Piece(ExclusionReason.OUTSIDE_TERM, a, b) for a, b in _gaps([(t0, t1)], start, end)]
    lo, hi = max(start, t0), min(end, t1)
    if lo < hi:
        covered = _merge(_clip(held, lo, hi))
        pieces += [Piece(ExclusionReason.NODE_DOWN, a, b) for a, b in _gaps(covered, lo, hi)]
    pieces += carve(start, end, pieces, windows)
    return sorted(pieces, key=lambda p: p.start)


def carve(start: int, end: int, taken: Sequence[Piece], windows: Sequence[Window]) -> list[Piece]:
    """Pieces for the operator's windows over what `taken` leaves billable of [start, end)."""
    out: list[Piece] = []
    for reason, w0, w1 in windows:
        used = _merge([(p.start, p.end) for p in (*taken, *out)])
        billable = _gaps(used, start, end)
        out += [Piece(reason, a, b) for a, b in _clip(billable, w0, w1)]
    return out


def covered(term: Span, held: Sequence[Span]) -> Span | None:
    """The stretch of the term during which the contract held the node without a break, when
    its holdings make one: an interval inside it has nothing excluded (no operator's window
    assumed). None when the holdings have gaps (ask `exclusions`)."""
    spans = _merge(held)
    if len(spans) != 1:
        return None
    lo, hi = max(term[0], spans[0][0]), min(term[1], spans[0][1])
    return (lo, hi) if lo < hi else None


def excluded_seconds(pieces: Sequence[Piece]) -> int:
    return sum(p.end - p.start for p in pieces)
