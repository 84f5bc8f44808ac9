"""The metering tests' world (a contract of acme's holding two east nodes since this hour),
for the reports read from usage."""

from __future__ import annotations

from tests.metering.conftest import world

__all__ = ["world"]
