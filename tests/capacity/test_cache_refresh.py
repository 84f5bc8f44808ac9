"""The calendar cache of one API process stays exact while another process books.

Each process keeps its site books and, when a site's ledger generation moves, brings them
up to date (on PostgreSQL from the claims it has not seen; on SQLite by reloading). Here
one cache stands for a process that only reads, while the API (another cache) books,
grows, cancels and sets floors: after each step the reader's books must answer exactly as
books loaded from scratch.
"""

from __future__ import annotations

from collections import Counter

from fastapi.testclient import TestClient

from neocloud.capacity.calendar import SiteBook
from neocloud.capacity.state import CalendarCache
from neocloud.db.engine import make_engine, make_sessionmaker, transaction
from tests.contracts.world import ACME, INTERNAL, book, build, reserved, t


def answers(book: SiteBook) -> dict[str, object]:
    """What bookings and quotes ask a book (computing it also keeps it, as a cache does)."""
    out: dict[str, object] = {
        "claims": Counter(book.claims),
        "floors": Counter(book.floors),
        "power": book.power_free_watts,
        "violations": book.violations(),
    }
    for key in book.pools:
        out[f"free {key}"] = book.pool_free(key)
        for internal in (False, True):
            out[f"available {key} {internal}"] = book.available(key, internal)
    for acc in book.accelerators:
        out[f"headroom {acc}"] = book.customer_headroom(acc)
    return out


def test_a_reading_process_sees_every_change_another_one_makes(
    client: TestClient, db_url: str
) -> None:
    build(client)
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    reader = CalendarCache()

    def check() -> None:
        with transaction(factory) as session:
            mine = reader.books(session)
            fresh = CalendarCache().books(session)
        assert sorted(mine) == sorted(fresh)
        for sid in fresh:
            assert answers(mine[sid]) == answers(fresh[sid]), f"site {sid}"

    try:
        check()
        reserved(client, "a1", 64, "2027-01-01", "2027-06-01", site="east")
        reserved(client, "a2", 32, "2027-03-01", "2027-09-01", site="east")
        check()
        reserved(client, "a3", 16, "2027-02-01", "2028-02-01", site="west")
        check()
        book(
            client,
            name="ops-1",
            tenant=INTERNAL,
            type="internal",
            accelerator="H100",
            gpus=8,
            site="east",
            start=t("2027-01-01"),
            end=t("2028-01-01"),
            floors=[{"gpus": 16}],
        )
        check()
        r = client.post(
            "/v1/contracts/a2/amendments",
            json={"kind": "grow", "gpus": 48, "effective": t("2027-05-01")},
        )
        assert r.status_code == 200, r.text
        check()
        r = client.post("/v1/contracts/a1/cancel", json={"reason": "test"})
        assert r.status_code == 200, r.text
        check()
        for i in range(3):
            book(
                client,
                tenant=ACME,
                type="reserved",
                accelerator="H100",
                gpus=8,
                start=t("2027-04-01"),
                end=t(f"2027-{5 + i:02d}-01"),
            )
        check()
    finally:
        engine.dispose()
