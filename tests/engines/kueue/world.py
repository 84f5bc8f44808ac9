"""The Kueue tests' world: the contract tests' small fleet (tests/contracts/world.py) with one
contract of every kind, booked through the API, all in force at AT.

- east (128 H100): acme reserved 32 (`acme-h100`), globex reserved and lendable 16
  (`globex-lend`), the operator's internal 48 with a floor of 16, lendable (`ops-train`),
  globex spot 16 (`globex-spot`), acme on-demand H100 (`acme-od`); 32 GPUs uncommitted;
- west (32 H100, 144 GB200): all of it sold to globex (`globex-west`, dedicated-site);
- north (32 H100, planned): nothing sold.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.contracts.world import ACME, GLOBEX, INTERNAL, book, build, t

START, END = t("2027-01-01"), t("2027-06-01")
AT = "2027-02-01T00:00:00Z"
TERM = {"start": START, "end": END}


def build_kueue_world(c: TestClient) -> None:
    build(c)
    h100 = {"accelerator": "H100", **TERM}
    book(c, name="acme-h100", tenant=ACME, type="reserved", gpus=32, site="east", **h100)
    book(
        c,
        name="globex-lend",
        tenant=GLOBEX,
        type="reserved",
        gpus=16,
        site="east",
        lendable=True,
        **h100,
    )
    book(
        c,
        name="ops-train",
        tenant=INTERNAL,
        type="internal",
        gpus=48,
        site="east",
        lendable=True,
        floors=[{"gpus": 16}],
        **h100,
    )
    book(c, name="globex-spot", tenant=GLOBEX, type="spot", gpus=16, site="east", **h100)
    book(c, name="acme-od", tenant=ACME, type="on-demand", site="east", **h100)
    book(c, name="globex-west", tenant=GLOBEX, type="dedicated-site", site="west", **TERM)
