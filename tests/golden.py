"""Golden files: generated artifacts compared byte for byte with a file kept in the repo.

Set NEOCLOUD_UPDATE_GOLDEN=1 to write the files instead (then review the diff and commit):

    NEOCLOUD_UPDATE_GOLDEN=1 .venv/bin/pytest tests/engines
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

UPDATE = os.environ.get("NEOCLOUD_UPDATE_GOLDEN", "") not in ("", "0")


def assert_golden(path: Path, text: str) -> None:
    """`text` must equal the file at `path`, or (when updating) becomes it."""
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"no golden file {path}; run with NEOCLOUD_UPDATE_GOLDEN=1 to write it"
    expected = path.read_text()
    if text != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=str(path),
                tofile="generated",
            )
        )
        raise AssertionError(
            f"{path.name} differs from what was generated (NEOCLOUD_UPDATE_GOLDEN=1 rewrites "
            f"it):\n{diff}"
        )
