"""The audit log: every change records who, what, when, and the object before and after."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from neocloud.auth.models import AuditEvent
from neocloud.auth.principal import Principal
from neocloud.core.timeutil import utcnow


def event(
    actor: Principal,
    action: str,
    object_type: str,
    object_id: str | int,
    *,
    tenant_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An audit event as a row, for `record_many`."""
    return {
        "at": utcnow(),
        "actor": actor.name,
        "actor_token_id": actor.token_id,
        "actor_role": actor.role.value,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "tenant_id": tenant_id,
        "before": before,
        "after": after,
    }


def record_many(session: Session, events: list[dict[str, Any]]) -> None:
    """Add several audit events (`event` rows) to the caller's transaction in one statement."""
    if events:
        session.execute(sa.insert(AuditEvent), events)


def record(
    session: Session,
    actor: Principal,
    action: str,
    object_type: str,
    object_id: str | int,
    *,
    tenant_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Add an audit event to the caller's transaction (it commits or rolls back with it)."""
    session.add(
        AuditEvent(
            actor=actor.name,
            actor_token_id=actor.token_id,
            actor_role=actor.role.value,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            tenant_id=tenant_id,
            before=before,
            after=after,
        )
    )
