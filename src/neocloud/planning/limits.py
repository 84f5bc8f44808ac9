"""Inference capacity -> usage limits: what GPUs serving a model give each user of a lab.

Pure arithmetic over plain data (no database, no HTTP); docs/limits.md derives every formula
and names the source of every default. In short:

- each block of capacity is GPUs of one chip, given as a count or as facility MW (GPUs =
  MW / PUE / the chip's node-level watts per GPU);
- a GPU serves a message (m_in input + m_out output tokens) in m_in/I + m_out/O GPU-seconds,
  I and O being the profile's prefill and decode throughput per GPU, scaled to other chips
  by BF16 compute (prefill) and memory bandwidth (decode);
- the fleet sustains C tokens a minute at peak while keeping `headroom` of it free;
- the load follows an hourly shape whose peak just fills C; off-peak, the same fleet
  serves fewer active users, so each may draw more, and the rest is spare;
- each tier's users share C by weight x users x concurrency (or a given traffic share):
  tokens a minute per user active at peak, a 5-hour session budget, and a weekly budget
  sized so that what users actually consume of it (`weekly_uptake`) fills the week.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from neocloud.core.errors import InvalidInput

MINUTES_5H = 300
HOURS_PER_WEEK = 168

# Node-level IT power per GPU over the chip's TDP (CPUs, NICs, fans, switches), from the
# public node figures in shared/reference/public-figures.md: a DGX H100 draws about 10.2 kW
# for 8 x 700 W GPUs (1.82); an NVL72 rack about 120 kW for 72 x 1,200 W GB200 (1.39).
HGX_OVERHEAD = 10_200 / 8 / 700
NVL72_OVERHEAD = 120_000 / 72 / 1_200


@dataclass(frozen=True)
class Chip:
    """What the arithmetic needs of an accelerator: TDP and BF16 TFLOP/s as in the fleet's
    catalog; HBM bandwidth (TB/s, NVIDIA data sheets) where known; node watts per GPU."""

    name: str
    tdp_w: float
    bf16_tflops: float
    hbm_tb_s: float | None = None
    node_w_per_gpu: float | None = None

    @property
    def watts_per_gpu(self) -> float:
        if self.node_w_per_gpu is not None:
            return self.node_w_per_gpu
        rack = self.name.upper().startswith("GB")
        return self.tdp_w * (NVL72_OVERHEAD if rack else HGX_OVERHEAD)


# The built-in chips (TDP and BF16 as migration 0001 seeds the catalog; a test holds them
# equal), with HBM bandwidth and node power per GPU from the public figures.
BUILTIN_CHIPS: dict[str, Chip] = {
    c.name: c
    for c in (
        Chip("H100", 700, 989, 3.35, 10_200 / 8),
        Chip("H200", 700, 989, 4.8, 10_200 / 8),
        Chip("B200", 1000, 2250, 8.0, 14_300 / 8),
        Chip("GB200", 1200, 2500, 8.0, 120_000 / 72),
        Chip("GB300", 1400, 2500, 8.0),
    )
}


@dataclass(frozen=True)
class Block:
    """GPUs of one chip: `gpus`, or `mw` of facility power at `pue` (GPUs from power)."""

    accelerator: str
    gpus: int | None = None
    mw: float | None = None
    pue: float | None = None
    watts_per_gpu: float | None = None  # node-level IT watts per GPU; default the chip's
    label: str = ""
    loc: tuple[str | int, ...] = ()  # where it was given, for errors


@dataclass(frozen=True)
class Profile:
    """A model's serving profile on its reference chip. Either `input_tokens_per_s` and
    `output_tokens_per_s` per GPU (prefill and decode at the target latency and batch), or
    one blended `tokens_per_s` per GPU measured at the message mix below."""

    name: str
    accelerator: str
    message_input_tokens: float
    message_output_tokens: float
    input_tokens_per_s: float | None = None
    output_tokens_per_s: float | None = None
    tokens_per_s: float | None = None
    stream_tokens_per_s: float | None = None  # output speed each user sees
    batch_size: int | None = None
    speed: Mapping[str, float] = field(default_factory=dict)  # chip -> x the reference


@dataclass(frozen=True)
class Tier:
    name: str
    users: int
    peak_concurrency: float  # share of the tier's users active in the peak hour
    weight: float | None = None  # a user's entitlement relative to other tiers' users
    traffic_share: float | None = None  # or: the tier's share of the fleet's tokens
    weekly_uptake: float | None = None  # share of its weekly limit a user consumes


@dataclass(frozen=True)
class Question:
    capacity: tuple[Block, ...]
    profile: Profile
    tiers: tuple[Tier, ...]
    headroom: float
    hourly: tuple[float, ...]  # 24 or 168 loads; only their ratios to the maximum matter
    weekly_uptake: float
    add: tuple[Block, ...] = ()
    add_to_tiers: tuple[str, ...] | None = None  # who gets the new block (default: all)


def cosine_day(peak_to_off_peak: float, peak_hour: int = 14) -> tuple[float, ...]:
    """A day whose load swings smoothly from 1 at `peak_hour` to 1/ratio twelve hours later."""
    low = 1 / peak_to_off_peak
    mid, amp = (1 + low) / 2, (1 - low) / 2
    return tuple(mid + amp * math.cos(2 * math.pi * (h - peak_hour) / 24) for h in range(24))


def _fail(loc: tuple[str | int, ...], msg: str) -> InvalidInput:
    where = ".".join(str(p) for p in loc)
    return InvalidInput(f"{where}: {msg}", errors=[{"loc": list(loc), "msg": msg}])


def _chip(chips: Mapping[str, Chip], name: str, loc: tuple[str | int, ...]) -> Chip:
    chip = chips.get(name)
    if chip is None:
        known = ", ".join(sorted(chips))
        raise _fail(loc, f"unknown accelerator '{name}' (known: {known})")
    return chip


def block_gpus(block: Block, chips: Mapping[str, Chip]) -> tuple[int, float]:
    """The block's GPUs and node watts per GPU."""
    chip = _chip(chips, block.accelerator, (*block.loc, "accelerator"))
    watts = block.watts_per_gpu or chip.watts_per_gpu
    if block.gpus is not None:
        return block.gpus, watts
    if block.mw is None or block.pue is None:
        raise _fail(block.loc, "give gpus, or mw and pue")
    return int(block.mw * 1_000_000 / block.pue / watts), watts


def per_gpu(profile: Profile, chip: Chip, ref: Chip) -> dict[str, float]:
    """Messages and tokens a second one GPU of `chip` serves under `profile`."""
    override = profile.speed.get(chip.name)
    prefill = override or chip.bf16_tflops / ref.bf16_tflops
    decode = override or (
        chip.hbm_tb_s / ref.hbm_tb_s if chip.hbm_tb_s and ref.hbm_tb_s else prefill
    )
    m_in, m_out = profile.message_input_tokens, profile.message_output_tokens
    if profile.input_tokens_per_s and profile.output_tokens_per_s:
        seconds = m_in / (profile.input_tokens_per_s * prefill) + m_out / (
            profile.output_tokens_per_s * decode
        )
    else:
        assert profile.tokens_per_s
        seconds = (m_in + m_out) / (profile.tokens_per_s * decode)
    messages = 1 / seconds
    return {
        "messages_per_s": messages,
        "tokens_per_s": messages * (m_in + m_out),
        "output_tokens_per_s": messages * m_out,
    }


def capacity(
    blocks: Sequence[Block], profile: Profile, chips: Mapping[str, Chip], headroom: float
) -> dict[str, Any]:
    """The blocks' GPUs, MW and sustained tokens a minute at peak (after headroom)."""
    ref = _chip(chips, profile.accelerator, ("model", "accelerator"))
    rows, gpus, tokens_s, output_s, it_w, facility_w = [], 0, 0.0, 0.0, 0.0, 0.0
    for block in blocks:
        n, watts = block_gpus(block, chips)
        rate = per_gpu(profile, _chip(chips, block.accelerator, block.loc), ref)
        used = 1 - headroom
        gpus += n
        tokens_s += n * rate["tokens_per_s"] * used
        output_s += n * rate["output_tokens_per_s"] * used
        it_w += n * watts
        facility_w += n * watts * (block.pue or 1)
        rows.append(
            {
                "label": block.label or block.accelerator,
                "accelerator": block.accelerator,
                "gpus": n,
                "mw": block.mw,
                "pue": block.pue,
                "watts_per_gpu": round(watts, 1),
                "tokens_per_s_per_gpu": round(rate["tokens_per_s"], 1),
                "tokens_per_min": int(n * rate["tokens_per_s"] * used * 60),
            }
        )
    streams = output_s / profile.stream_tokens_per_s if profile.stream_tokens_per_s else None
    return {
        "gpus": gpus,
        "it_mw": round(it_w / 1e6, 3),
        "facility_mw": round(facility_w / 1e6, 3) if all(b.pue for b in blocks) else None,
        "tokens_per_min": tokens_s * 60,
        "concurrent_streams": int(streams) if streams is not None else None,
        "blocks": rows,
    }


@dataclass(frozen=True)
class Load:
    hourly: tuple[float, ...]  # normalized: the busiest hour is 1

    @property
    def off_peak(self) -> float:
        return min(self.hourly)

    @property
    def week_hours(self) -> float:
        """Hours of peak-level load in a week (the sum of the normalized week)."""
        return sum(self.hourly) * (HOURS_PER_WEEK / len(self.hourly))


def load_of(hourly: Sequence[float]) -> Load:
    if len(hourly) not in (24, HOURS_PER_WEEK):
        raise _fail(("load", "hourly"), f"give 24 or 168 hourly loads, not {len(hourly)}")
    top = max(hourly)
    if top <= 0 or min(hourly) < 0:
        raise _fail(("load", "hourly"), "loads must be >= 0 with at least one above 0")
    if min(hourly) == 0:
        raise _fail(("load", "hourly"), "an hour with no load at all has no off-peak limit")
    return Load(tuple(h / top for h in hourly))


def _entitlements(tiers: Sequence[Tier], factors: Sequence[float]) -> list[float]:
    """Each tier's claim on capacity: weight x users x factor (concurrency or uptake), or its
    traffic share."""
    weighted = [t.weight is not None for t in tiers]
    shared = [t.traffic_share is not None for t in tiers]
    if all(shared):
        total = sum(t.traffic_share or 0 for t in tiers)
        if abs(total - 1) > 1e-6:
            raise _fail(("tiers",), f"traffic shares sum to {total:g}; they must sum to 1")
        return [t.traffic_share or 0 for t in tiers]
    if not all(weighted) or any(shared):
        raise _fail(("tiers",), "give every tier a weight, or every tier a traffic_share")
    return [(t.weight or 0) * t.users * f for t, f in zip(tiers, factors, strict=True)]


def _split(total: float, claims: Sequence[float]) -> list[float]:
    whole = sum(claims)
    return [total * c / whole if whole else 0.0 for c in claims]


def _allot(total: float, claims: Sequence[float], keep: Mapping[int, float] | None) -> list[float]:
    """Split `total` by claims; tiers in `keep` hold their amount, the rest share the remainder."""
    if not keep:
        return _split(total, claims)
    rest = [i for i in range(len(claims)) if i not in keep]
    shares = _split(total - sum(keep.values()), [claims[i] for i in rest])
    out = [0.0] * len(claims)
    for i, v in keep.items():
        out[i] = v
    for i, v in zip(rest, shares, strict=True):
        out[i] = v
    return out


def _limits(
    q: Question,
    cap: dict[str, Any],
    load: Load,
    keep: tuple[Mapping[int, float], Mapping[int, float]] | None = None,
) -> tuple[dict[str, Any], tuple[list[float], list[float]]]:
    per_min = cap["tokens_per_min"]
    per_week = per_min * 60 * load.week_hours
    tiers = q.tiers
    uptake = [t.weekly_uptake or q.weekly_uptake for t in tiers]
    peak_claims = _entitlements(tiers, [t.peak_concurrency for t in tiers])
    week_claims = _entitlements(tiers, uptake)
    peak = _allot(per_min, peak_claims, keep[0] if keep else None)
    week = _allot(per_week, week_claims, keep[1] if keep else None)
    m_tokens = q.profile.message_input_tokens + q.profile.message_output_tokens
    rows = []
    for t, u, p, w in zip(tiers, uptake, peak, week, strict=True):
        active = t.users * t.peak_concurrency
        tpm = p / active if active else 0.0
        tpm_off = tpm / load.off_peak
        weekly = w / (t.users * u) if t.users else 0.0
        rows.append(
            {
                "tier": t.name,
                "users": t.users,
                "active_at_peak": int(active),
                "share_of_peak": round(p / per_min, 4) if per_min else 0.0,
                "tokens_per_min": {"peak": int(tpm), "off_peak": int(tpm_off)},
                "tokens_per_5h": {
                    "peak": int(tpm * MINUTES_5H),
                    "off_peak": int(tpm_off * MINUTES_5H),
                },
                "messages_per_5h": {
                    "peak": int(tpm * MINUTES_5H / m_tokens),
                    "off_peak": int(tpm_off * MINUTES_5H / m_tokens),
                },
                "tokens_per_week": int(weekly),
                "messages_per_week": int(weekly / m_tokens),
            }
        )
    fleet = {
        "gpus": cap["gpus"],
        "it_mw": cap["it_mw"],
        "facility_mw": cap["facility_mw"],
        "concurrent_streams": cap["concurrent_streams"],
        "tokens_per_min": {
            "capacity": int(per_min),
            "served_peak": int(per_min),
            "served_off_peak": int(per_min * load.off_peak),
            "spare_off_peak": int(per_min * (1 - load.off_peak)),
        },
        "tokens_per_day": int(per_week / 7),
        "blocks": cap["blocks"],
    }
    return {"fleet": fleet, "tiers": rows}, (peak, week)


def _check(q: Question) -> None:
    if not q.tiers:
        raise _fail(("tiers",), "give at least one tier")
    names = [t.name for t in q.tiers]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise _fail(("tiers", i, "name"), f"tier '{name}' is given twice")
    for i, t in enumerate(q.tiers):
        if t.users <= 0:
            raise _fail(("tiers", i, "users"), "a tier needs users")
    if not q.capacity:
        raise _fail(("capacity",), "give the GPUs serving today (gpus, mw or a site)")
    for i, name in enumerate(q.add_to_tiers or ()):
        if name not in names:
            raise _fail(("add", "tiers", i), f"no tier named '{name}' (tiers: {', '.join(names)})")


def usage_limits(q: Question, chips: Mapping[str, Chip] = BUILTIN_CHIPS) -> dict[str, Any]:
    """Per-tier limits today and, when `q.add` is given, with the new block, and the change."""
    _check(q)
    load = load_of(q.hourly)
    before_cap = capacity(q.capacity, q.profile, chips, q.headroom)
    if before_cap["tokens_per_min"] <= 0:
        raise _fail(("capacity",), "the capacity holds no whole GPU")
    before, (peak, week) = _limits(q, before_cap, load)
    out: dict[str, Any] = {
        "model": q.profile.name,
        "load": {
            "peak_to_off_peak": round(1 / load.off_peak, 3),
            "mean_to_peak": round(sum(load.hourly) / len(load.hourly), 3),
        },
        "before": before,
        "after": None,
        "change": None,
    }
    if not q.add:
        return out
    added = capacity(q.add, q.profile, chips, q.headroom)
    after_cap = capacity((*q.capacity, *q.add), q.profile, chips, q.headroom)
    keep = None
    if q.add_to_tiers is not None:
        held = [i for i, t in enumerate(q.tiers) if t.name not in q.add_to_tiers]
        keep = ({i: peak[i] for i in held}, {i: week[i] for i in held})
    after, (peak_after, _) = _limits(q, after_cap, load, keep)

    def per_user(allotted: list[float]) -> list[float]:
        return [a / (t.users * t.peak_concurrency) for a, t in zip(allotted, q.tiers, strict=True)]

    out["after"] = after
    out["change"] = {
        "added_gpus": added["gpus"],
        "added_it_mw": added["it_mw"],
        "added_facility_mw": added["facility_mw"],
        "capacity_multiplier": round(after_cap["tokens_per_min"] / before_cap["tokens_per_min"], 3),
        "tiers": [
            {
                "tier": b["tier"],
                "multiplier": round(a_peak / b_peak, 3) if b_peak else None,
                "messages_per_5h": [b["messages_per_5h"]["peak"], a["messages_per_5h"]["peak"]],
                "messages_per_week": [b["messages_per_week"], a["messages_per_week"]],
            }
            for b, a, b_peak, a_peak in zip(
                before["tiers"], after["tiers"], per_user(peak), per_user(peak_after), strict=True
            )
        ],
    }
    return out
