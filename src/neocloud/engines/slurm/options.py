"""A Slurm-managed fabric's settings (the `options` of its engine setting)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
UnixUser = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_.-]{0,31}$")]


class SlurmOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cluster: Annotated[str | None, Field(pattern=_NAME)] = None
    """Slurm's ClusterName (accounting is per cluster); default: the fabric's name."""
    conf: Annotated[str | None, Field(max_length=500)] = None
    """slurm.conf of the cluster (SLURM_CONF for every command); default: Slurm's own."""
    bin_dir: Annotated[str | None, Field(max_length=500)] = None
    """Where scontrol, sacctmgr and sacct are; default: the PATH."""
    prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,15}$")] = "nc-"
    """Names of neocloud's partitions, reservations and QOS start with it: nothing else on
    the cluster is touched."""
    users: dict[Annotated[str, Field(pattern=_NAME)], list[UnixUser]] = Field(default_factory=dict)
    """Tenant -> the Unix users who submit under its account."""
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 20.0
    """How long one command may take before the engine counts as unavailable."""
