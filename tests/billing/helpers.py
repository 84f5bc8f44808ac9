"""Helpers of the billing tests."""

from __future__ import annotations

from datetime import UTC, datetime


def at(day: str) -> datetime:
    """Midnight UTC of an ISO day (or an ISO time without an offset)."""
    return datetime.fromisoformat(day).replace(tzinfo=UTC)
