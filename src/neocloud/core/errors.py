"""Domain errors. Services raise these; the API turns them into problem+json responses.

Each carries a human `detail` that says what is wrong and where, and optionally a list of
field-level `errors` ({"loc": ..., "msg": ...}) so that clients can point at the input.
"""

from __future__ import annotations

from typing import Any


class NeocloudError(Exception):
    """Base of all expected errors; `status` is the HTTP status the API answers with."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidInput(NeocloudError):
    status = 422
    title = "Invalid input"


class NotFound(NeocloudError):
    status = 404
    title = "Not found"


class Conflict(NeocloudError):
    status = 409
    title = "Conflict"


class Forbidden(NeocloudError):
    status = 403
    title = "Forbidden"


class Unauthorized(NeocloudError):
    status = 401
    title = "Unauthorized"
