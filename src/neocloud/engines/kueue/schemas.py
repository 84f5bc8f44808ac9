"""API shapes of /v1/engines/kueue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class SiteManifests(BaseModel):
    site: str
    manifests: list[dict[str, Any]] = Field(
        description="Kubernetes objects in apply order: Topology, ResourceFlavors, Cohort, "
        "ClusterQueues, Namespaces, LocalQueues"
    )


class KueueManifests(BaseModel):
    at: datetime = Field(description="the start of the hour whose contracts they express")
    api_version: str = Field(description="the Kueue API version, e.g. kueue.x-k8s.io/v1beta2")
    sites: list[SiteManifests]
