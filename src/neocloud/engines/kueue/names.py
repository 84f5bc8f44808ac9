"""Kubernetes names and label values derived from neocloud's names, deterministically.

Site and tenant names are already lowercase slugs; contract and accelerator names may hold
any character and up to 63 of them. A name that is not a valid DNS-1123 label as it stands
is lowercased, its other characters turned into '-', and it gets a short hash of the
original, so two contracts whose names differ only in case or punctuation never share an
object.
"""

from __future__ import annotations

import hashlib
import re

MAX_LABEL = 63
DOMAIN = "neocloud.io"
MANAGED_BY = "app.kubernetes.io/managed-by"
SITE_LABEL = f"{DOMAIN}/site"
TENANT_LABEL = f"{DOMAIN}/tenant"
CONTRACT_LABEL = f"{DOMAIN}/contract"
CONTRACT_TYPE_LABEL = f"{DOMAIN}/contract-type"
ACCELERATOR_LABEL = f"{DOMAIN}/accelerator"
FABRIC_LABEL = f"{DOMAIN}/fabric"
BLOCK_LABEL = f"{DOMAIN}/block"
HOSTNAME_LABEL = "kubernetes.io/hostname"
CONTRACT_ANNOTATION = f"{DOMAIN}/contract"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def dns_label(*parts: str) -> str:
    """`parts` joined by '-' as a DNS-1123 label (what namespaces, LocalQueues and the
    `kueue.x-k8s.io/queue-name` label accept): kept as it is when already valid, otherwise
    made valid and suffixed with a hash of the original."""
    text = "-".join(parts)
    if _DNS_LABEL.match(text):
        return text
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    stem = cleaned[: MAX_LABEL - 9].rstrip("-")
    return f"{stem}-{_digest(text)}" if stem else f"x-{_digest(text)}"


def label_value(text: str) -> str:
    """A label value for `text` (63 characters at most, alphanumeric at both ends)."""
    if _LABEL_VALUE.match(text):
        return text
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    stem = cleaned[: MAX_LABEL - 9].rstrip("-_.")
    return f"{stem}-{_digest(text)}" if stem else _digest(text)


def is_dns_label(text: str) -> bool:
    return bool(_DNS_LABEL.match(text))


def is_label_value(text: str) -> bool:
    return bool(_LABEL_VALUE.match(text))


def namespace(tenant: str) -> str:
    """The namespace a tenant submits its jobs from at a site."""
    return dns_label("tenant", tenant)


def flavor(site: str, accelerator: str) -> str:
    # Accelerator names are written in capitals (H100) but never differ only in case.
    return dns_label(site, accelerator.lower())


def cluster_queue(contract: str) -> str:
    return dns_label(contract)


def on_demand_queue(site: str, accelerator: str) -> str:
    """The ClusterQueue of a site's uncommitted GPUs of one accelerator, shared by its
    on-demand tenants."""
    return dns_label(site, accelerator.lower(), "on-demand")


def local_queue(contract: str, accelerator: str | None = None) -> str:
    """A tenant's queue for a contract (and one accelerator, for a contract that covers
    several): what its jobs name in `kueue.x-k8s.io/queue-name`."""
    return dns_label(contract) if accelerator is None else dns_label(contract, accelerator.lower())
