"""`neocloud limits`: what GPUs serving a model give each plan tier's users, and what a new
block of capacity changes (see docs/limits.md).

The arithmetic runs here on the built-in chips; a question that names a site of the live
fleet, or a chip the built-in catalog lacks, is sent to the API (POST /v1/limits).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich import box
from rich.table import Table

from neocloud.api.problems import describe_validation
from neocloud.cli.common import JsonOpt, api, console, fail, print_json
from neocloud.core.errors import InvalidInput
from neocloud.planning import limits as core
from neocloud.planning.limits_schemas import LimitsRequest, load_request, to_question, with_lines


def _read(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    try:
        return load_request(text, str(path)).model_dump(exclude_unset=True), text
    except InvalidInput as exc:
        fail(exc.detail)


def _block(
    gpus: int | None, mw: float | None, site: str | None, chip: str | None, pue: float | None
) -> dict[str, Any] | None:
    if gpus is None and mw is None and site is None:
        if chip is not None or pue is not None:
            fail("--accelerator and --pue go with --gpus, --mw or --site")
        return None
    given = {"gpus": gpus, "mw": mw, "site": site, "accelerator": chip, "pue": pue}
    return {k: v for k, v in given.items() if v is not None}


def _request(data: dict[str, Any]) -> LimitsRequest:
    try:
        return LimitsRequest.model_validate(data)
    except ValidationError as exc:
        detail, _ = describe_validation(list(exc.errors()))
        fail(f"invalid input: {detail}")


def _remote(req: LimitsRequest) -> bool:
    chips = {b.accelerator for b in [*req.capacity, *(req.add.capacity if req.add else [])]}
    chips |= {req.model.accelerator}
    return bool(req.sites()) or bool(chips - {None, *core.BUILTIN_CHIPS})


def limits(
    ctx: typer.Context,
    file: Path | None = typer.Argument(
        None, help="a limits file (YAML or JSON: capacity, model, tiers, load, add)"
    ),
    gpus: int | None = typer.Option(None, "--gpus", help="GPUs serving today"),
    mw: float | None = typer.Option(None, "--mw", help="... or facility MW serving today"),
    site: str | None = typer.Option(None, "--site", help="... or all of a site of the fleet"),
    accelerator: str | None = typer.Option(
        None, "--accelerator", help="the chip of --gpus/--mw (default: the model's)"
    ),
    pue: float | None = typer.Option(None, "--pue", help="PUE of --mw (default 1.2)"),
    add_gpus: int | None = typer.Option(None, "--add-gpus", help="the new block: GPUs"),
    add_mw: float | None = typer.Option(None, "--add-mw", help="... or facility MW"),
    add_site: str | None = typer.Option(None, "--add-site", help="... or a site of the fleet"),
    add_accelerator: str | None = typer.Option(None, "--add-accelerator"),
    add_pue: float | None = typer.Option(None, "--add-pue", help="PUE of --add-mw (default 1.2)"),
    to_tier: list[str] | None = typer.Option(
        None, "--to-tier", help="a tier the new block goes to (repeat; default all)"
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Tokens a minute at peak and off-peak, and each tier's limits (tokens a minute,
    messages per 5 hours and per week), today and with a new block: "what do +300 MW buy
    our users"."""
    data: dict[str, Any] = {}
    text = None
    if file is not None:
        data, text = _read(file)
    now = _block(gpus, mw, site, accelerator, pue)
    if now is not None:
        data["capacity"] = [now]
        text = None  # the file's lines no longer match what is asked
    new = _block(add_gpus, add_mw, add_site, add_accelerator, add_pue)
    if new is not None:
        data["add"] = {**data.get("add", {}), "capacity": [new]}
        text = None
    if to_tier:
        data.setdefault("add", {})["tiers"] = to_tier
    if "capacity" not in data:
        fail("give a limits file with capacity:, or --gpus, --mw or --site")
    req = _request(data)
    if _remote(req):
        with api(ctx) as client:
            out = client.post("/v1/limits", json=req.model_dump(mode="json", exclude_unset=True))
    else:
        try:
            out = core.usage_limits(to_question(req))
        except InvalidInput as exc:
            fail((with_lines(exc, text, str(file)) if text is not None else exc).detail)
    if as_json:
        print_json(out)
        return
    _show(out)


def _n(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            if unit == "k":
                return f"{value / 1e3:,.1f}k"
            return f"{value / size:,.1f}{unit}"
    return f"{value:,.0f}"


def _both(pair: dict[str, int]) -> str:
    """Peak / off-peak."""
    return f"{_n(pair['peak'])} / {_n(pair['off_peak'])}"


def _fleet_line(label: str, at: dict[str, Any]) -> str:
    fleet, tpm = at["fleet"], at["fleet"]["tokens_per_min"]
    power = f", {fleet['facility_mw']:,.0f} MW" if fleet["facility_mw"] else ""
    return (
        f"[bold]{label}[/bold]: {fleet['gpus']:,} GPUs{power}: {_n(tpm['capacity'])} tokens/min "
        f"at peak, {_n(tpm['served_off_peak'])} served off-peak ({_n(tpm['spare_off_peak'])} spare)"
    )


def _show(out: dict[str, Any]) -> None:
    before, after, change = out["before"], out["after"], out["change"]
    load = out["load"]
    console.print(
        f"model {out['model']}; load peak/off-peak {load['peak_to_off_peak']:g}, "
        f"mean/peak {load['mean_to_peak']:g}",
        highlight=False,
    )
    console.print(_fleet_line("today", before), highlight=False)
    if after is not None:
        console.print(_fleet_line("with the new block", after), highlight=False)
    table = Table(
        header_style="bold",
        caption="per user: peak / off-peak",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("tier")
    for name in ("users", "tokens/min", "msgs/5h", "msgs/week"):
        table.add_column(name, justify="right")
    if change is not None:
        for name in ("after: msgs/5h", "msgs/week", "x"):
            table.add_column(name, justify="right")
    rows = zip(before["tiers"], after["tiers"] if after else before["tiers"], strict=True)
    for i, (b, a) in enumerate(rows):
        cells = [
            b["tier"],
            _n(b["users"]),
            _both(b["tokens_per_min"]),
            _both(b["messages_per_5h"]),
            _n(b["messages_per_week"]),
        ]
        if change is not None:
            x = change["tiers"][i]["multiplier"]
            cells += [
                _both(a["messages_per_5h"]),
                _n(a["messages_per_week"]),
                "-" if x is None else f"{x:.2f}x",
            ]
        table.add_row(*cells)
    console.print(table)
