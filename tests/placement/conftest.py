"""The placement tests' world: the contract tests' small fleet and tenants, built through the
API on each database (see tests/contracts/world.py)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.contracts.world import build


@pytest.fixture
def world(client: TestClient) -> TestClient:
    build(client)
    return client
