"""Liveness and readiness probes (no authentication, no tenant data)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from neocloud.db.migrate import is_up_to_date

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the latest migration."""
    engine = request.app.state.engine
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        if not is_up_to_date(engine):
            return JSONResponse({"status": "migrations pending"}, status_code=503)
    except sa.exc.SQLAlchemyError as exc:
        return JSONResponse(
            {"status": "database unavailable", "error": type(exc).__name__}, status_code=503
        )
    return JSONResponse({"status": "ready"})
