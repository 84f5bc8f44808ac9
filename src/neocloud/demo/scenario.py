"""The built-in demo scenario: the fleet file next to this module, the story's tenants, and
its contracts.

The story (shared/reference/public-figures.md): the operator trained its own models on the
GB200 racks of memphis-1; in May 2026 it sold all of memphis-1 to an AI lab, and booking that
sale moved the training to memphis-2 in the same transaction (a relocation). Meanwhile a
coding-tools company holds reserved NVL72 blocks at memphis-2, with GB300 blocks once those
are delivered, and smaller customers run on demand and on spot. Every contract is booked
through the same services as the API, so the calendar's invariants hold for the demo too.
Later domains (usage, invoices) add their part of the story here.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth.principal import SYSTEM
from neocloud.contracts import booking
from neocloud.contracts.schemas import ContractCreate
from neocloud.fleet.apply import apply_fleet_file
from neocloud.fleet.models import Site
from neocloud.tenants import service as tenants
from neocloud.tenants.models import TenantKind


@dataclass(frozen=True)
class DemoTenant:
    name: str
    display_name: str
    kind: TenantKind
    contact_email: str


TENANTS = [
    DemoTenant(
        "training", "Operator model training", TenantKind.INTERNAL, "training@operator.example"
    ),
    DemoTenant(
        "meridian-labs", "Meridian Labs (AI lab)", TenantKind.CUSTOMER, "capacity@meridian.example"
    ),
    DemoTenant(
        "codeloom", "Codeloom (coding tools)", TenantKind.CUSTOMER, "infra@codeloom.example"
    ),
    DemoTenant("helix-bio", "Helix Bio (protein models)", TenantKind.CUSTOMER, "ml@helix.example"),
    DemoTenant(
        "pixelforge", "Pixelforge (image models)", TenantKind.CUSTOMER, "gpu@pixelforge.example"
    ),
]

# The customer whose token `neocloud demo` prints for the console's customer portal: it holds
# reserved blocks now and later, has months of usage and invoices, and shares memphis-2 with
# other tenants (so the portal shows what isolation hides).
MAIN_CUSTOMER = "codeloom"

# The contracts, in the order they were booked. Dates are UTC; the sale is May 2026.
CONTRACTS: list[dict[str, object]] = [
    # The operator's own training on memphis-1's GB200 racks (340 NVL72 domains).
    {
        "name": "training-gb200-m1",
        "tenant": "training",
        "type": "internal",
        "accelerator": "GB200",
        "gpus": 24_480,
        "unit": "block",
        "site": "memphis-1",
        "start": "2025-03-01T00:00:00Z",
        "end": "2028-12-01T00:00:00Z",
        "lendable": True,
        "notes": "frontier pre-training; idle racks may be resold as spot",
    },
    # Inference and research on memphis-2, with a floor sales can never take.
    {
        "name": "training-gb200-m2",
        "tenant": "training",
        "type": "internal",
        "accelerator": "GB200",
        "gpus": 18_432,
        "unit": "block",
        "site": "memphis-2",
        "start": "2025-09-01T00:00:00Z",
        "end": "2029-09-01T00:00:00Z",
        "floors": [{"gpus": 18_432}],
    },
    # Coding-tools company: reserved whole NVL72 blocks, take-or-pay, 20% prepaid.
    {
        "name": "codeloom-gb200",
        "tenant": "codeloom",
        "type": "reserved",
        "accelerator": "GB200",
        "gpus": 4_608,
        "unit": "block",
        "site": "memphis-2",
        "start": "2026-01-01T00:00:00Z",
        "end": "2028-01-01T00:00:00Z",
        "prepayment_pct": "20",
        "sla_tier": "premium",
    },
    {
        "name": "codeloom-gb300",
        "tenant": "codeloom",
        "type": "reserved",
        "accelerator": "GB300",
        "gpus": 9_216,
        "unit": "block",
        "site": "memphis-2",
        "start": "2027-09-01T00:00:00Z",
        "end": "2029-09-01T00:00:00Z",
        "prepayment_pct": "15",
        "sla_tier": "premium",
    },
    # The sale: all of memphis-1 for four years; the training above moves to memphis-2.
    {
        "name": "meridian-memphis-1",
        "tenant": "meridian-labs",
        "type": "dedicated-site",
        "site": "memphis-1",
        "start": "2026-05-01T00:00:00Z",
        "end": "2030-05-01T00:00:00Z",
        "prepayment_pct": "25",
        "sla_tier": "critical",
        "relocate_internal": True,
    },
    # Smaller customers: no capacity held.
    {
        "name": "helix-on-demand",
        "tenant": "helix-bio",
        "type": "on-demand",
        "accelerator": "GB200",
        "site": "memphis-2",
        "start": "2026-06-01T00:00:00Z",
        "end": "2027-06-01T00:00:00Z",
    },
    {
        "name": "pixelforge-spot",
        "tenant": "pixelforge",
        "type": "spot",
        "accelerator": "GB200",
        "gpus": 576,
        "site": "memphis-2",
        "start": "2026-06-01T00:00:00Z",
        "end": "2027-06-01T00:00:00Z",
        "notice_minutes": 30,
    },
]


def fleet_file() -> str:
    return resources.files("neocloud.demo").joinpath("fleet.yaml").read_text()


def is_loaded(session: Session) -> bool:
    return session.scalar(sa.select(sa.func.count()).select_from(Site)) != 0


def load(session: Session) -> None:
    """Load the scenario into an empty database (in the caller's transaction)."""
    apply_fleet_file(session, actor=SYSTEM, text=fleet_file())
    for t in TENANTS:
        tenants.create_tenant(
            session,
            actor=SYSTEM,
            name=t.name,
            display_name=t.display_name,
            kind=t.kind,
            contact_email=t.contact_email,
        )
    for spec in CONTRACTS:
        booking.create_contract(session, actor=SYSTEM, body=ContractCreate.model_validate(spec))
