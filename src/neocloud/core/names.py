"""Names people type: lowercase slugs, usable in URLs, hostnames and Slurm/Kubernetes objects."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

SLUG_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
NODE_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,118}[A-Za-z0-9])?$"

Slug = Annotated[
    str,
    Field(
        pattern=SLUG_PATTERN,
        max_length=63,
        description="lowercase letters, digits and '-', 1-63 characters",
        examples=["memphis-1"],
    ),
]
