"""Sending apply requests to a Kubernetes API server with the official Python client.

The `kubernetes` package is an optional extra (`pip install 'neocloud[kube]'`): only the
machine that applies needs it, and it brings a dozen packages the control plane itself does
not use. It is imported when a command needs it.

Requests go through `ApiClient.call_api` exactly as `apply.py` built them (method, path,
query, headers, body), rather than through the typed or dynamic APIs, which pick their own
content types and paths: what the tests check is what is sent.

A kubeconfig must be named (`--kubeconfig` or KUBECONFIG): neocloud does not fall back to
~/.kube/config, so a forgotten context cannot send a site's queues to the wrong cluster.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

from neocloud.engines.kueue.apply import PLURALS, ApplyRequest

TIMEOUT = (10.0, 60.0)
"""Seconds to connect and to wait for each answer."""


class KubeError(Exception):
    """A failure to reach or use the cluster; `code` is the CLI's exit code (2: fix the
    command or its configuration, 1: the cluster refused or could not be reached)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def kubeconfig_path(explicit: str | None, env: Mapping[str, str]) -> str:
    """The kubeconfig to use: the flag, else KUBECONFIG; neither is an error (code 2)."""
    path = explicit or env.get("KUBECONFIG", "").strip()
    if not path:
        raise KubeError(
            "no kubeconfig: pass --kubeconfig FILE or set KUBECONFIG "
            "(neocloud does not fall back to ~/.kube/config)",
            code=2,
        )
    return path


def _kubernetes() -> ModuleType:
    try:
        import kubernetes.client
        import kubernetes.config
    except ImportError as exc:
        raise KubeError(
            "the Kubernetes client is not installed: pip install 'neocloud[kube]'", code=2
        ) from exc
    module: ModuleType = kubernetes
    return module


def connect(path: str, context: str | None = None) -> Any:
    """An ApiClient for the kubeconfig's cluster (its current context, or `context`)."""
    k8s = _kubernetes()
    try:
        return k8s.config.new_client_from_config(config_file=path, context=context)
    except (k8s.config.ConfigException, OSError, ValueError, KeyError, TypeError) as exc:
        raise KubeError(f"kubeconfig {path}: {exc}", code=2) from exc


def send(
    client: Any,
    requests: Iterable[ApplyRequest],
    done: Callable[[ApplyRequest], None] | None = None,
) -> int:
    """Send each request in order, stopping at the first refusal (later objects may refer
    to it); a DELETE of an object that is already gone counts as done. Returns how many were
    carried out; raises KubeError naming the object."""
    count = 0
    for r in requests:
        _call(client, r, count, gone_ok=r.method == "DELETE")
        count += 1
        if done is not None:
            done(r)
    return count


def list_objects(client: Any, requests: Iterable[ApplyRequest]) -> dict[str, list[dict[str, Any]]]:
    """The items each list request answers, by kind (a kind the cluster does not serve, such
    as Cohort on an older Kueue, has none)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in requests:
        kind = r.path.rsplit("/", 1)[-1]
        answer = _call(client, r, 0, gone_ok=True)
        items = answer.get("items", []) if isinstance(answer, dict) else []
        out[_KINDS.get(kind, kind)] = [i for i in items if isinstance(i, dict)]
    return out


_KINDS = {plural: kind for kind, plural in PLURALS.items()}


def _call(client: Any, r: ApplyRequest, count: int, *, gone_ok: bool) -> Any:
    k8s = _kubernetes()
    import urllib3

    try:
        return client.call_api(
            r.path,
            r.method,
            query_params=list(r.query),
            header_params=dict(r.headers),
            body=r.body,
            auth_settings=["BearerToken"],
            response_type="object",
            _return_http_data_only=True,
            _request_timeout=TIMEOUT,
        )
    except k8s.client.exceptions.ApiException as exc:
        if gone_ok and exc.status == 404:
            return None
        raise KubeError(
            f"{r.what}: the cluster answered {exc.status} {exc.reason}: {_message(exc.body)}"
            f" ({count} object(s) done before it)"
        ) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        host = getattr(client.configuration, "host", "the cluster")
        raise KubeError(f"cannot reach {host}: {exc} ({count} object(s) done before it)") from exc


def _message(body: Any) -> str:
    """The `message` of a Kubernetes Status answer, or the body as it came."""
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    try:
        status = json.loads(body)
    except (TypeError, ValueError):
        return str(body or "").strip() or "no detail"
    return str(status.get("message") or body) if isinstance(status, dict) else str(body)
