"""YAML files that people write, loaded with the line of every value kept, so that each
error can say "line 42: sites[0].power_mw: ..."."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from neocloud.core.errors import InvalidInput

Path = tuple[str | int, ...]
MAX_FILE_BYTES = 5_000_000


@dataclass(frozen=True)
class LineMap:
    """Line numbers (1-based) of each value, by its path of keys and indexes."""

    lines: dict[Path, int]

    def line_of(self, path: Path) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            key = tuple(path[:end])
            if key in self.lines:
                return self.lines[key]
        return None


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _walk(node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise InvalidInput(
                    f"line {key_node.start_mark.line + 1}: duplicate key '{key}' "
                    f"(first given on line {seen[key]})"
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load(text: str | bytes, what: str = "file") -> tuple[Any, LineMap]:
    """Parse YAML (or JSON) text; raise InvalidInput naming the line on any syntax error."""
    if len(text) > MAX_FILE_BYTES:
        raise InvalidInput(f"the {what} is larger than {MAX_FILE_BYTES} bytes")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"the {what} is not UTF-8 text (byte {exc.start})") from exc
    try:
        root = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise InvalidInput(f"{what} is not valid YAML: {where}{exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{what} is not valid YAML: {exc}") from exc
    lines: dict[Path, int] = {}
    if root is not None:
        _walk(root, (), lines)
    return data, LineMap(lines)


def validate(model: type[BaseModel], data: Any, lines: LineMap, what: str = "file") -> Any:
    """Validate parsed data against a pydantic model; errors name line and field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            f"{what} is not valid: " + "; ".join(_describe(e, lines) for e in exc.errors()[:10]),
            errors=[
                {"loc": list(e["loc"]), "line": lines.line_of(tuple(e["loc"])), "msg": e["msg"]}
                for e in exc.errors()
            ],
        ) from exc


def _describe(error: Any, lines: LineMap) -> str:
    path = tuple(p for p in error["loc"] if isinstance(p, int | str))
    line = lines.line_of(path)
    where = f"line {line}: " if line else ""
    msg = str(error["msg"])
    if error["type"] == "extra_forbidden":
        msg = "unknown field"
    return f"{where}{format_path(path)}: {msg}"
