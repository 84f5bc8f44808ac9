"""Principals of recently used tokens, kept a few seconds per API process.

Every request authenticates; reading the token's row costs a transaction (three round trips
on PostgreSQL) and a hop to a worker thread. A token row never changes except by revocation,
so each process keeps the principal of a token it has just checked for `TTL_SECONDS`: a
revoked token stops working at once on the process that revoked it, and within `TTL_SECONDS`
on the others (the same trade the token caches of OpenStack's keystonemiddleware and of
Kubernetes' webhook authenticator make). A token's own expiry is checked on every use.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from neocloud.auth.principal import Principal
from neocloud.core.timeutil import utcnow

TTL_SECONDS = 5.0
MAX_ENTRIES = 10_000


class TokenCache:
    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], tuple[float, Principal, datetime | None]] = {}

    def get(self, database: str, digest: str) -> Principal | None:
        item = self._items.get((database, digest))
        if item is None:
            return None
        until, principal, expires_at = item
        if time.monotonic() >= until or (expires_at is not None and expires_at <= utcnow()):
            with self._lock:
                self._items.pop((database, digest), None)
            return None
        return principal

    def put(
        self, database: str, digest: str, principal: Principal, expires_at: datetime | None
    ) -> None:
        with self._lock:
            if len(self._items) >= MAX_ENTRIES:
                self._items.clear()
            self._items[(database, digest)] = (time.monotonic() + self.ttl, principal, expires_at)

    def forget(self, digest: str) -> None:
        """Drop a token everywhere in this process (it was revoked)."""
        with self._lock:
            for key in [k for k in self._items if k[1] == digest]:
                del self._items[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


TOKENS = TokenCache()
