"""What the planner assumes about an accelerator when a scenario does not say: IT power per
GPU, the smallest unit sold, what a GPU-quarter of hardware costs, and prices.

Prices come from the live system's defaults (`contracts.pricing`: the list prices and term
discounts that seed billing's `list-usd` book), so an unpriced deal in a scenario is priced
the way a quote would be. Power per GPU is node-level IT power from public figures
(shared/reference/public-figures.md): a DGX H100 node draws about 10.2 kW for 8 GPUs, a DGX
B200 14.3 kW, an NVL72 rack about 120 kW for 72 GPUs. Hardware cost is an estimate (est.):
the price of a GPU with its share of the node and network, written off over five years.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from neocloud.capacity.loading import NVL72_GPUS
from neocloud.contracts.models import ContractType
from neocloud.contracts.pricing import H100_TFLOPS, gpu_hour_rate, list_price
from neocloud.planning.quarters import HOURS_PER_QUARTER

DEPRECIATION_QUARTERS = 20
"""Five years: the useful life over which hardware is written off (est.)."""


@dataclass(frozen=True)
class ChipDefaults:
    kw_per_gpu: float
    """IT power per GPU at node level (GPU, CPU, memory, network), kW."""
    block_gpus: int
    """The smallest unit sold: an NVLink domain for rack-scale systems, else a node."""
    capex_per_gpu: float
    """Purchase price per GPU with its share of node and network, USD (est.)."""
    bf16_tflops: float
    """Dense BF16 TFLOP/s, as in the built-in catalog (migration 0001)."""


CHIPS: dict[str, ChipDefaults] = {
    "H100": ChipDefaults(1.3, 8, 30_000, 989),
    "H200": ChipDefaults(1.3, 8, 35_000, 989),
    "B200": ChipDefaults(1.8, 8, 45_000, 2250),
    "GB200": ChipDefaults(1.7, NVL72_GPUS, 60_000, 2500),
    "GB300": ChipDefaults(1.9, NVL72_GPUS, 70_000, 2500),
}
UNKNOWN = ChipDefaults(1.3, 8, 30_000, float(H100_TFLOPS))


def chip(accelerator: str) -> ChipDefaults:
    """Defaults of a built-in chip; a custom chip is treated as an H100-class node."""
    return CHIPS.get(accelerator, UNKNOWN)


def default_block_gpus(accelerator: str, gpus_per_node: int) -> int:
    """The unit sold for a fleet pool: a rack-scale chip's NVLink domain, else a node (the
    capacity calendar's rule for deliveries whose block size it does not know yet)."""
    if accelerator.upper().startswith("GB"):
        return NVL72_GPUS
    return gpus_per_node


def depreciation_per_gpu_quarter(accelerator: str) -> float:
    return chip(accelerator).capex_per_gpu / DEPRECIATION_QUARTERS


def reserved_price(accelerator: str, term_quarters: int) -> float:
    """USD per GPU-hour that the price book's defaults charge a reserved contract of this
    term (the list price less the term discount, as `neocloud quote` would offer)."""
    rate = gpu_hour_rate(
        ContractType.RESERVED,
        accelerator,
        Decimal(str(chip(accelerator).bf16_tflops)),
        term_quarters * HOURS_PER_QUARTER,
    )
    return float(rate)


def on_demand_price(accelerator: str) -> float:
    """USD per GPU-hour on demand: what renting elsewhere would cost the operator, the default
    cost of a GPU-hour of internal demand left unmet."""
    return float(list_price(accelerator, Decimal(str(chip(accelerator).bf16_tflops))))
