"""Fixtures of the Kueue engine tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from neocloud.engines.kueue.crds import CrdSchemas
from tests.engines.kueue.world import build_kueue_world

# Beside the checkout, or in the machine's workspace (where a CI checkout elsewhere finds it).
SCHEMAS = next(
    (
        p
        for p in (
            Path(__file__).resolve().parents[4] / "shared" / "schemas" / "kueue",
            Path("/work/shared/schemas/kueue"),
        )
        if p.is_dir()
    ),
    Path(__file__).resolve().parents[4] / "shared" / "schemas" / "kueue",
)


@pytest.fixture(scope="session")
def crds() -> CrdSchemas:
    """The Kueue CRDs in ../shared/schemas/kueue (every served version)."""
    return CrdSchemas.load(SCHEMAS)


@pytest.fixture
def kueue_world(client: TestClient) -> TestClient:
    """The world of world.py, on each database."""
    build_kueue_world(client)
    return client


@pytest.fixture
def kueue_small(api: TestClient) -> TestClient:
    """The same, on SQLite only."""
    build_kueue_world(api)
    return api
