"""Shapes shared by every endpoint."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class ProblemItem(BaseModel):
    loc: list[str | int]
    msg: str
    line: int | None = None


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = Field(description="what is wrong and where")
    errors: list[ProblemItem] | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Bad request",
        401: "No valid token",
        403: "The role lacks the permission",
        404: "Not found (or another tenant's)",
        409: "Conflicts with the current state",
        422: "Invalid input",
    }
    return {
        s: {
            "description": descriptions[s],
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
        for s in statuses
    }


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
