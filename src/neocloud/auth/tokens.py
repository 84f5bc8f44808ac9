"""Bearer tokens: random, shown once, stored as SHA-256 (they are high-entropy secrets,
so a fast hash is enough and lookups stay one indexed equality)."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "nc_"


def generate() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def display_prefix(token: str) -> str:
    return token[:10]
