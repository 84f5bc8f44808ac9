"""The contract and capacity tests' worlds (see `world.py`), built through the API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.contracts.world import build


@pytest.fixture
def fleet(client: TestClient) -> TestClient:
    """The small fleet and its tenants, on each database."""
    build(client)
    return client


@pytest.fixture
def small(api: TestClient) -> TestClient:
    """The same, on SQLite only (for checks that do not depend on the database)."""
    build(api)
    return api
