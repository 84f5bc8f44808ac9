"""Scenario files: what a person writes to ask the planner a question (docs/planning.md).

`load_scenario` parses YAML with the line of every value kept, checks shapes (`spec`) and
then references and quarters, and returns frozen data (`data`). Every error is one line
that names the file, the line and the field: `story.yaml:42: deals[3].site: no site 'x'`.

A scenario may `extends:` another file (its top-level keys replace the base's), take its
sites from a fleet file (`fleet: {file: fleet.yaml}`, relative to the scenario) or from the
live database (`fleet: {from: database}`, through `scenario_from_database`).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from neocloud.core import yamlfile
from neocloud.core.errors import InvalidInput
from neocloud.planning.data import (
    Scenario,
)
from neocloud.planning.spec import ScenarioSpec

__all__ = [
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "load_scenario_file",
    "scenario_from_database",
]

PathT = tuple[str | int, ...]
MAX_EXTENDS = 5
_LINE = re.compile(r"line (\d+)")


class ScenarioError(ValueError):
    """A scenario that cannot be planned; the message is `file:line: field: what is wrong`."""

    def __init__(
        self,
        message: str,
        *,
        source: str,
        line: int | None = None,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")
        self.source = source
        self.line = line
        self.field = field
        self.errors = errors or []


class _Origins:
    """Which file (and its line map) each top-level key came from, after `extends`."""

    def __init__(self, source: str, lines: yamlfile.LineMap, allow_files: bool = True) -> None:
        self.default = (source, lines)
        self.by_key: dict[str, tuple[str, yamlfile.LineMap]] = {}
        self.allow_files = allow_files

    def locate(self, path: PathT) -> tuple[str, int | None]:
        source, lines = self.by_key.get(str(path[0]), self.default) if path else self.default
        return source, lines.line_of(path)

    def error(self, path: PathT, message: str) -> ScenarioError:
        source, line = self.locate(path)
        return ScenarioError(message, source=source, line=line, field=yamlfile.format_path(path))


def _parse(text: str | bytes, source: str) -> tuple[dict[str, Any], yamlfile.LineMap]:
    try:
        data, lines = yamlfile.load(text, "scenario")
    except InvalidInput as exc:
        found = _LINE.search(exc.detail)
        raise ScenarioError(
            exc.detail, source=source, line=int(found.group(1)) if found else None
        ) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(
            "a scenario is a mapping (start:, sites: or fleet:, deals:, ...)", source=source, line=1
        )
    return data, lines


def _relative(name: str, source: str) -> Path:
    path = Path(name).expanduser()
    if path.is_absolute() or source.startswith("<"):
        return path
    return Path(source).parent / path


def _read_text(name: str, source: str, origins: _Origins, at: PathT) -> tuple[str, Path]:
    """The text of a file a scenario names. Without `allow_files` (a scenario sent to the
    API) only the built-in examples can be named, by their bare file name."""
    if origins.allow_files:
        path = _relative(name, source)
    else:
        demo = Path(str(resources.files("neocloud.demo")))
        if "/" in name or "\\" in name or not (demo / name).is_file():
            raise origins.error(
                at,
                f"'{name}': a scenario sent to the server can name only the built-in files "
                f"({', '.join(sorted(p.name for p in demo.glob('*.yaml')))})",
            )
        path = demo / name
    try:
        return path.read_text(encoding="utf-8"), path
    except (OSError, UnicodeDecodeError) as exc:
        raise origins.error(at, f"cannot read '{path}': {exc}") from exc


def _read(
    text: str | bytes, source: str, depth: int = 0, allow_files: bool = True
) -> tuple[dict[str, Any], _Origins]:
    data, lines = _parse(text, source)
    origins = _Origins(source, lines, allow_files)
    base_name = data.pop("extends", None)
    if base_name is None:
        return data, origins
    if not isinstance(base_name, str) or not base_name:
        raise origins.error(("extends",), "give the file this scenario extends")
    if depth >= MAX_EXTENDS:
        raise origins.error(("extends",), f"more than {MAX_EXTENDS} files extend each other")
    base_text, base_path = _read_text(base_name, source, origins, ("extends",))
    base, base_origins = _read(base_text, str(base_path), depth + 1, allow_files)
    merged = {**base, **data}
    for key in merged:
        origins.by_key[key] = (
            (source, lines) if key in data else base_origins.by_key.get(key, base_origins.default)
        )
    return merged, origins


def _trim(data: Any, loc: tuple[Any, ...], missing: bool) -> PathT:
    """A pydantic error location cut to the keys the file has (pydantic adds the names of
    union members and validators)."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            node = node[part]
        else:
            if missing and i == len(loc) - 1 and isinstance(part, str):
                out.append(part)
            break
        out.append(part)
    return tuple(out)


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required field is missing"
    return str(error["msg"]).removeprefix("Value error, ")


def _validate(data: dict[str, Any], origins: _Origins) -> ScenarioSpec:
    try:
        return ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        errors: list[dict[str, Any]] = []
        for e in exc.errors():
            path = _trim(data, tuple(e["loc"]), e["type"] == "missing")
            source, line = origins.locate(path)
            errors.append(
                {
                    "source": source,
                    "line": line,
                    "field": yamlfile.format_path(path),
                    "msg": _message(e),
                }
            )
        first = errors[0]
        raise ScenarioError(
            str(first["msg"]),
            source=str(first["source"]),
            line=first["line"],
            field=str(first["field"]),
            errors=errors,
        ) from exc


def load_scenario(
    text: str | bytes,
    *,
    source: str = "<scenario>",
    session: Session | None = None,
    allow_files: bool = True,
) -> Scenario:
    """Parse and check a scenario. `session` is needed only for `fleet: {from: database}`.
    `allow_files=False` (for text sent to a server): `extends:` and `fleet: {file:}` may
    name only the built-in files (sell-site-1.yaml, fleet.yaml, ...), nothing on disk."""
    data, origins = _read(text, source, allow_files=allow_files)
    spec = _validate(data, origins)
    from neocloud.planning.building import build

    return build(spec, data, origins, session=session)


def load_scenario_file(path: Path, *, session: Session | None = None) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read the scenario: {exc}", source=str(path)) from exc
    return load_scenario(text, source=str(path), session=session)


def scenario_from_database(
    session: Session, text: str | bytes, *, source: str = "<scenario>", allow_files: bool = False
) -> Scenario:
    """A scenario whose `fleet: {from: database}` is the live fleet: nodes in service,
    scheduled deliveries, and the capacity already sold (subtracted from supply). Meant for
    the server, so by default it reads no file but the built-in ones."""
    return load_scenario(text, source=source, session=session, allow_files=allow_files)
