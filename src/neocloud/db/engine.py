"""Engines and sessions for SQLite (embedded, WAL) and PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
RETRYABLE_PG_CODES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
PG_POOL_SIZE = 10
PG_MAX_OVERFLOW = 30
T = TypeVar("T")


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'neocloud.db').resolve()}"


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; emit it ourselves so that
        # SELECT ... then UPDATE in one transaction is really one transaction.
        sa.event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))

        @sa.event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        return engine
    # A pool as large as the API's thread pool can keep busy, so that connections are reused
    # rather than opened per request (a PostgreSQL connection costs a process fork). No
    # pre-ping (a round trip per checkout): a connection the server dropped fails one
    # request, and SQLAlchemy then discards the pool's other connections of that server.
    kwargs.setdefault("pool_size", PG_POOL_SIZE)
    kwargs.setdefault("max_overflow", PG_MAX_OVERFLOW)
    return sa.create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


def is_retryable(exc: BaseException) -> bool:
    """A transaction the database aborted only because of another one (retry it)."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) in RETRYABLE_PG_CODES


class RetryTransaction(Exception):
    """Raised inside work run by `retrying` to run it again from the start: an optimistic
    check found, at commit, that another transaction got there first."""


RETRIES_LEFT = "neocloud.retries_left"
"""`session.info` key: how many more times `retrying` will run the work (absent outside it).
While some are left, work may take an optimistic path: a `RetryTransaction` runs it again."""


def retrying(session: Session, work: Callable[[], T], attempts: int = 4) -> T:
    """Run `work` in a transaction of `session`, again if the database aborted it for a
    deadlock or a serialization failure (bookings lock several sites' ledgers), or if the
    work raised `RetryTransaction`."""
    for attempt in range(attempts):
        session.info[RETRIES_LEFT] = attempts - 1 - attempt
        try:
            with session.begin():
                return work()
        except RetryTransaction:
            if attempt + 1 < attempts:
                continue
            raise
        except sa.exc.DBAPIError as exc:
            if attempt + 1 < attempts and is_retryable(exc):
                continue
            raise
        finally:
            session.info.pop(RETRIES_LEFT, None)
    raise AssertionError("unreachable")
