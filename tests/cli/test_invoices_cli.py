"""`neocloud invoices ...` and `neocloud prices ...` against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from neocloud.client.http import Client
from tests.cli.runner import Cli, one_site_fleet, served

TOKEN = "nc_invoices_cli_bootstrap"
cli = Cli(TOKEN)
FLEET = one_site_fleet("lambda", "l", 2, fabric="l01")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(tmp_path_factory, TOKEN) as url:
        with Client(url, TOKEN) as client:
            client.apply_fleet(FLEET)
            client.post("/v1/tenants", {"name": "acme", "display_name": "Acme AI"})
            client.post(
                "/v1/contracts",
                {
                    "name": "acme-h100",
                    "tenant": "acme",
                    "type": "reserved",
                    "accelerator": "H100",
                    "gpus": 8,
                    "site": "lambda",
                    "price": "2.50",
                    "start": "2026-10-01T00:00:00Z",
                    "end": "2027-10-01T00:00:00Z",
                },
            )
        yield url


def test_run_list_show_issue_pay_and_download(server: str, tmp_path: Path) -> None:
    out = cli.json(server, "invoices", "run", "--period", "2026-11")
    (doc,) = out["documents"]
    # 8 GPUs x 720 h x 2.50
    assert doc["tenant"] == "acme" and doc["total"] == "14400.00"
    code, text = cli(server, "invoices", "list", "--period", "2026-11")
    assert code == 0 and "acme" in text and "14400.00 USD" in text
    code, text = cli(server, "invoices", "show", str(doc["id"]))
    assert code == 0 and "take-or-pay" in text and "the sum of the lines" in text
    issued = cli.json(server, "invoices", "issue", str(doc["id"]))
    assert issued["status"] == "issued" and issued["number"].startswith("INV-2026-11-")
    target = tmp_path / "inv.pdf"
    code, text = cli(
        server, "invoices", "download", str(doc["id"]), "--format", "pdf", "-o", str(target)
    )
    assert code == 0 and target.read_bytes().startswith(b"%PDF")
    assert cli.json(server, "invoices", "pay", str(doc["id"]))["status"] == "paid"
    code, text = cli(server, "invoices", "void", str(doc["id"]))
    assert code == 2 and "credit note" in text
    code, text = cli(server, "invoices", "run", "--period", "2026-13")
    assert code == 2 and "not a month" in text


def test_prices_list_and_set(server: str) -> None:
    code, text = cli(server, "prices", "list")
    assert code == 0 and "list-usd" in text
    code, text = cli(server, "prices", "list", "list-usd")
    assert code == 0 and "3.99" in text
    book = cli.json(
        server,
        "prices",
        "set",
        "list-usd",
        "--accelerator",
        "H100",
        "--type",
        "on-demand",
        "--price",
        "3.79",
        "--from",
        "2027-01-01T00:00:00Z",
    )
    h100 = [
        e
        for e in book["entries"]
        if e["accelerator"] == "H100" and e["contract_type"] == "on-demand"
    ]
    # the price in force ends where the new one starts
    assert [(e["price"], e["valid_to"]) for e in h100] == [
        ("3.990000", "2027-01-01T00:00:00Z"),
        ("3.790000", None),
    ]
    code, text = cli(
        server,
        "prices",
        "set",
        "list-usd",
        "--type",
        "on-demand",
        "--accelerator",
        "H100",
        "--price",
        "3.5",
        "--from",
        "2027-01-15T00:00:00Z",
    )
    assert code == 2 and "start of a month" in text
