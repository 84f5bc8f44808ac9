"""Expand a fleet file's counts and name patterns into the concrete desired topology.

Pure: no database. Errors carry the path of the offending entry so the caller can name
its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from neocloud.core.errors import InvalidInput
from neocloud.core.names import NODE_NAME_PATTERN
from neocloud.engines import registry
from neocloud.fleet.models import NodeState
from neocloud.fleet.spec import FleetFile

PathT = tuple[str | int, ...]
_NAME_RE = re.compile(NODE_NAME_PATTERN)
_TOPOLOGY_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")


class ExpandError(Exception):
    def __init__(self, path: PathT, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class DesiredNode:
    name: str
    site: str
    fabric: str
    block: str
    accelerator: str
    gpus: int
    power_kw: Decimal
    initial_state: NodeState
    path: PathT


@dataclass
class DesiredFleet:
    fabrics: list[tuple[str, str]] = field(default_factory=list)
    blocks: list[tuple[str, str, str]] = field(default_factory=list)
    nodes: list[DesiredNode] = field(default_factory=list)
    site_it_kw: dict[str, Decimal] = field(default_factory=dict)
    site_gpus: dict[str, int] = field(default_factory=dict)
    engines: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """(site, fabric) -> {"engine", "options"} for fabrics whose entry names an engine."""


def _names(pattern: str, count: int, start: int, path: PathT, **context: str) -> list[str]:
    if count > 1 and "{i" not in pattern:
        raise ExpandError(
            path, f"count is {count} but the name '{pattern}' has no {{i}} to tell them apart"
        )
    try:
        return [pattern.format(i=i, **context) for i in range(start, start + count)]
    except KeyError as exc:
        known = ", ".join(["i", *context])
        raise ExpandError(
            path, f"unknown placeholder {{{exc.args[0]}}} in '{pattern}' (known: {known})"
        ) from exc
    except (ValueError, IndexError) as exc:
        raise ExpandError(path, f"bad name pattern '{pattern}': {exc}") from exc


def _engine(value: str | dict[str, Any], path: PathT, **context: str) -> dict[str, Any]:
    """A fabric's engine and its checked options; `{site}` and `{fabric}` in option strings
    are the fabric's (`conf: /etc/slurm/{fabric}/slurm.conf`)."""
    raw = {"name": value} if isinstance(value, str) else dict(value)
    name = str(raw.pop("name"))
    for key, v in raw.items():
        if isinstance(v, str):
            raw[key] = v.replace("{site}", context["site"]).replace("{fabric}", context["fabric"])
    try:
        return {"engine": name, "options": registry.check_options(name, raw)}
    except InvalidInput as exc:
        raise ExpandError(path, exc.detail) from exc


def expand(spec: FleetFile) -> DesiredFleet:
    out = DesiredFleet()
    seen_nodes: dict[str, PathT] = {}
    for s_idx, site in enumerate(spec.sites):
        site_path: PathT = ("sites", s_idx)
        it_kw = Decimal(0)
        gpus = 0
        seen_fabrics: set[str] = set()
        for f_idx, fabric_spec in enumerate(site.fabrics):
            f_path = (*site_path, "fabrics", f_idx)
            for fabric in _names(
                fabric_spec.name,
                fabric_spec.count,
                fabric_spec.start,
                (*f_path, "name"),
                site=site.name,
            ):
                if not _TOPOLOGY_RE.match(fabric):
                    raise ExpandError(
                        (*f_path, "name"),
                        f"fabric name '{fabric}' may use only letters, digits, '.', '_' and '-' (63 at most)",
                    )
                if fabric in seen_fabrics:
                    raise ExpandError(
                        (*f_path, "name"), f"fabric '{fabric}' appears twice in site '{site.name}'"
                    )
                seen_fabrics.add(fabric)
                out.fabrics.append((site.name, fabric))
                if fabric_spec.engine is not None:
                    out.engines[(site.name, fabric)] = _engine(
                        fabric_spec.engine, (*f_path, "engine"), site=site.name, fabric=fabric
                    )
                seen_blocks: set[str] = set()
                for b_idx, block_spec in enumerate(fabric_spec.blocks):
                    b_path = (*f_path, "blocks", b_idx)
                    for block in _names(
                        block_spec.name,
                        block_spec.count,
                        block_spec.start,
                        (*b_path, "name"),
                        site=site.name,
                        fabric=fabric,
                    ):
                        if not _TOPOLOGY_RE.match(block):
                            raise ExpandError(
                                (*b_path, "name"),
                                f"block name '{block}' may use only letters, digits, '.', '_' and '-' (63 at most)",
                            )
                        if block in seen_blocks:
                            raise ExpandError(
                                (*b_path, "name"),
                                f"block '{block}' appears twice in fabric '{fabric}'",
                            )
                        seen_blocks.add(block)
                        out.blocks.append((site.name, fabric, block))
                        for g_idx, group in enumerate(block_spec.nodes):
                            g_path = (*b_path, "nodes", g_idx)
                            names = _names(
                                group.name,
                                group.count,
                                group.start,
                                (*g_path, "name"),
                                site=site.name,
                                fabric=fabric,
                                block=block,
                            )
                            for name in names:
                                if name in seen_nodes:
                                    raise ExpandError(
                                        (*g_path, "name"),
                                        f"node name '{name}' is generated twice; make the pattern unique (for example include {{fabric}} and {{block}})",
                                    )
                                if not _NAME_RE.match(name):
                                    raise ExpandError(
                                        (*g_path, "name"),
                                        f"node name '{name}' may use only letters, digits, '.', '_' and '-' (120 at most)",
                                    )
                                seen_nodes[name] = g_path
                                out.nodes.append(
                                    DesiredNode(
                                        name,
                                        site.name,
                                        fabric,
                                        block,
                                        group.accelerator,
                                        group.gpus,
                                        group.power_kw,
                                        group.initial_state,
                                        g_path,
                                    )
                                )
                            it_kw += group.power_kw * len(names)
                            gpus += group.gpus * len(names)
        out.site_it_kw[site.name] = it_kw
        out.site_gpus[site.name] = gpus
    return out
