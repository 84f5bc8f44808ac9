"""GET /v1/usage/export: a tenant's (or everyone's) usage of a period as CSV or Parquet,
FOCUS-style (see `neocloud.metering.export`).

Everything that can be refused (parameters, the tenant) is checked before the first byte,
so a refusal is a problem+json answer, never a cut-off file. Then:

- CSV on PostgreSQL streams from a server-side cursor as it is made (a read there blocks
  nobody);
- CSV on SQLite, and Parquet everywhere, are written to a temporary file first, then sent.
  On SQLite a transaction takes the database's write lock (see `neocloud.db.engine`), which a
  slow download must not hold; Parquet's footer comes last, so it cannot go out half-made.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable, Generator, Iterable
from datetime import datetime
from typing import IO, Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from neocloud.api.deps import SessionDep, require
from neocloud.auth.principal import Principal
from neocloud.auth.roles import Permission as P
from neocloud.core.timeutil import utcnow
from neocloud.metering import export
from neocloud.metering.export_files import MEDIA_TYPES, csv_chunks, write_csv, write_parquet
from neocloud.metering.ledgers import Step

router = APIRouter(tags=["metering"])
Reader = Annotated[Principal, Depends(require(P.USAGE_READ))]
Format = Literal["csv", "parquet"]
FILE_CHUNK = 1 << 20
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the rows, one per contract x node x hour (or day) x charge",
        "headers": {
            "Content-Disposition": {
                "description": "attachment; filename=usage-<tenant|all>-<period>.<csv|parquet>",
                "schema": {"type": "string"},
            }
        },
        "content": {
            MEDIA_TYPES["csv"]: {"schema": {"type": "string"}},
            MEDIA_TYPES["parquet"]: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
Rows = Callable[[Session], Iterable[tuple[Any, ...]]]


@router.get("/usage/export", response_class=StreamingResponse, responses=RESPONSES)
def export_usage(
    request: Request,
    session: SessionDep,
    actor: Reader,
    period: Annotated[
        str | None,
        Query(max_length=7, description="a calendar month, YYYY-MM (default: this month)"),
    ] = None,
    start: Annotated[
        datetime | None, Query(description="instead of period: from (widened to the bucket)")
    ] = None,
    end: Annotated[datetime | None, Query(description="instead of period: until")] = None,
    format: Annotated[Format, Query(description="csv or parquet")] = "csv",
    tenant: Annotated[
        str | None, Query(max_length=63, description="one tenant (default: yours, or all)")
    ] = None,
    granularity: Annotated[Step, Query(description="a row per hour or per day")] = Step.HOUR,
) -> StreamingResponse:
    """Usage of a period per contract, node, hour (or day) and charge, FOCUS-style: billable
    GPU-hours and, on their own rows, what was not billed and why. Tenants: their own only.
    Costs are empty until billing prices usage. See docs/metering.md#export."""
    span = export.resolve_period(
        period=period, start=start, end=end, granularity=granularity, now=utcnow()
    )
    with session.begin():
        who = export.export_tenant(session, actor=actor, name=tenant)
        tenant_id, label = (None, "all") if who is None else (who.id, who.name)
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    operator = export.operator_name()

    def rows(s: Session) -> Iterable[tuple[Any, ...]]:
        return export.export_rows(
            s, tenant_id=tenant_id, period=span, granularity=granularity, operator=operator
        )

    headers: dict[str, str] = {}
    if format == "csv" and request.app.state.engine.dialect.name == "postgresql":
        body = _live_csv(factory, rows)
        head = [next(body), next(body, b"")]  # the query has run: a failure is still a problem
    else:
        sink = _spool(factory, rows, write_csv if format == "csv" else write_parquet)
        body, head = _file_chunks(sink), []
        headers["Content-Length"] = str(sink.seek(0, 2))
        sink.seek(0)
    filename = f"usage-{label}-{span.label}.{format}"
    headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return StreamingResponse(_send(head, body), media_type=MEDIA_TYPES[format], headers=headers)


def _live_csv(factory: sessionmaker[Session], rows: Rows) -> Generator[bytes]:
    with factory() as s, s.begin():
        yield from csv_chunks(rows(s))


def _spool(
    factory: sessionmaker[Session], rows: Rows, write: Callable[[Iterable[Any], IO[bytes]], None]
) -> IO[bytes]:
    """The whole file in an unnamed temporary file (gone once closed), in one short read
    transaction."""
    sink = tempfile.TemporaryFile()  # noqa: SIM115 (handed on to the response, open)
    try:
        with factory() as s, s.begin():
            write(rows(s), sink)
    except BaseException:
        sink.close()
        raise
    return sink


def _file_chunks(sink: IO[bytes]) -> Generator[bytes]:
    with sink:
        while chunk := sink.read(FILE_CHUNK):
            yield chunk


async def _send(head: list[bytes], body: Generator[bytes]) -> AsyncIterator[bytes]:
    """The chunks, the blocking reads in worker threads; the source (a cursor, a file) is
    closed however the response ends, a client that went away included."""
    try:
        for chunk in head:
            yield chunk
        while (more := await run_in_threadpool(_next, body)) is not None:
            yield more
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_close, body)


def _next(body: Generator[bytes]) -> bytes | None:
    return next(body, None)


def _close(body: Generator[bytes]) -> None:
    with contextlib.suppress(Exception):
        body.close()
