"""Roles and what each may do.

Operator roles see the whole operator; tenant roles are bound to one tenant and see only
its objects. Every endpoint names one permission (see `neocloud.api.deps.require`); the
tenant-isolation test matrix reads these tables, so a new endpoint joins it by itself.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    ADMIN = "admin"
    OPS = "ops"
    SALES = "sales"
    FINANCE = "finance"
    TENANT_ADMIN = "tenant-admin"
    TENANT_VIEWER = "tenant-viewer"

    @property
    def is_tenant_role(self) -> bool:
        return self in TENANT_ROLES


TENANT_ROLES = frozenset({Role.TENANT_ADMIN, Role.TENANT_VIEWER})


class Permission(enum.StrEnum):
    CATALOG_READ = "catalog:read"
    CATALOG_WRITE = "catalog:write"
    FLEET_READ = "fleet:read"
    FLEET_WRITE = "fleet:write"
    TENANTS_READ = "tenants:read"
    TENANTS_WRITE = "tenants:write"
    TOKENS_READ = "tokens:read"
    TOKENS_WRITE = "tokens:write"
    AUDIT_READ = "audit:read"
    CAPACITY_READ = "capacity:read"
    CONTRACTS_READ = "contracts:read"
    CONTRACTS_WRITE = "contracts:write"
    QUOTES_WRITE = "quotes:write"
    SITES_DRAIN = "sites:drain"
    """Move every contract off a site (the moves are recorded under the caller's name)."""
    USAGE_WRITE = "usage:write"
    """Send usage and telemetry events (a tenant: usage of its own contracts only)."""
    USAGE_READ = "usage:read"
    """Read the usage ledgers (a tenant: its own contracts')."""
    USAGE_ADJUST = "usage:adjust"
    """Record that usage is not billed (maintenance, operator fault): operators only."""
    JOBS_READ = "jobs:read"
    """Read the shared pools' jobs (a tenant: its own)."""
    JOBS_WRITE = "jobs:write"
    """Submit, cancel and finish jobs, run a scheduling pass (a tenant: its own jobs)."""
    REPORTS_READ = "reports:read"
    """Read the operator's reports (revenue, backlog, utilization, ...): never a tenant's."""
    ENGINES_READ = "engines:read"
    """Read what the engines are given (Kueue manifests, Slurm configuration): operators."""
    ENGINES_WRITE = "engines:write"
    """Set which engine manages a fabric, reconcile it now, mark its objects manual."""
    PRICES_READ = "prices:read"
    """Read the price books (operators: sales quote from them)."""
    PRICES_WRITE = "prices:write"
    """Create price books and set prices: finance."""
    INVOICES_READ = "invoices:read"
    """Read invoices, credit notes and showback statements (a tenant: its own)."""
    INVOICES_WRITE = "invoices:write"
    """Run a billing period, issue, mark paid, void, write credit notes: finance."""
    PLANS_READ = "plans:read"
    """Read the planner's runs and their reports: operators, never a tenant."""
    PLANS_WRITE = "plans:write"
    """Ask the planner for a plan (a background run): operators."""


P = Permission

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPS: frozenset(
        {
            P.CATALOG_READ,
            P.CATALOG_WRITE,
            P.FLEET_READ,
            P.FLEET_WRITE,
            P.TENANTS_READ,
            P.CAPACITY_READ,
            P.CONTRACTS_READ,
            P.SITES_DRAIN,
            P.USAGE_WRITE,
            P.USAGE_READ,
            P.JOBS_READ,
            P.JOBS_WRITE,
            P.ENGINES_READ,
            P.ENGINES_WRITE,
            P.PLANS_READ,
            P.PLANS_WRITE,
        }
    ),
    Role.SALES: frozenset(
        {
            P.CATALOG_READ,
            P.FLEET_READ,
            P.TENANTS_READ,
            P.TENANTS_WRITE,
            P.CAPACITY_READ,
            P.CONTRACTS_READ,
            P.CONTRACTS_WRITE,
            P.QUOTES_WRITE,
            P.JOBS_READ,
            P.REPORTS_READ,
            P.PRICES_READ,
            P.PLANS_READ,
            P.PLANS_WRITE,
        }
    ),
    Role.FINANCE: frozenset(
        {
            P.CATALOG_READ,
            P.FLEET_READ,
            P.TENANTS_READ,
            P.CAPACITY_READ,
            P.CONTRACTS_READ,
            P.USAGE_READ,
            P.JOBS_READ,
            P.REPORTS_READ,
            P.PRICES_READ,
            P.PRICES_WRITE,
            P.INVOICES_READ,
            P.INVOICES_WRITE,
            P.PLANS_READ,
            P.PLANS_WRITE,
        }
    ),
    # Tenant roles act only inside their own tenant (enforced by the services' scoping):
    # they read their contracts and quotes, and a tenant admin may ask for quotes.
    Role.TENANT_ADMIN: frozenset(
        {
            P.CATALOG_READ,
            P.TENANTS_READ,
            P.TOKENS_READ,
            P.TOKENS_WRITE,
            P.CONTRACTS_READ,
            P.QUOTES_WRITE,
            P.USAGE_WRITE,
            P.USAGE_READ,
            P.JOBS_READ,
            P.JOBS_WRITE,
            P.INVOICES_READ,
        }
    ),
    Role.TENANT_VIEWER: frozenset(
        {
            P.CATALOG_READ,
            P.TENANTS_READ,
            P.TOKENS_READ,
            P.CONTRACTS_READ,
            P.USAGE_READ,
            P.JOBS_READ,
            P.INVOICES_READ,
        }
    ),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]
