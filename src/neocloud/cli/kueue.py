"""`neocloud engines kueue render|apply`: each site's Kueue manifests, from the API, written
to files or server-side applied to the site's cluster with the Kubernetes client."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from neocloud.cli.common import api, console, err_console, fail
from neocloud.engines.kueue import apply as applying
from neocloud.engines.kueue import cluster, yamlio
from neocloud.engines.kueue.crds import CrdSchemas, InvalidManifests
from neocloud.engines.kueue.model import API_VERSIONS, DEFAULT_API_VERSION

kueue_app = typer.Typer(
    help="Kubernetes/Kueue: each site's queues and quotas, from its contracts.",
    no_args_is_help=True,
)
SiteOpt = typer.Option(None, "--site", help="one site (default: every site)")
AtOpt = typer.Option(None, "--at", help="the hour to express, ISO 8601 (default: now)")
VersionOpt = typer.Option(
    DEFAULT_API_VERSION, "--api-version", help="Kueue API version: v1beta2, or v1beta1 (< 0.15)"
)


def _fetch(ctx: typer.Context, site: str | None, at: str | None, version: str) -> dict[str, Any]:
    if version not in API_VERSIONS:
        fail(f"--api-version must be one of {', '.join(API_VERSIONS)}")
    with api(ctx) as client:
        result: dict[str, Any] = client.get(
            "/v1/engines/kueue/manifests", site=site, at=at, api_version=version
        )
    return result


@kueue_app.command("render")
def render(
    ctx: typer.Context,
    site: str | None = SiteOpt,
    output: Path | None = typer.Option(
        None, "-o", "--output", file_okay=False, help="write DIR/<site>.yaml (default: stdout)"
    ),
    at: str | None = AtOpt,
    api_version: str = VersionOpt,
    schemas: Path | None = typer.Option(
        None,
        "--schemas",
        exists=True,
        file_okay=False,
        help="check every manifest against the Kueue CRDs in DIR first",
    ),
) -> None:
    """Write each site's manifests as YAML: one multi-document file per site."""
    result = _fetch(ctx, site, at, api_version)
    if schemas is not None:
        try:
            crds = CrdSchemas.load(schemas)
            for s in result["sites"]:
                crds.validate(s["manifests"])
        except InvalidManifests as exc:
            fail("manifests do not match the CRDs:\n" + "\n".join(exc.errors), code=1)
        except (OSError, ValueError, KeyError) as exc:
            fail(f"cannot read the CRDs in {schemas}: {exc}")
    stamp = result["at"]
    for s in result["sites"]:
        text = yamlio.dump(s["manifests"], site=s["site"], at=_instant(stamp))
        if output is None:
            typer.echo(text, nl=False)
            continue
        output.mkdir(parents=True, exist_ok=True)
        path = output / f"{s['site']}.yaml"
        path.write_text(text)
        err_console.print(
            f"wrote {path} ({len(s['manifests'])} objects)", highlight=False, soft_wrap=True
        )


@kueue_app.command("apply")
def apply(
    ctx: typer.Context,
    site: str | None = typer.Option(
        None, "--site", help="the site whose cluster this is (needed when there are several)"
    ),
    kubeconfig: str | None = typer.Option(
        None, "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG; required)"
    ),
    context: str | None = typer.Option(None, "--context", help="kubeconfig context"),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="the API server checks everything and stores nothing"
    ),
    prune: bool = typer.Option(
        True, "--prune/--no-prune", help="delete the site's objects neocloud no longer renders"
    ),
    at: str | None = AtOpt,
    api_version: str = VersionOpt,
) -> None:
    """Server-side apply one site's manifests to its cluster (field manager `neocloud`), then
    delete what neocloud put there before and no longer renders (ended contracts' queues)."""
    try:
        path = cluster.kubeconfig_path(kubeconfig, os.environ)
    except cluster.KubeError as exc:
        fail(exc.message, exc.code)
    result = _fetch(ctx, site, at, api_version)
    sites = result["sites"]
    if len(sites) != 1:
        known = ", ".join(s["site"] for s in sites) or "none"
        fail(f"name the site this cluster runs with --site (sites: {known})")
    name, manifests = sites[0]["site"], sites[0]["manifests"]
    requests = applying.requests(manifests, dry_run=dry_run)
    verbs = {"PATCH": "applied", "DELETE": "deleted"}
    if dry_run:
        verbs = {"PATCH": "would apply", "DELETE": "would delete"}

    def done(r: applying.ApplyRequest) -> None:
        console.print(f"{verbs[r.method]} {r.what}", highlight=False)

    deleted = 0
    try:
        client = cluster.connect(path, context)
        with client:
            applied = cluster.send(client, requests, done)
            if prune:
                found = cluster.list_objects(
                    client, applying.list_requests(name, result["api_version"])
                )
                stale = applying.prune_requests(
                    found, manifests, api_version=result["api_version"], dry_run=dry_run
                )
                deleted = cluster.send(client, stale, done)
    except cluster.KubeError as exc:
        fail(exc.message, exc.code)
    console.print(
        f"{name}: {applied} object(s) {verbs['PATCH']}, {deleted} {verbs['DELETE']}"
        + (" (dry run: nothing stored)" if dry_run else ""),
        highlight=False,
    )


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
