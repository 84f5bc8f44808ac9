"""Checking manifests against Kueue's CustomResourceDefinitions, without an API server.

Each CRD version's `openAPIV3Schema` is a JSON schema with Kubernetes extensions, prepared
so that a plain JSON-schema validator judges a manifest as the API server would on create:

- `x-kubernetes-int-or-string` without a type becomes "an integer or a string" (quantities
  such as `nominalQuota: 64` or `"64"`);
- objects with declared properties refuse unknown fields (`additionalProperties: false`),
  as the API server does with strict field validation (`kubectl`'s default) — a misspelt
  field fails here instead of being dropped silently; `x-kubernetes-preserve-unknown-fields`
  keeps an object open;
- `x-kubernetes-validations` (CEL rules) are checked by the Python versions of the rules in
  `RULES`, on every part of the manifest they apply to. A rule that compares with the stored
  object (`oldSelf`) only matters on update and is skipped; a rule with no Python version
  makes the manifest fail ("not checked"), so a new Kueue rule cannot pass unnoticed.

`metadata` is checked by hand (the CRDs leave it to the API server): a DNS-1123 name, a
namespace for LocalQueues only, valid label keys and values. Core `v1` Namespaces (which the
renderer emits for tenants) are checked the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator

from neocloud.engines.kueue import names

Rule = Callable[[Any], bool]
NAMESPACED = frozenset({"LocalQueue", "Workload"})
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


class InvalidManifests(ValueError):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _has(obj: Any, key: str) -> bool:
    return isinstance(obj, dict) and key in obj


def _sizes_match(group: Any) -> bool:
    covered = len(group.get("coveredResources", []))
    return all(len(f.get("resources", [])) == covered for f in group.get("flavors", []))


def _no_borrowing_without(cohort_field: str) -> Rule:
    def rule(spec: Any) -> bool:
        if _has(spec, cohort_field) or not _has(spec, "resourceGroups"):
            return True
        return all(
            "borrowingLimit" not in r
            for g in spec["resourceGroups"]
            for f in g.get("flavors", [])
            for r in f.get("resources", [])
        )

    return rule


def _reclaim_never_borrow_never(p: Any) -> bool:
    # CEL sees defaulted values: reclaimWithinCohort and the borrow policy default to Never.
    reclaim = p.get("reclaimWithinCohort", "Never")
    borrow = (
        p.get("borrowWithinCohort", {}).get("policy", "Never")
        if _has(p, "borrowWithinCohort")
        else None
    )
    return not (reclaim == "Never" and borrow is not None and borrow != "Never")


def _unique_levels(levels: Any) -> bool:
    return all(levels.count(level) == 1 for level in levels)


def _hostname_last(levels: Any) -> bool:
    hostname = [lv for lv in levels if lv.get("nodeLabel") == names.HOSTNAME_LABEL]
    return not hostname or levels[-1].get("nodeLabel") == names.HOSTNAME_LABEL


def _fungibility(f: Any) -> bool:
    return not _has(f, "preference") or (
        f.get("whenCanBorrow") == "TryNextFlavor" and f.get("whenCanPreempt") == "TryNextFlavor"
    )


RULES: dict[str, Rule] = {
    "self.flavors.all(x, size(x.resources) == size(self.coveredResources))": _sizes_match,
    "!has(self.cohortName) && has(self.resourceGroups) ? self.resourceGroups.all(rg, rg.flavors.all(f, f.resources.all(r, !has(r.borrowingLimit)))) : true": _no_borrowing_without(
        "cohortName"
    ),
    "!has(self.cohort) && has(self.resourceGroups) ? self.resourceGroups.all(rg, rg.flavors.all(f, f.resources.all(r, !has(r.borrowingLimit)))) : true": _no_borrowing_without(
        "cohort"
    ),
    "!(self.reclaimWithinCohort == 'Never' && has(self.borrowWithinCohort) &&  self.borrowWithinCohort.policy != 'Never')": _reclaim_never_borrow_never,
    "!has(self.topologyName) || self.nodeLabels.size() >= 1": lambda s: (
        not _has(s, "topologyName") or len(s.get("nodeLabels") or {}) >= 1
    ),
    "size(self.filter(i, size(self.filter(j, j == i)) > 1)) == 0": _unique_levels,
    "size(self.filter(i, i.nodeLabel == 'kubernetes.io/hostname')) == 0 || self[size(self) - 1].nodeLabel == 'kubernetes.io/hostname'": _hostname_last,
    "!has(self.preference) || (self.whenCanBorrow == 'TryNextFlavor' && self.whenCanPreempt == 'TryNextFlavor')": _fungibility,
}
"""The CEL rules of the Kueue CRDs that constrain what the renderer emits, in Python."""


def prepare(schema: Any) -> Any:
    """The schema with Kubernetes' extensions turned into plain JSON-schema terms (see the
    module docstring). Returns a new structure; the input is left as it is."""
    if isinstance(schema, list):
        return [prepare(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: prepare(v) for k, v in schema.items() if k != "description"}
    if out.get("x-kubernetes-int-or-string") and "type" not in out and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@dataclass(frozen=True)
class _Version:
    kind: str
    schema: dict[str, Any]
    validator: Draft4Validator


class CrdSchemas:
    """The served versions of a set of CRDs, by (apiVersion, kind)."""

    def __init__(self, versions: Iterable[_Version], keys: Iterable[tuple[str, str]]) -> None:
        self._versions = dict(zip(keys, versions, strict=True))

    @classmethod
    def load(cls, directory: Path) -> CrdSchemas:
        """Every `*.yaml` CRD in `directory` (as copied from a Kueue release)."""
        keys: list[tuple[str, str]] = []
        versions: list[_Version] = []
        files = sorted(directory.glob("*.yaml"))
        if not files:
            raise FileNotFoundError(f"no CRD files (*.yaml) in {directory}")
        for path in files:
            crd = yaml.safe_load(path.read_text())
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for v in crd["spec"]["versions"]:
                if not v.get("served", True):
                    continue
                schema = prepare(v["schema"]["openAPIV3Schema"])
                keys.append((f"{group}/{v['name']}", kind))
                versions.append(_Version(kind, schema, Draft4Validator(schema)))
        return cls(versions, keys)

    @property
    def kinds(self) -> set[tuple[str, str]]:
        return set(self._versions)

    def errors(self, manifest: dict[str, Any]) -> list[str]:
        """What is wrong with one manifest, each message naming the object and the field."""
        api, kind = manifest.get("apiVersion"), manifest.get("kind")
        name = (manifest.get("metadata") or {}).get("name", "?")
        where = f"{kind} {name}"
        out = [f"{where}: metadata: {e}" for e in _metadata_errors(manifest)]
        if (api, kind) == ("v1", "Namespace"):
            extra = sorted(set(manifest) - {"apiVersion", "kind", "metadata", "spec"})
            out += [f"{where}: unknown field {k!r}" for k in extra]
            return out
        version = self._versions.get((str(api), str(kind)))
        if version is None:
            return [f"{where}: no schema for apiVersion {api!r} kind {kind!r}"]
        for err in sorted(version.validator.iter_errors(manifest), key=lambda e: list(e.path)):
            out.append(f"{where}: {_path(err.absolute_path) or '(root)'}: {err.message}")
        if not out:
            out += [f"{where}: {e}" for e in _rule_errors(version.schema, manifest, "")]
        return out

    def validate(self, manifests: Iterable[dict[str, Any]]) -> None:
        """Raise InvalidManifests with every error of every manifest, if there is one."""
        errors = [e for m in manifests for e in self.errors(m)]
        if errors:
            raise InvalidManifests(errors)


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _metadata_errors(manifest: dict[str, Any]) -> Iterator[str]:
    meta = manifest.get("metadata")
    if not isinstance(meta, dict):
        yield "required"
        return
    name = meta.get("name")
    if not isinstance(name, str) or not names.is_dns_label(name):
        yield f"name {name!r} is not a DNS-1123 label"
    namespaced = manifest.get("kind") in NAMESPACED
    namespace = meta.get("namespace")
    if namespaced and (not isinstance(namespace, str) or not names.is_dns_label(namespace)):
        yield f"namespace {namespace!r} is not a DNS-1123 label"
    if not namespaced and namespace is not None:
        yield f"a {manifest.get('kind')} is cluster-scoped: no namespace"
    for key, value in (meta.get("labels") or {}).items():
        if not _LABEL_KEY.match(str(key)) or len(str(key).rpartition("/")[0]) > 253:
            yield f"label key {key!r} is not a qualified name"
        if not isinstance(value, str) or not names.is_label_value(value):
            yield f"label {key}: value {value!r} is not a valid label value"
    for key, value in (meta.get("annotations") or {}).items():
        if not isinstance(value, str):
            yield f"annotation {key}: value {value!r} is not a string"


def _rule_errors(schema: dict[str, Any], value: Any, path: str) -> Iterator[str]:
    """The CEL rules of `schema` and of its parts that `value` reaches."""
    for rule in schema.get("x-kubernetes-validations", []):
        text = rule["rule"]
        if "oldSelf" in text:
            continue  # a transition rule: only an update can break it
        check = RULES.get(text)
        where = path or "(root)"
        if check is None:
            yield f"{where}: CEL rule not checked by neocloud: {text}"
        elif not check(value):
            yield f"{where}: {rule.get('message') or 'failed rule: ' + text}"
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                yield from _rule_errors(sub, item, f"{path}.{key}" if path else key)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from _rule_errors(schema["items"], item, f"{path}[{i}]")
