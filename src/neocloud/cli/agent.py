"""`neocloud agent`: the node agent, sampling this node's GPUs into the metering pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
from pathlib import Path

import typer

from neocloud.cli.common import err_console, fail, settings
from neocloud.cli.meter import NatsOpt, StreamOpt, SubjectOpt
from neocloud.metering.agent.backends import BackendKind, open_backend
from neocloud.metering.agent.buffer import BufferBusy, DiskBuffer, default_dir
from neocloud.metering.agent.fake import Profile
from neocloud.metering.agent.gpus import BackendUnavailable, GpuBackend
from neocloud.metering.agent.loop import Agent, Report
from neocloud.metering.agent.sinks import ApiSink, BusSink, Sink, SinkFatal, SinkKind


def agent(
    ctx: typer.Context,
    node: str | None = typer.Option(
        None,
        "--node",
        envvar="NEOCLOUD_NODE",
        help="this node's fleet name (default: the host name)",
    ),
    backend: BackendKind = typer.Option(
        BackendKind.AUTO, "--backend", help="auto: NVML, or fail; fake: made-up GPUs"
    ),
    fake_gpus: int = typer.Option(8, "--fake-gpus", min=1, max=1024, help="GPUs of --backend fake"),
    fake_profile: Profile = typer.Option(Profile.MIXED, "--fake-profile", help="fake GPUs' load"),
    fake_seed: int = typer.Option(0, "--fake-seed", help="fake readings depend only on it"),
    interval: float = typer.Option(10.0, "--interval", min=1.0, help="seconds between rounds"),
    sink: SinkKind = typer.Option(SinkKind.API, "--sink", help="api (--url/--token) or bus"),
    nats_url: str = NatsOpt,
    stream: str = StreamOpt,
    subject: str = SubjectOpt,
    buffer_dir: Path | None = typer.Option(
        None,
        "--buffer-dir",
        envvar="NEOCLOUD_AGENT_BUFFER_DIR",
        help="undelivered batches (default: ~/.local/state/neocloud/agent)",
    ),
    buffer_max_mb: float = typer.Option(
        1024.0, "--buffer-max-mb", min=0.001, help="past it the oldest batches are dropped"
    ),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="per request (s)"),
    once: bool = typer.Option(False, "--once", help="one round, then exit"),
    count: int | None = typer.Option(None, "--count", min=1, help="N rounds, then exit"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line"),
) -> None:
    """Read this node's GPUs (utilization, memory, power, temperature) every --interval
    seconds and send them as telemetry to the API or the bus; keep on disk what cannot be
    delivered and resend it, oldest first, once the sink answers. Runs until SIGINT/SIGTERM
    (or --once / --count). See docs/agent.md."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    name = node or socket.gethostname()
    rounds = 1 if once else count
    token: str | None = None
    if sink is SinkKind.API:
        url, token = settings(ctx).resolve()
        if not token:
            fail("--sink api needs an operator's token: --token, NEOCLOUD_TOKEN or the config")
        if not url.startswith(("http://", "https://")):
            fail(f"--url {url!r} is not an http:// or https:// URL")
        where = url
    else:
        where = f"{nats_url} ({stream}, {subject})"
    try:
        gpus = open_backend(
            backend, node=name, fake_gpus=fake_gpus, fake_seed=fake_seed, fake_profile=fake_profile
        )
    except BackendUnavailable as exc:
        fail(str(exc))
    try:
        directory = buffer_dir or default_dir()
        try:
            buffer = DiskBuffer(directory, int(buffer_max_mb * 1_000_000))
        except BufferBusy as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"buffer directory {directory}: {exc.strerror or exc}")
        target: Sink = (
            ApiSink(where, token, node=name, timeout=timeout)
            if sink is SinkKind.API
            else BusSink(nats_url, stream=stream, subject=subject, timeout=timeout)
        )
        err_console.print(
            f"agent: node {name}, {gpus.gpu_count()} GPUs ({gpus.name}), every {interval:g} s "
            f"to {where}; buffer {directory} ({buffer.samples} samples waiting)",
            highlight=False,
            soft_wrap=True,
        )
        with buffer:
            error = asyncio.run(_run(name, gpus, target, buffer, interval, rounds, as_json))
    finally:
        gpus.close()
    if error:
        fail(error)


async def _run(
    node: str,
    gpus: GpuBackend,
    sink: Sink,
    buffer: DiskBuffer,
    interval: float,
    rounds: int | None,
    as_json: bool,
) -> str | None:
    """The loop until done or signalled; a fatal refusal comes back as its message."""

    def show(report: Report) -> None:
        typer.echo(json.dumps(report.as_dict()) if as_json else report.line())

    loop = Agent(
        node=node, backend=gpus, sink=sink, buffer=buffer, interval=interval, on_report=show
    )
    running = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            running.add_signal_handler(sig, loop.stop.set)
    try:
        await loop.run(rounds)
    except SinkFatal as exc:
        return f"{exc} ({buffer.samples} samples kept in {buffer.path})"
    finally:
        await sink.close()
    return None
