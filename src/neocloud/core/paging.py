"""Keyset (cursor) pagination: stable under inserts, O(limit) per page at any depth."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from neocloud.core.errors import InvalidInput

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    after_id: int | None = None

    @classmethod
    def parse(cls, limit: int | None, cursor: str | None) -> PageRequest:
        limit = DEFAULT_LIMIT if limit is None else limit
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        return cls(limit=limit, after_id=decode_cursor(cursor) if cursor else None)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "id":
            raise ValueError(kind)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "cursor is not valid: pass the next_cursor of a previous page",
            errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
        ) from exc


def paginate(
    session: Session, stmt: Select[Any], id_column: InstrumentedAttribute[int], page: PageRequest
) -> Page[Any]:
    """Run `stmt` ordered by `id_column`, one page after `page.after_id`."""
    if page.after_id is not None:
        stmt = stmt.where(id_column > page.after_id)
    rows = list(session.scalars(stmt.order_by(id_column).limit(page.limit + 1)))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    next_cursor = encode_cursor(getattr(rows[-1], id_column.key)) if more and rows else None
    return Page(items=rows, next_cursor=next_cursor)
