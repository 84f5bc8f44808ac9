"""Running Slurm's commands: a timeout on each, the cluster's slurm.conf, UTC times.

A command that cannot be started, times out or cannot reach slurmctld/slurmdbd raises
`EngineUnavailable` (the fabric goes stale and is retried with backoff); one that Slurm
refuses raises `CommandFailed` (that action fails, the others go on). Answers that mean
"already so" (`Nothing new added`, `Nothing deleted`) count as success: every command is
meant to be repeatable.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from neocloud.engines.protocol import EngineUnavailable

ALREADY = ("Nothing new added", "Nothing deleted", "Nothing modified")
UNREACHABLE = (
    "Unable to contact slurm controller",
    "Connection refused",
    "Socket timed out",
    "slurm_persist_conn_open",
    "Problem talking to the database",
    "Zero Bytes were transmitted or received",
    "Unable to establish connection",
    "Couldn't get",
    "Munge",
)


class CommandFailed(Exception):
    """Slurm answered, and refused."""


class Runner:
    def __init__(
        self, *, conf: str | None = None, bin_dir: str | None = None, timeout_s: float = 20.0
    ) -> None:
        self.conf = conf
        self.bin_dir = bin_dir
        self.timeout_s = timeout_s

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "TZ": "UTC", "LC_ALL": "C"}
        if self.conf:
            env["SLURM_CONF"] = self.conf
        return env

    def __call__(self, argv: Sequence[str]) -> str:
        """Run one command; its standard output."""
        exe = str(Path(self.bin_dir) / argv[0]) if self.bin_dir else argv[0]
        try:
            done = subprocess.run(
                [exe, *argv[1:]],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError as exc:
            raise EngineUnavailable(f"{argv[0]} is not installed ({exc})") from exc
        except subprocess.TimeoutExpired as exc:
            raise EngineUnavailable(
                f"`{' '.join(argv[:3])}` took longer than {self.timeout_s:g} s"
            ) from exc
        except OSError as exc:
            raise EngineUnavailable(f"{argv[0]} could not run: {exc}") from exc
        text = (done.stderr + done.stdout).strip()
        if done.returncode == 0:
            return done.stdout
        if any(a in text for a in ALREADY):
            return done.stdout
        message = " ".join(text.split())[:500] or f"exit status {done.returncode}"
        if any(u.lower() in text.lower() for u in UNREACHABLE):
            raise EngineUnavailable(f"`{' '.join(argv[:3])}`: {message}")
        raise CommandFailed(f"`{' '.join(argv)}`: {message}")
