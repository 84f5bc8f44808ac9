"""The engines neocloud can drive, by name, and how to make one for a fabric.

An engine kind says which settings it takes (a pydantic model, validated when a fabric is
given the engine) and builds the driver (`protocol.Engine`) for one fabric. Another engine
joins with `register(EngineKind(...))`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from neocloud.core.errors import InvalidInput
from neocloud.engines.protocol import Capability, Engine
from neocloud.engines.slurm.engine import SlurmEngine
from neocloud.engines.slurm.options import SlurmOptions


@dataclass(frozen=True)
class EngineKind:
    name: str
    capabilities: frozenset[Capability]
    options: type[BaseModel]
    make: Callable[[Any, str], Engine]
    """(validated options, fabric name) -> the fabric's driver."""


ENGINES: dict[str, EngineKind] = {}


def register(kind: EngineKind) -> None:
    ENGINES[kind.name] = kind


register(
    EngineKind(
        name="slurm",
        capabilities=SlurmEngine.capabilities,
        options=SlurmOptions,
        make=lambda options, fabric: SlurmEngine(options, fabric=fabric),
    )
)


def kind_of(name: str) -> EngineKind:
    try:
        return ENGINES[name]
    except KeyError:
        raise InvalidInput(
            f"unknown engine '{name}' (known: {', '.join(sorted(ENGINES))})",
            errors=[{"loc": ["body", "engine"], "msg": "unknown engine"}],
        ) from None


def check_options(name: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The options as the engine reads them (defaults dropped), or a 422 naming the field."""
    kind = kind_of(name)
    try:
        model = kind.options.model_validate(dict(options or {}))
    except ValidationError as exc:
        raise InvalidInput(
            f"options of engine '{name}': "
            + "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(options)'}: {e['msg']}"
                for e in exc.errors()
            ),
            errors=[{"loc": ["body", "options", *e["loc"]], "msg": e["msg"]} for e in exc.errors()],
        ) from None
    return model.model_dump(mode="json", exclude_defaults=True)


def make(name: str, options: Mapping[str, Any] | None, fabric: str) -> Engine:
    kind = kind_of(name)
    return kind.make(kind.options.model_validate(dict(options or {})), fabric)
