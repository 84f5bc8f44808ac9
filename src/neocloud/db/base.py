"""The one declarative base of every table.

- a constraint naming convention, so migrations name constraints the same on every database;
- `UTCDateTime`: timezone-aware datetimes in, timezone-aware UTC out (SQLite keeps naive);
- enums stored as their string values (readable in SQL, no native enum types to migrate);
- `Money` / `Quantity`: exact Decimal columns.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from neocloud.core.timeutil import as_utc, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def str_enum(enum_cls: type[enum.Enum], length: int = 32) -> sa.Enum:
    """An enum column stored as its `.value` string, checked by a CHECK constraint."""
    return sa.Enum(
        enum_cls,
        native_enum=False,
        length=length,
        values_callable=lambda cls: [member.value for member in cls],
        validate_strings=True,
        create_constraint=True,
        name=enum_cls.__name__.lower(),
    )


Money = sa.Numeric(20, 6)
"""Money in a currency's units with micro-unit precision; rounding happens only on invoices."""

Quantity = sa.Numeric(14, 3)
"""Physical quantities such as kW, MW and GB, exact to a thousandth."""


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {
        datetime: UTCDateTime(),
        Decimal: Quantity,
    }


class Timestamped:
    """created_at / updated_at maintained by the ORM."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False
    )
