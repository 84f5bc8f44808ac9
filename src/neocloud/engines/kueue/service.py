"""The use case: a site's (or every site's) Kueue manifests for an hour."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission
from neocloud.core.errors import Conflict, InvalidInput
from neocloud.core.timeutil import utcnow
from neocloud.engines.kueue import loader, yamlio
from neocloud.engines.kueue.model import API_GROUP, DEFAULT_API_VERSION
from neocloud.engines.kueue.render import render
from neocloud.engines.kueue.schemas import KueueManifests, SiteManifests


def manifests(
    session: Session,
    *,
    actor: Principal,
    site: str | None = None,
    at: datetime | None = None,
    api_version: str = DEFAULT_API_VERSION,
) -> KueueManifests:
    """What each site's Kueue should hold during the hour that holds `at` (default: now)."""
    actor.demand(Permission.ENGINES_READ)
    try:
        start = loader.hour_start(at or utcnow())
    except OverflowError:
        raise InvalidInput(
            f"at {at}: out of range", errors=[{"loc": ["query", "at"], "msg": "out of range"}]
        ) from None
    out = []
    for name in loader.site_names(session, site):
        state = loader.load_site(session, name, start)
        try:
            docs = render(state, api_version)
        except ValueError as exc:  # two objects that would share a name, say
            raise Conflict(f"site '{name}': cannot express its contracts in Kueue: {exc}") from exc
        out.append(SiteManifests(site=name, manifests=docs))
    return KueueManifests(at=start, api_version=f"{API_GROUP}/{api_version}", sites=out)


def as_yaml(result: KueueManifests) -> str:
    """Every site's manifests as one YAML stream, each site behind its own header."""
    return "".join(yamlio.dump(s.manifests, site=s.site, at=result.at) for s in result.sites)
