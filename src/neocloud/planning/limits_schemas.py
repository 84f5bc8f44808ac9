"""The usage-limits question as a person writes it (a YAML/JSON file, or the body of
POST /v1/limits) and the answer's shape. Every default is documented in docs/limits.md with
its source; `to_question` turns a validated request into the pure core's plain data."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from neocloud.core import yamlfile
from neocloud.core.errors import InvalidInput
from neocloud.core.names import Slug
from neocloud.planning import limits as core

MAX_MW = 100_000.0
MAX_GPUS = 100_000_000
MAX_USERS = 100_000_000_000
MAX_TOKENS_PER_S = 10_000_000.0
DEFAULT_PUE = 1.2  # the top of the 1.1-1.2 hyperscale range (public-figures.md)

# DeepSeek-V3/R1 inference system overview (2025-03-01), per H800 node of 8 GPUs (H100
# compute and memory bandwidth): 73.7k input tokens/s in prefill (prefix-cache hits
# included), 14.8k output tokens/s in decode, 20-22 output tokens/s per user; a day's
# traffic of 608B input and 168B output tokens (3.6 : 1).
DEEPSEEK_INPUT_PER_GPU = 73_700 / 8
DEEPSEEK_OUTPUT_PER_GPU = 14_800 / 8


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


Chip = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
Share = Annotated[float, Field(gt=0, le=1)]


class BlockIn(Strict):
    """GPUs serving: a count, facility MW, or all of a site of the live fleet."""

    accelerator: Chip | None = Field(
        default=None, description="default: the model's reference chip (a site: its own chips)"
    )
    gpus: Annotated[int | None, Field(ge=1, le=MAX_GPUS)] = None
    mw: Annotated[float | None, Field(gt=0, le=MAX_MW, description="facility MW")] = None
    pue: Annotated[
        float | None,
        Field(ge=1, le=3, description="default 1.2 with mw; with gpus it only reports facility MW"),
    ] = None
    watts_per_gpu: Annotated[
        float | None, Field(gt=0, le=100_000, description="node-level IT watts per GPU")
    ] = None
    site: Slug | None = Field(default=None, description="a site of the live fleet (API only)")
    label: Annotated[str | None, Field(max_length=120)] = None

    @model_validator(mode="after")
    def _one_source(self) -> BlockIn:
        given = [k for k in ("gpus", "mw", "site") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of gpus, mw or site")
        if self.site is not None and (self.accelerator or self.pue or self.watts_per_gpu):
            raise ValueError("a site brings its own chips, PUE and power")
        return self


class MessageIn(Strict):
    input_tokens: Annotated[float, Field(gt=0, le=10_000_000)] = 3_600
    output_tokens: Annotated[float, Field(gt=0, le=10_000_000)] = 1_000


class ModelIn(Strict):
    """Throughput per GPU of the reference chip at the target latency and batch size."""

    name: Annotated[str, Field(min_length=1, max_length=120)] = "deepseek-v3-class"
    accelerator: Chip = "H100"
    input_tokens_per_s: Annotated[float | None, Field(gt=0, le=MAX_TOKENS_PER_S)] = None
    output_tokens_per_s: Annotated[float | None, Field(gt=0, le=MAX_TOKENS_PER_S)] = None
    tokens_per_s: Annotated[
        float | None,
        Field(gt=0, le=MAX_TOKENS_PER_S, description="one blended figure, at the message mix"),
    ] = None
    stream_tokens_per_s: Annotated[float | None, Field(gt=0, le=100_000)] = 21
    batch_size: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    target_latency_ms: Annotated[float | None, Field(gt=0, le=3_600_000)] = None
    message: MessageIn = Field(default_factory=MessageIn)
    speed: dict[Chip, Annotated[float, Field(gt=0, le=1000)]] = Field(
        default_factory=dict, description="a chip's throughput as a multiple of the reference"
    )

    @model_validator(mode="after")
    def _throughput(self) -> ModelIn:
        split = (self.input_tokens_per_s, self.output_tokens_per_s)
        if self.tokens_per_s is not None and any(v is not None for v in split):
            raise ValueError("give tokens_per_s, or input_tokens_per_s and output_tokens_per_s")
        if (split[0] is None) != (split[1] is None):
            raise ValueError("input_tokens_per_s and output_tokens_per_s go together")
        if self.tokens_per_s is None and split[0] is None:
            self.input_tokens_per_s = DEEPSEEK_INPUT_PER_GPU
            self.output_tokens_per_s = DEEPSEEK_OUTPUT_PER_GPU
        return self


class TierIn(Strict):
    name: Annotated[str, Field(min_length=1, max_length=63)]
    users: Annotated[int, Field(ge=1, le=MAX_USERS)]
    weight: Annotated[float | None, Field(gt=0, le=1_000_000)] = None
    traffic_share: Share | None = None
    peak_concurrency: Share = Field(
        default=0.1, description="share of the tier's users active in the peak hour"
    )
    weekly_uptake: Share | None = Field(
        default=None, description="share of its weekly limit a user consumes (default: top level)"
    )


DEFAULT_TIERS = [
    TierIn(name="free", users=150_000_000, weight=0.2, peak_concurrency=0.04),
    TierIn(name="pro", users=20_000_000, weight=1, peak_concurrency=0.12),
    TierIn(name="max", users=3_000_000, weight=5, peak_concurrency=0.25),
    TierIn(name="enterprise", users=15_000_000, weight=2, peak_concurrency=0.15),
]


class LoadIn(Strict):
    peak_to_off_peak: Annotated[float | None, Field(ge=1, le=100)] = None
    peak_hour: Annotated[int, Field(ge=0, le=23)] = 14
    hourly: Annotated[
        list[Annotated[float, Field(ge=0, le=1e12)]] | None,
        Field(min_length=24, max_length=168, description="24 or 168 relative loads"),
    ] = None

    @model_validator(mode="after")
    def _one_shape(self) -> LoadIn:
        if self.hourly is not None and self.peak_to_off_peak is not None:
            raise ValueError("give peak_to_off_peak or hourly, not both")
        return self

    def shape(self) -> tuple[float, ...]:
        if self.hourly is not None:
            return tuple(self.hourly)
        # DeepSeek ran 278 nodes at peak and 226.75 on average over a day: a mean of 0.816
        # of the peak, which a cosine day gives at a peak 1.6 times the off-peak.
        return core.cosine_day(self.peak_to_off_peak or 1.6, self.peak_hour)


class AddIn(Strict):
    capacity: Annotated[list[BlockIn], Field(min_length=1, max_length=100)]
    tiers: Annotated[list[str] | None, Field(max_length=100)] = Field(
        default=None, description="the tiers the new block goes to (default: all, by weight)"
    )

    _wrap = field_validator("capacity", mode="before")(_as_list)


class LimitsRequest(Strict):
    capacity: Annotated[list[BlockIn], Field(min_length=1, max_length=100)]
    model: ModelIn = Field(default_factory=ModelIn)
    tiers: Annotated[list[TierIn], Field(min_length=1, max_length=100)] = Field(
        default_factory=lambda: [t.model_copy() for t in DEFAULT_TIERS]
    )
    headroom: Annotated[float, Field(ge=0, lt=1)] = 0.2
    load: LoadIn = Field(default_factory=LoadIn)
    weekly_uptake: Share = 0.2
    add: AddIn | None = None

    _wrap = field_validator("capacity", mode="before")(_as_list)

    def sites(self) -> list[str]:
        blocks = [*self.capacity, *(self.add.capacity if self.add else [])]
        return [b.site for b in blocks if b.site is not None]


def _block(b: BlockIn, model: ModelIn, loc: tuple[str | int, ...]) -> core.Block:
    assert b.site is None, "sites are resolved by the service"
    return core.Block(
        accelerator=b.accelerator or model.accelerator,
        gpus=b.gpus,
        mw=b.mw,
        pue=(b.pue or DEFAULT_PUE) if b.mw is not None else b.pue,
        watts_per_gpu=b.watts_per_gpu,
        label=b.label or "",
        loc=loc,
    )


def to_question(
    req: LimitsRequest,
    sites: dict[tuple[str, int], list[core.Block]] | None = None,
) -> core.Question:
    """The core's question; `sites` holds the blocks each site block stands for, keyed by
    (which list, index) with the list "capacity" or "add"."""
    sites = sites or {}

    def blocks(which: str, items: list[BlockIn]) -> tuple[core.Block, ...]:
        out: list[core.Block] = []
        for i, b in enumerate(items):
            loc: tuple[str | int, ...] = (
                (which, i) if which == "capacity" else ("add", "capacity", i)
            )
            out += sites[(which, i)] if b.site is not None else [_block(b, req.model, loc)]
        return tuple(out)

    m = req.model
    profile = core.Profile(
        name=m.name,
        accelerator=m.accelerator,
        message_input_tokens=m.message.input_tokens,
        message_output_tokens=m.message.output_tokens,
        input_tokens_per_s=m.input_tokens_per_s,
        output_tokens_per_s=m.output_tokens_per_s,
        tokens_per_s=m.tokens_per_s,
        stream_tokens_per_s=m.stream_tokens_per_s,
        batch_size=m.batch_size,
        speed=dict(m.speed),
    )
    tiers = tuple(
        core.Tier(
            name=t.name,
            users=t.users,
            peak_concurrency=t.peak_concurrency,
            weight=t.weight,
            traffic_share=t.traffic_share,
            weekly_uptake=t.weekly_uptake,
        )
        for t in req.tiers
    )
    return core.Question(
        capacity=blocks("capacity", req.capacity),
        profile=profile,
        tiers=tiers,
        headroom=req.headroom,
        hourly=req.load.shape(),
        weekly_uptake=req.weekly_uptake,
        add=blocks("add", req.add.capacity) if req.add else (),
        add_to_tiers=tuple(req.add.tiers) if req.add and req.add.tiers is not None else None,
    )


def load_request(text: str | bytes, what: str = "limits file") -> LimitsRequest:
    """Parse and validate a limits file (YAML or JSON); errors name the line and field."""
    data, lines = yamlfile.load(text, what)
    if not isinstance(data, dict):
        raise InvalidInput(f"{what} must be a mapping of fields (capacity, model, tiers, ...)")
    req: LimitsRequest = yamlfile.validate(LimitsRequest, data, lines, what)
    return req


def with_lines(exc: InvalidInput, text: str | bytes, what: str = "limits file") -> InvalidInput:
    """`exc` from the core, its fields given the line they are on in `text`."""
    _, lines = yamlfile.load(text, what)
    errors = [{**e, "line": lines.line_of(tuple(e.get("loc", ())))} for e in exc.errors]
    line = errors[0]["line"] if errors else None
    detail = f"line {line}: {exc.detail}" if line else exc.detail
    return InvalidInput(detail, errors=errors)


# --- the answer ---------------------------------------------------------------------------


class PeakOffPeak(BaseModel):
    peak: int
    off_peak: int


class FleetTokens(BaseModel):
    capacity: int
    served_peak: int
    served_off_peak: int
    spare_off_peak: int


class BlockOut(BaseModel):
    label: str
    accelerator: str
    gpus: int
    mw: float | None
    pue: float | None
    watts_per_gpu: float
    tokens_per_s_per_gpu: float
    tokens_per_min: int


class FleetOut(BaseModel):
    gpus: int
    it_mw: float
    facility_mw: float | None
    concurrent_streams: int | None
    tokens_per_min: FleetTokens
    tokens_per_day: int
    blocks: list[BlockOut]


class TierLimits(BaseModel):
    tier: str
    users: int
    active_at_peak: int
    share_of_peak: float
    tokens_per_min: PeakOffPeak
    tokens_per_5h: PeakOffPeak
    messages_per_5h: PeakOffPeak
    tokens_per_week: int
    messages_per_week: int


class LimitsAt(BaseModel):
    fleet: FleetOut
    tiers: list[TierLimits]


class TierChange(BaseModel):
    tier: str
    multiplier: float | None
    messages_per_5h: Annotated[list[int], Field(description="[before, after], at peak")]
    messages_per_week: Annotated[list[int], Field(description="[before, after]")]


class Change(BaseModel):
    added_gpus: int
    added_it_mw: float
    added_facility_mw: float | None
    capacity_multiplier: float
    tiers: list[TierChange]


class LoadOut(BaseModel):
    peak_to_off_peak: float
    mean_to_peak: float


class LimitsOut(BaseModel):
    model: str
    load: LoadOut
    before: LimitsAt
    after: LimitsAt | None
    change: Change | None
