"""What the CLI tests share: a wide terminal, so that table cells stay on one line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from neocloud.cli import common


@pytest.fixture(autouse=True)
def wide_terminal() -> Iterator[None]:
    """Rich fixes a console's width when it is made if COLUMNS is set then (pytest-xdist
    workers set COLUMNS=80), so set it directly."""
    before = common.console.width
    common.console.width = 250
    yield
    common.console.width = before
