"""A real Slurm cluster on loopback for the engine tests: munged, slurmdbd, slurmctld and one
slurmd per node, all started from a temporary directory and stopped afterwards.

Everything but munged (the host's, see `ensure_munged`) is private to the run: its own ports, a ClusterName
and a MariaDB database (on 127.0.0.1:3306) of its own, dropped at the end, so two runs on one
machine do not meet. The GPUs are gres with `AutoDetect=off` over placeholder device files,
and `SlurmdParameters=config_overrides` lets each slurmd claim the CPUs and memory the
configuration gives it. Debian's packages (slurm-wlm, slurmdbd, munge) are installed with
apt-get when missing; when that is impossible the tests fail saying so (never skip: CI must
run them).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurm-wlm", "slurmdbd", "munge", "slurm-client")
BINARIES = ("slurmctld", "slurmd", "slurmdbd", "munged", "sacctmgr", "sbatch", "sacct")
MARIADB = ("127.0.0.1", 3306)


class HarnessError(RuntimeError):
    """The cluster could not be set up (the message says what to do)."""


def ensure_installed() -> None:
    """Install Debian's Slurm and munge packages when a binary is missing."""
    if all(_which(b) for b in BINARIES):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
    )
    for cmd in steps:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise HarnessError(
                f"Slurm is not installed and `{' '.join(cmd)}` failed "
                f"(install {', '.join(PACKAGES)} by hand): {done.stderr.strip()[-500:]}"
            )
    missing = [b for b in BINARIES if not _which(b)]
    if missing:
        raise HarnessError(f"still missing after apt-get: {', '.join(missing)}")


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def ensure_munged() -> None:
    """Start the host's munged (Debian's, with its key) when it is not answering.

    Slurm's clients talk to munged on its default socket whatever slurm.conf says (sacctmgr
    ignores AuthInfo in 22.05), so the cluster uses the host's munged, like a real Slurm
    host; it is a system service and is left running, as PostgreSQL is.
    """
    if _munge_ok():
        return
    run_dir = Path("/run/munge")
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.chown(run_dir, "munge", "munge")
    done = subprocess.run(
        ["runuser", "-u", "munge", "--", "munged"], capture_output=True, text=True, timeout=30
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _munge_ok():
            return
        time.sleep(0.2)
    raise HarnessError(f"munged did not start: {done.stderr.strip()}")


def _munge_ok() -> bool:
    try:
        return subprocess.run(["munge", "-n"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_user(name: str) -> None:
    """A Unix user for a tenant's jobs (no home, no login), created when missing."""
    if subprocess.run(["id", "-u", name], capture_output=True).returncode == 0:
        return
    done = subprocess.run(
        ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0 and "already exists" not in done.stderr:
        raise HarnessError(f"could not create user {name}: {done.stderr.strip()}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mysql(sql: str) -> None:
    """Run SQL on the MariaDB server as root (through the mysql client, as slurmdbd would)."""
    host, port = MARIADB
    done = subprocess.run(
        ["mysql", "-h", host, "-P", str(port), "-u", "root", "-e", sql],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        raise HarnessError(f"MariaDB on {host}:{port} refused `{sql}`: {done.stderr.strip()}")


@dataclass
class SlurmCluster:
    """A running cluster: its name, nodes, configuration and the environment to run clients."""

    root: Path
    name: str
    nodes: tuple[str, ...]
    gpus_per_node: int
    ctld_port: int
    dbd_port: int
    node_ports: dict[str, int]
    database: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """What a Slurm client needs to find this cluster (SLURM_CONF)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        done = subprocess.run(
            list(args), env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise HarnessError(f"`{' '.join(args)}` failed: {done.stderr.strip()}")
        return done.stdout

    # -- daemons -------------------------------------------------------------------------

    def start_ctld(self) -> None:
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._wait(lambda: self._ok("scontrol", "ping"), "slurmctld to answer")

    def stop_ctld(self) -> None:
        self._stop("slurmctld")

    def start(self) -> None:
        ensure_munged()
        self._spawn("slurmdbd", ["slurmdbd", "-D", "-s"], env={"SLURM_CONF": str(self.conf)})
        self._wait(
            lambda: self._ok("sacctmgr", "-n", "-P", "show", "cluster"), "slurmdbd to answer"
        )
        self.run("sacctmgr", "-i", "add", "cluster", self.name)
        self.start_ctld()
        for node in self.nodes:
            self._spawn(f"slurmd-{node}", ["slurmd", "-D", "-N", node, "-f", str(self.conf)])
        self._wait(self._all_idle, "every slurmd to register", timeout=60)

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            self._stop(name)

    def _all_idle(self) -> bool:
        out = self.run("sinfo", "-h", "-N", "-o", "%N %t", check=False)
        states = dict(line.split() for line in out.splitlines() if line.strip())
        return all(states.get(n, "").rstrip("*") in {"idle", "mix", "alloc"} for n in self.nodes)

    def _spawn(self, key: str, cmd: Sequence[str], env: dict[str, str] | None = None) -> None:
        log = (self.root / "log" / f"{key}.out").open("ab")
        self.procs[key] = subprocess.Popen(
            list(cmd),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )

    def _stop(self, key: str) -> None:
        proc = self.procs.pop(key, None)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def _ok(self, *args: str) -> bool:
        try:
            return (
                subprocess.run(list(args), env=self.env, capture_output=True, timeout=10).returncode
                == 0
            )
        except subprocess.TimeoutExpired:
            return False

    def _wait(self, ready: object, what: str, timeout: float = 30) -> None:
        assert callable(ready)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            for key, proc in self.procs.items():
                if proc.poll() is not None:
                    raise HarnessError(
                        f"{key} exited ({proc.returncode}) waiting for {what}: {self.log_tail(key)}"
                    )
            time.sleep(0.2)
        raise HarnessError(f"timed out waiting for {what}")

    def log_tail(self, key: str, lines: int = 20) -> str:
        path = self.root / "log" / f"{key}.out"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def write_config(
    root: Path, nodes: Sequence[str], gpus_per_node: int, name: str | None = None
) -> SlurmCluster:
    """Lay out the cluster's files under `root` (configuration, spool, state, logs, devices)."""
    name = name or f"nct{secrets.token_hex(3)}"
    root.chmod(0o755)  # the tenants' users read slurm.conf
    for sub in ("etc", "state", "spool", "log", "dev"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for node in nodes:
        (root / "spool" / node).mkdir(exist_ok=True)
    for i in range(gpus_per_node):
        (root / "dev" / f"gpu{i}").touch()
    cluster = SlurmCluster(
        root=root,
        name=name,
        nodes=tuple(nodes),
        gpus_per_node=gpus_per_node,
        ctld_port=free_port(),
        dbd_port=free_port(),
        node_ports={n: free_port() for n in nodes},
        database=f"slurm_acct_{name}",
    )
    auth = "AuthType=auth/munge\n"
    node_lines = "\n".join(
        f"NodeName={n} NodeHostname=localhost NodeAddr=127.0.0.1 Port={p} CPUs=4 "
        f"RealMemory=4000 Gres=gpu:{gpus_per_node} State=UNKNOWN"
        for n, p in cluster.node_ports.items()
    )
    gpu_files = f"{root}/dev/gpu[0-{gpus_per_node - 1}]"
    (root / "etc" / "slurm.conf").write_text(
        f"""ClusterName={name}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={cluster.ctld_port}
SlurmUser=root
SlurmdUser=root
{auth}CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/state/slurmctld.pid
SlurmdPidFile={root}/spool/slurmd-%n.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
MessageTimeout=10
InactiveLimit=0
KillWait=2
MinJobAge=30
Waittime=0
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
JobRequeue=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={cluster.dbd_port}
AccountingStorageEnforce=associations,limits,qos,safe
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/none
MailProg=/bin/true
{node_lines}
PartitionName=ops Nodes=ALL Default=YES AllowAccounts=root State=UP
"""
    )
    (root / "etc" / "gres.conf").write_text(f"AutoDetect=off\nName=gpu File={gpu_files}\n")
    host, port = MARIADB
    dbd = root / "etc" / "slurmdbd.conf"
    dbd.write_text(
        f"""{auth}DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={cluster.dbd_port}
SlurmUser=root
LogFile={root}/log/slurmdbd.log
PidFile={root}/state/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost={host}
StoragePort={port}
StorageUser=root
StorageLoc={cluster.database}
"""
    )
    dbd.chmod(0o600)
    return cluster


@contextmanager
def running_cluster(
    root: Path, nodes: Sequence[str], gpus_per_node: int = 8
) -> Iterator[SlurmCluster]:
    """Install if needed, configure, start every daemon; stop them and drop the database."""
    ensure_installed()
    cluster = write_config(root, nodes, gpus_per_node)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        _mysql(f"DROP DATABASE IF EXISTS `{cluster.database}`")
