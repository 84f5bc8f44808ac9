"""A scenario as plain frozen data: what the optimizer, the greedy baseline and the Monte
Carlo read. Quarters are indexes 0..horizon-1 from the scenario's first quarter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from neocloud.planning.quarters import label


@dataclass(frozen=True)
class Pool:
    """One accelerator at one site."""

    accelerator: str
    gpus: int
    """Installed and in service at the first quarter."""
    block_gpus: int
    """Smallest unit sold or kept (72 for an NVL72 domain, 8 for an HGX node)."""
    kw_per_gpu: float
    """IT power per GPU at node level."""
    committed: tuple[int, ...] = ()
    """GPUs already sold, per quarter (a fleet from the database); empty: none."""
    committed_internal: tuple[int, ...] = ()
    """GPUs already held by internal contracts, per quarter (from the database)."""

    def committed_at(self, q: int) -> int:
        return self.committed[q] if q < len(self.committed) else 0


@dataclass(frozen=True)
class Site:
    name: str
    power_mw: float
    pue: float
    power_usd_per_mwh: float
    pools: tuple[Pool, ...]

    def pool(self, accelerator: str) -> Pool | None:
        return next((p for p in self.pools if p.accelerator == accelerator), None)

    @property
    def it_kw(self) -> float:
        """The IT load the site can power: facility MW / PUE, in kW."""
        return self.power_mw * 1000 / self.pue


@dataclass(frozen=True)
class Delivery:
    name: str
    site: str
    accelerator: str
    gpus: int
    quarter: int
    """The quarter it is due (index; may be negative for one already due)."""
    delay: tuple[float, ...]
    """P(k quarters late) for k = 0, 1, ...; sums to 1."""

    def planned_quarter(self, confidence: float) -> int:
        """The quarter by which it has arrived with at least this probability."""
        total = 0.0
        for k, p in enumerate(self.delay):
            total += p
            if total >= confidence - 1e-9:
                return self.quarter + k
        return self.quarter + len(self.delay) - 1


@dataclass(frozen=True)
class Deal:
    name: str
    customer: str
    accelerator: str | None
    """None for a whole-site deal."""
    gpus: int | None
    mw: float | None
    whole_site: bool
    site: str | None
    """Required site; None: any site with the accelerator."""
    start_earliest: int
    start_latest: int
    term_quarters: int
    price_per_gpu_hour: float | None
    price_per_mw_month: float | None
    probability: float
    line: int | None = None

    @property
    def starts(self) -> range:
        return range(self.start_earliest, self.start_latest + 1)


@dataclass(frozen=True)
class Demand:
    """Internal demand for one accelerator: GPUs wanted and a floor per quarter."""

    name: str
    accelerator: str
    gpus: tuple[int, ...]
    floor: tuple[int, ...]
    sites: tuple[str, ...]
    """Sites it may run at; empty: any site with the accelerator."""
    shortfall_cost_per_gpu_hour: float


@dataclass(frozen=True)
class Costs:
    operations_per_gpu_hour: float
    depreciation_per_gpu_quarter: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Decisions:
    accept: tuple[str, ...] = ()
    reject: tuple[str, ...] = ()
    place: Mapping[str, str] = field(default_factory=dict)
    start: Mapping[str, int] = field(default_factory=dict)
    others: str = "optimize"
    """"optimize": the optimizer chooses among the deals not named; "reject": it takes none."""

    @property
    def empty(self) -> bool:
        return not (self.accept or self.reject or self.place or self.start) and (
            self.others == "optimize"
        )


@dataclass(frozen=True)
class Settings:
    delivery_confidence: float = 0.5
    time_limit_s: float = 30.0
    mip_gap: float = 0.005
    explain: bool = True


@dataclass(frozen=True)
class Scenario:
    name: str
    source: str
    start: int
    """The first quarter, absolute (year x 4 + quarter - 1)."""
    horizon: int
    sites: tuple[Site, ...]
    deliveries: tuple[Delivery, ...] = ()
    deals: tuple[Deal, ...] = ()
    demand: tuple[Demand, ...] = ()
    costs: Costs = Costs(0.0)
    decisions: Decisions = Decisions()
    settings: Settings = Settings()
    description: str = ""
    fleet: str = "inline"
    """Where the sites came from: "inline", "file:PATH" or "database"."""
    lines: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    """Field path (e.g. "decisions.accept[0]") -> (file, line), for messages about choices."""

    @property
    def quarters(self) -> list[str]:
        return [label(self.start + q) for q in range(self.horizon)]

    def quarter_label(self, q: int) -> str:
        return label(self.start + q)

    def site(self, name: str) -> Site:
        return next(s for s in self.sites if s.name == name)

    def deal(self, name: str) -> Deal:
        return next(d for d in self.deals if d.name == name)

    def where(self, path: str) -> str:
        """'file:line' of a field path, or the file alone."""
        found = self.lines.get(path)
        return f"{found[0]}:{found[1]}" if found else self.source
