"""The built-in demo scenario: the fleet file next to this module, and the story's tenants.

Later domains (contracts, usage, invoices) add their part of the story here.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth.principal import SYSTEM
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
