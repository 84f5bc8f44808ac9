"""A booking written without the site's lock is checked again, under it, at commit.

On PostgreSQL a booking's first attempt fits on the cached calendar, writes everything and
only takes the site's lock to commit (so that bookings of a site queue for the commit, not
for the whole request). Here another booking commits on the same site while one is in
flight: if what it took still leaves room, the first one commits as it is; if not, it runs
again the locking way and is refused with the reason. Either way nothing is oversold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from neocloud.auth.principal import SYSTEM
from neocloud.contracts.booking import create_contract
from neocloud.contracts.schemas import ContractCreate
from neocloud.contracts.views import contract_out
from neocloud.core.errors import Conflict
from neocloud.db.engine import make_engine, make_sessionmaker, retrying
from tests.conftest import _client, new_database
from tests.contracts.world import ACME, GLOBEX, build, free_at, t

WEST_H100 = 32
"""GPUs in west's one H100 fabric before its delivery lands (2027-07-01)."""


def body(tenant: str, gpus: int) -> ContractCreate:
    return ContractCreate.model_validate(
        {
            "tenant": tenant,
            "type": "reserved",
            "accelerator": "H100",
            "gpus": gpus,
            "site": "west",
            "start": t("2027-01-01"),
            "end": t("2027-03-01"),
        }
    )


def book_while_another_commits(
    db_url: str, first: int, second: int
) -> tuple[list[int], Callable[[], Any]]:
    """Book `first` GPUs at west; during its first attempt, `second` GPUs are booked there
    and committed by another session. Returns the attempts made and the first's outcome."""
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    attempts: list[int] = []
    with factory() as mine, factory() as theirs:

        def work() -> Any:
            attempts.append(len(attempts))
            out = contract_out(mine, create_contract(mine, actor=SYSTEM, body=body(ACME, first)))
            if len(attempts) == 1:
                retrying(
                    theirs,
                    lambda: create_contract(theirs, actor=SYSTEM, body=body(GLOBEX, second)),
                )
            return out

        try:
            result = retrying(mine, work)
            outcome: Callable[[], Any] = lambda: result  # noqa: E731
        except Conflict as exc:
            error = exc
            outcome = lambda: error  # noqa: E731
    engine.dispose()
    return attempts, outcome


pytestmark = pytest.mark.postgres


# PostgreSQL only: on SQLite one writer holds the database, so nothing commits while a
# booking is open and there is no optimistic path to test.
@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from new_database("postgresql", request, tmp_path)


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    yield from _client(db_url)


def test_a_booking_that_still_fits_commits_as_it_was_written(
    client: TestClient, db_url: str
) -> None:
    build(client)
    attempts, outcome = book_while_another_commits(db_url, first=16, second=8)
    assert not isinstance(outcome(), Conflict), outcome()
    assert outcome().gpus == 16
    assert attempts == [0], "nothing forced it to run again"
    assert free_at(client, "west", "h01", "2027-02-01")["committed"] == 24


def test_a_booking_overtaken_by_another_is_refused_not_oversold(
    client: TestClient, db_url: str
) -> None:
    build(client)
    attempts, outcome = book_while_another_commits(db_url, first=24, second=16)
    refused = outcome()
    assert isinstance(refused, Conflict), f"booked {refused}: west would hold 40 of 32 GPUs"
    assert "not enough capacity" in refused.detail
    assert attempts == [0, 1], "the check at commit sent it round again"
    bucket = free_at(client, "west", "h01", "2027-02-01")
    assert bucket["committed"] == 16 <= bucket["supply"] == WEST_H100


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Each test's database is new; books cached by an earlier one must not answer."""
    from neocloud.capacity.state import CACHE

    CACHE.clear()
