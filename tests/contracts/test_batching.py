"""Bookings in batches (group commit): each request gets the answer it would get alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from neocloud.auth.principal import SYSTEM
from neocloud.contracts import batching
from neocloud.contracts.batching import BookingQueue, Pending, book_batch
from neocloud.contracts.schemas import ContractCreate, ContractOut
from neocloud.core.errors import Conflict, NotFound
from neocloud.db.engine import retrying
from tests.contracts.world import ACME, GLOBEX, capacity, get, history, pool_bucket, t

START, END = "2027-01-01", "2027-03-01"


def _reserved(tenant: str, gpus: int, **extra: Any) -> ContractCreate:
    fields = {
        "tenant": tenant,
        "type": "reserved",
        "accelerator": "H100",
        "gpus": gpus,
        "site": "east",
        "start": t(START),
        "end": t(END),
        **extra,
    }
    return ContractCreate.model_validate(fields)


def _factory(c: TestClient) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = c.app.state.sessionmaker  # type: ignore[attr-defined]
    return factory


def test_a_batch_books_what_fits_in_arrival_order_and_refuses_the_rest_alone(
    fleet: TestClient,
) -> None:
    bodies = [
        _reserved(ACME, 64, name="first"),
        _reserved(GLOBEX, 64, name="second"),
        _reserved(ACME, 8, name="third"),  # east has 128 H100: nothing left for it
        _reserved("nobody", 8),
        _reserved(GLOBEX, 8, name="first"),  # the name the first one takes
        ContractCreate.model_validate(
            {"name": "od", "tenant": ACME, "type": "on-demand", "accelerator": "H100"}
            | {"start": t(START), "end": t(END), "site": "east"}
        ),
    ]
    batch = [Pending(SYSTEM, b) for b in bodies]
    with _factory(fleet)() as session:
        answers = retrying(session, lambda: book_batch(session, batch))

    first, second, third, nobody, dup, od = answers
    assert isinstance(first, ContractOut) and isinstance(second, ContractOut)
    assert isinstance(od, ContractOut) and od.claims == []
    assert isinstance(third, Conflict) and "not enough capacity" in third.detail
    assert isinstance(nobody, NotFound) and "nobody" in nobody.detail
    assert isinstance(dup, Conflict) and "already exists" in dup.detail
    # Each answer is the contract as the API reads it back, history and all.
    for out in (first, second, od):
        stored = get(fleet, out.name)
        assert out.model_dump(mode="json") == stored, out.name
        assert [h["action"] for h in history(fleet, out.name)] == ["book"]
    assert sum(c.gpus for c in first.claims + second.claims) == 128
    report = capacity(fleet, t(START), t(END), site="east")
    assert sum(pool_bucket(report, "east", f)["committed"] for f in ("e01", "e02")) == 128
    assert fleet.get("/v1/contracts/third").status_code == 404


def test_a_batch_that_fails_as_a_whole_books_each_request_alone(
    fleet: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(session: Session, batch: list[Pending]) -> list[Any]:
        raise RuntimeError("the database went away mid-batch")

    monkeypatch.setattr(batching, "book_batch", broken)
    queue = BookingQueue(_factory(fleet))
    out = asyncio.run(queue.book(SYSTEM, _reserved(ACME, 64, name="alone")))
    assert out.name == "alone" and sum(c.gpus for c in out.claims) == 64
    with pytest.raises(Conflict, match="not enough capacity"):
        asyncio.run(queue.book(SYSTEM, _reserved(GLOBEX, 72, name="too-big")))
    assert get(fleet, "alone")["gpus"] == 64


def test_booking_through_the_api_answers_what_a_read_returns(fleet: TestClient) -> None:
    r = fleet.post(
        "/v1/contracts",
        json=_reserved(ACME, 16).model_dump(mode="json", exclude_unset=True),
    )
    assert r.status_code == 201, r.text
    booked = r.json()
    assert booked == get(fleet, booked["name"])
    assert booked["state"] == "booked" and booked["site"] == "east"
