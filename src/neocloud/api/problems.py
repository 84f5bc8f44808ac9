"""Errors as RFC 9457 `application/problem+json`, with a `detail` that says what and where."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from neocloud.core.errors import NeocloudError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) if parts else "body"


def describe_validation(errors: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    """Turn pydantic errors into one readable sentence plus a machine-readable list."""
    items = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "invalid"))}
        for e in errors
    ]
    sentences = [f"{_loc(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(sentences) + more, items


def install(app: FastAPI) -> None:
    @app.exception_handler(NeocloudError)
    async def _domain(_: Request, exc: NeocloudError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem(exc.status, exc.title, exc.detail, errors=exc.errors, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail, items = describe_validation(list(exc.errors()))
        return problem(422, "Invalid input", detail, errors=items)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {
            400: "Bad request",
            401: "Unauthorized",
            404: "Not found",
            405: "Method not allowed",
        }
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return problem(
            exc.status_code,
            titles.get(exc.status_code, "Error"),
            detail,
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # A concurrent request created the same thing first (the checks before the write
        # saw nothing); nothing of this request was written.
        log.info("integrity error: %s", exc.orig)
        return problem(
            409,
            "Conflict",
            "a concurrent change conflicts with this request; "
            "nothing was written: read the current state and try again",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "Internal error", "the server failed; the error was logged")
