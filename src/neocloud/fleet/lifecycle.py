"""Which lifecycle moves are allowed, for sites and for nodes an operator sets by hand."""

from __future__ import annotations

from neocloud.fleet.models import NodeState, SiteState

SITE_ORDER = [
    SiteState.PLANNED,
    SiteState.BUILDING,
    SiteState.LIVE,
    SiteState.DRAINING,
    SiteState.RETIRED,
]


def site_move_allowed(old: SiteState, new: SiteState) -> bool:
    """Forward along planned > building > live > draining > retired; a drain may be called off."""
    if old == new:
        return True
    if old is SiteState.DRAINING and new is SiteState.LIVE:
        return True
    return SITE_ORDER.index(new) > SITE_ORDER.index(old)


# Moves an operator may make by hand; 'allocated' belongs to placement, 'retired' to the fleet file.
NODE_MOVES: dict[NodeState, frozenset[NodeState]] = {
    NodeState.BURN_IN: frozenset({NodeState.AVAILABLE, NodeState.FAILED, NodeState.REPAIR}),
    NodeState.AVAILABLE: frozenset(
        {NodeState.DRAINING, NodeState.FAILED, NodeState.REPAIR, NodeState.BURN_IN}
    ),
    NodeState.ALLOCATED: frozenset({NodeState.DRAINING, NodeState.FAILED}),
    NodeState.DRAINING: frozenset({NodeState.AVAILABLE, NodeState.REPAIR, NodeState.FAILED}),
    NodeState.FAILED: frozenset({NodeState.REPAIR, NodeState.AVAILABLE}),
    NodeState.REPAIR: frozenset({NodeState.BURN_IN, NodeState.AVAILABLE, NodeState.FAILED}),
    NodeState.RETIRED: frozenset(),
}


def node_move_allowed(old: NodeState, new: NodeState) -> bool:
    return new in NODE_MOVES[old]
