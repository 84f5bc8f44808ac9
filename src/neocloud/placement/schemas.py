"""API shapes of placement: a contract's allocation, node failures and repairs, reconciles."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from neocloud.contracts.models import ContractState
from neocloud.fleet.models import NodeState


class AllocatedNode(BaseModel):
    name: str
    site: str
    fabric: str
    block: str
    gpus: int
    state: NodeState
    since: datetime = Field(description="when the contract got this node")
    reason: str = Field(description="placed, grown or healed; spot for a spot lease")
    until: datetime | None = Field(default=None, description="a spot lease on notice: when it ends")
    lent: bool = Field(
        default=False,
        description="a spot lease: an idle node lent by a lendable contract; the owner's "
        "node: lent to spot now",
    )


class DegradationOut(BaseModel):
    contract: str
    tenant: str
    since: datetime
    contracted_gpus: int
    usable_gpus: int
    shortfall_gpus: int
    reason: str


class FailedNodeOut(BaseModel):
    """A node out of service and whom its failure hit."""

    name: str
    site: str
    fabric: str
    block: str
    accelerator: str
    gpus: int
    state: NodeState = Field(description="failed or repair")
    since: datetime = Field(description="when it was last marked")
    reason: str | None = Field(description="the reason it was marked with, if any")
    contract: str | None = Field(
        description="the contract that held it when it failed (null: it was free or a spare)"
    )
    tenant: str | None


class AllocationOut(BaseModel):
    contract: str
    tenant: str
    state: ContractState
    contracted_gpus: int = Field(description="GPUs the contract's claims in force now hold")
    allocated_gpus: int = Field(description="GPUs of the nodes the contract holds")
    usable_gpus: int = Field(description="healthy allocated GPUs, up to the contracted ones")
    shortfall_gpus: int
    degraded_since: datetime | None
    nodes_total: int = Field(description="how many nodes the contract holds")
    nodes: list[AllocatedNode] = Field(description="a page of them, by node id")
    next_cursor: str | None = Field(description="the next page's cursor, if any")


class NodeEvent(BaseModel):
    """A node's failure or repair, as an operator or an engine reports it."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str | None, Field(max_length=500)] = None


class ChangeOut(BaseModel):
    node: str
    before: str | None = Field(description="contract name, 'spare', or null for free")
    after: str | None
    reason: str


class SpotChangeOut(BaseModel):
    node: str
    contract: str
    action: str = Field(description="leased, noticed, ended or preempted")
    reason: str
    at: datetime


class SiteReconcileOut(BaseModel):
    site: str
    changes: list[ChangeOut]
    short: list[DegradationOut] = Field(description="contracts left short of GPUs")
    spot: list[SpotChangeOut] = Field(default_factory=list, description="spot leases changed")


class PreemptionOut(BaseModel):
    contract: str
    tenant: str
    node: str
    started_at: datetime
    notice_at: datetime | None
    ended_at: datetime
    reason: str
    lent: bool = Field(default=False, description="an idle node lent by a lendable contract")
    lent_by: str | None = Field(
        default=None,
        description="the contract that lent it (null: a free node, or hidden from a tenant "
        "that is not the lender)",
    )


class ReclaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str | None, Field(max_length=500)] = Field(
        default=None, description="why (kept in the audit log)"
    )


class ReclaimedNode(BaseModel):
    node: str
    site: str
    gpus: int
    lent_since: datetime = Field(description="when the spot lease began")
    notice_at: datetime
    until: datetime = Field(description="when the spot lease ends and the node is back")


class ReclaimOut(BaseModel):
    contract: str
    nodes: list[ReclaimedNode] = Field(description="the lent nodes on their way back")


class ReconcileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: Annotated[str | None, Field(max_length=63)] = None


class ReconcileOut(BaseModel):
    at: datetime
    sites: list[SiteReconcileOut]


class NodeEventOut(BaseModel):
    node: str
    state: NodeState
    site: SiteReconcileOut = Field(description="what placement changed in response")


class DrainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Annotated[
        list[Annotated[str, Field(max_length=63)]] | None,
        Field(
            max_length=50, description="target sites in order of preference (default: all others)"
        ),
    ] = None
    dry_run: bool = Field(False, description="only plan: nothing is moved")


class DrainStepOut(BaseModel):
    contract: str
    tenant: str
    type: str
    gpus: int
    to: str | None = Field(description="the site it moves (or would move) to; null if it cannot")
    effective: datetime | None = Field(description="from when it is at its new site")
    moved: bool = Field(description="moved (or, in a dry run, would move)")
    reason: str = Field(description="where it goes, or why it cannot move, per target tried")


class DrainOut(BaseModel):
    site: str
    dry_run: bool
    steps: list[DrainStepOut]
    placement: list[SiteReconcileOut] = Field(
        description="what placement changed on the drained and target sites (empty in a dry run)"
    )
