"""A real `neocloud serve` for the benchmarks: started on a free port, waited for, stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

NEOCLOUD = str(Path(sys.executable).with_name("neocloud"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(
    db: str, workers: int, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`neocloud serve --db DB --workers N` until the block ends; yields its base URL and
    process. Its log is kept only if NEOCLOUD_BENCH_KEEP_LOG is set (its path is printed on
    failure either way)."""
    port = free_port()
    log_file = Path(tempfile.gettempdir()) / f"neocloud-bench-{port}.log"
    with log_file.open("wb") as out:
        proc = subprocess.Popen(
            [NEOCLOUD, "serve", "--db", db, "--port", str(port), "--workers", str(workers)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"neocloud serve exited:\n{log_file.read_text()[-3000:]}")
            try:
                if httpx.get(base + "/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"neocloud serve not ready:\n{log_file.read_text()[-3000:]}")
            time.sleep(0.3)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if not os.environ.get("NEOCLOUD_BENCH_KEEP_LOG"):  # set it to read the server's log
            log_file.unlink(missing_ok=True)
