"""UTC time: the only clock the system uses."""

from __future__ import annotations

from datetime import UTC, date, datetime


def utcnow() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Treat naive datetimes as UTC (SQLite returns them naive) and normalise aware ones."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso_date(value: date | None) -> str | None:
    return value.isoformat() if value else None
