"""`neocloud meter ...`: send usage events (API or bus), consume the bus, read the ledgers."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import msgspec
import typer

from neocloud.cli.common import JsonOpt, api, fail, print_json, settings, show
from neocloud.cli.server import DataDirOpt, DbOpt, _url
from neocloud.client.download import download
from neocloud.client.http import ApiError
from neocloud.db.engine import make_engine, make_sessionmaker
from neocloud.metering import consumer
from neocloud.metering.events import MAX_BATCH

meter_app = typer.Typer(
    help="Metering: send usage and telemetry events, consume the bus, read the ledgers.",
    no_args_is_help=True,
)
NatsOpt = typer.Option(consumer.DEFAULT_NATS, "--nats", envvar="NEOCLOUD_NATS_URL")
StreamOpt = typer.Option(consumer.DEFAULT_STREAM, "--stream", help="JetStream stream")
SubjectOpt = typer.Option(consumer.DEFAULT_SUBJECT, "--subject", help="subject of the events")


def read_events(path: str) -> list[bytes]:
    """Events from a file ('-': stdin): a JSON array, or one JSON object per line."""
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    text = data.lstrip()
    try:
        if text.startswith(b"["):
            return [bytes(r) for r in msgspec.json.decode(text, type=list[msgspec.Raw])]
        return [line.strip() for line in text.splitlines() if line.strip()]
    except msgspec.DecodeError as exc:
        fail(f"{path}: not a JSON array of events: {exc}")


@meter_app.command("send")
def send(
    ctx: typer.Context,
    file: str = typer.Argument(..., help="JSON array or JSON lines of events; '-' for stdin"),
    batch: int = typer.Option(MAX_BATCH, "--batch", min=1, max=MAX_BATCH),
    as_json: bool = JsonOpt,
) -> None:
    """POST events to /v1/usage/events in batches; print what was accepted and rejected."""
    items = read_events(file)
    totals: dict[str, Any] = {"received": 0, "accepted": 0, "duplicates": 0, "rejected": []}
    with api(ctx) as client:
        for at in range(0, len(items), batch):
            body = b"[" + b",".join(items[at : at + batch]) + b"]"
            out = client.request(
                "POST",
                "/v1/usage/events",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            for key in ("received", "accepted", "duplicates"):
                totals[key] += out[key]
            totals["rejected"] += [{**r, "index": r["index"] + at} for r in out["rejected"]]
    if as_json:
        print_json(totals)
        return
    typer.echo(
        f"{totals['received']} received, {totals['accepted']} accepted, "
        f"{totals['duplicates']} duplicates, {len(totals['rejected'])} rejected"
    )
    if totals["rejected"]:
        show(totals["rejected"][:50], False, ["index", "id", "reason"])


@meter_app.command("publish")
def publish(
    file: str = typer.Argument(..., help="JSON array or JSON lines of events; '-' for stdin"),
    nats_url: str = NatsOpt,
    stream: str = StreamOpt,
    subject: str = SubjectOpt,
    per_message: int = typer.Option(500, "--per-message", min=1, max=MAX_BATCH),
) -> None:
    """Publish events to the bus (JetStream), PER_MESSAGE events to a message."""
    items = read_events(file)
    stored = asyncio.run(
        consumer.publish(
            consumer.chunks(items, per_message), url=nats_url, stream=stream, subject=subject
        )
    )
    typer.echo(json.dumps({"events": len(items), "messages": stored}))


@meter_app.command("consume")
def consume(
    db: str | None = DbOpt,
    data_dir: Path | None = DataDirOpt,
    nats_url: str = NatsOpt,
    stream: str = StreamOpt,
    subject: str = SubjectOpt,
    durable: str = typer.Option(consumer.DEFAULT_DURABLE, "--durable", help="consumer name"),
    max_messages: int = typer.Option(200, "--max-messages", min=1, help="messages per pull"),
    ack_wait: float = typer.Option(30.0, "--ack-wait", min=1, help="redelivery after (s)"),
    until_idle: float | None = typer.Option(
        None, "--until-idle", help="exit after this many seconds without a message"
    ),
) -> None:
    """Server-side: write the bus's events to the database (acknowledged after the commit)
    until SIGINT/SIGTERM; print the totals as JSON."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    engine = make_engine(_url(db, data_dir))
    try:
        stats = consumer.run(
            make_sessionmaker(engine),
            url=nats_url,
            stream=stream,
            subject=subject,
            durable=durable,
            max_messages=max_messages,
            ack_wait_s=ack_wait,
            idle_exit_s=until_idle,
        )
    finally:
        engine.dispose()
    typer.echo(
        json.dumps(
            {
                "messages": stats.messages,
                "events": stats.events,
                "accepted": stats.accepted,
                "duplicates": stats.duplicates,
                "rejected": stats.rejected,
                "batches": stats.batches,
                "batch_p50_ms": _ms(stats.batch_seconds, 0.5),
                "batch_p99_ms": _ms(stats.batch_seconds, 0.99),
            }
        )
    )


@meter_app.command("exclude")
def exclude(
    ctx: typer.Context,
    contract: str = typer.Argument(...),
    reason: str = typer.Option(..., "--reason", help="maintenance or operator-fault"),
    start: str = typer.Option(..., "--start", help="ISO time with offset"),
    end: str = typer.Option(..., "--end", help="ISO time with offset"),
    node: str | None = typer.Option(None, "--node", help="only this node (default: all)"),
    note: str | None = typer.Option(None, "--note"),
    as_json: bool = JsonOpt,
) -> None:
    """Record that a contract's usage in [START, END) is not billed (operators)."""
    body = {"contract": contract, "reason": reason, "start": start, "end": end}
    body |= {k: v for k, v in (("node", node), ("note", note)) if v is not None}
    with api(ctx) as client:
        data = client.post("/v1/usage/exclusions", body)
    if as_json:
        print_json(data)
        return
    typer.echo(
        f"excluded {data['excluded_gpu_seconds']} GPU-seconds of {data['intervals']} "
        f"stored interval(s) as {data['reason']}; later usage in the window is excluded too"
    )


def _ms(seconds: list[float], q: float) -> float:
    ordered = sorted(seconds)
    return (
        round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else 0.0
    )


@meter_app.command("usage")
def usage(
    ctx: typer.Context,
    contract: str | None = typer.Option(None, "--contract"),
    start: str | None = typer.Option(None, "--start", help="ISO time with offset"),
    end: str | None = typer.Option(None, "--end"),
    step: str = typer.Option("hour", "--step", help="hour or day"),
    as_json: bool = JsonOpt,
) -> None:
    """Measured, billable and excluded GPU-seconds per contract and hour (or day)."""
    with api(ctx) as client:
        data = client.get("/v1/usage", contract=contract, start=start, end=end, step=step)
    if as_json:
        print_json(data)
        return
    rows = [
        {
            **i,
            "excluded": ", ".join(f"{k} {v}" for k, v in i["excluded_gpu_seconds"].items()),
        }
        for i in data["items"]
    ]
    show(
        rows,
        False,
        ["contract", "start", "measured_gpu_seconds", "billable_gpu_seconds", "excluded"],
    )


@meter_app.command("export")
def export(
    ctx: typer.Context,
    period: str | None = typer.Option(None, "--period", help="YYYY-MM (default: this month)"),
    start: str | None = typer.Option(None, "--start", help="instead of --period: ISO time"),
    end: str | None = typer.Option(None, "--end", help="instead of --period: ISO time"),
    tenant: str | None = typer.Option(None, "--tenant", help="default: yours, or all"),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet"),
    granularity: str = typer.Option("hour", "--granularity", help="hour or day"),
    output: str | None = typer.Option(
        None, "-o", "--output", help="file (default: usage-<tenant>-<period>.<ext>); '-': stdout"
    ),
) -> None:
    """Usage of a period as FOCUS-style CSV or Parquet, streamed to a file (docs/metering.md)."""
    if output == "-" and fmt == "parquet":
        fail("parquet is binary: write it to a file with -o FILE")
    url, token = settings(ctx).resolve()
    params = {"period": period, "start": start, "end": end, "tenant": tenant}
    params |= {"format": fmt, "granularity": granularity}
    try:
        with download(url, token, "/v1/usage/export", params) as got:
            if output == "-":
                stdout = typer.get_binary_stream("stdout")
                for chunk in got.chunks:
                    stdout.write(chunk)
                stdout.flush()
                return
            target = Path(output or got.filename or f"usage.{fmt}")
            part = target.with_name(target.name + ".part")
            try:
                with part.open("wb") as sink:
                    for chunk in got.chunks:
                        sink.write(chunk)
                part.replace(target)  # a file under the name is always whole
            finally:
                part.unlink(missing_ok=True)
    except ApiError as exc:
        fail(
            exc.detail if exc.status == 0 else f"{exc.status}: {exc.detail}",
            code=2 if 400 <= exc.status < 500 else 1,
        )
    typer.echo(f"wrote {target} ({target.stat().st_size:,} bytes)")
