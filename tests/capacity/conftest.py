"""The capacity API tests use the contract tests' worlds."""

from tests.contracts.conftest import fleet, small

__all__ = ["fleet", "small"]
