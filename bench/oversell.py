"""The capacity benchmark's independent oversell check: committed GPUs of every pool at every
breakpoint, recomputed from the `capacity_claims` rows and compared with the supply from
the `nodes` rows (and the sites' power and the internal floors), without `neocloud.capacity`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def verify(url: str) -> dict[str, Any]:
    """Recompute, from the rows alone, committed vs supply per pool at every breakpoint.

    Supply of a pool is the GPUs of its in-service nodes while its site is live (the bench
    fleet has no deliveries or retirements); committed at hour t is the sum of the claims
    with start <= t < end. The site's power (committed watts vs power_mw / PUE) and the
    internal floors (customers vs supply - floor) are checked the same way.
    """
    import math

    import psycopg

    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1))
    with conn:
        supply: dict[tuple[int, int, str], int] = {}
        kw: dict[tuple[int, int, str], Decimal] = {}
        for sid, acc, fabric, gpus, power in conn.execute(
            "SELECT n.site_id, n.accelerator_id, f.name, sum(n.gpus), sum(n.power_kw) "
            "FROM nodes n JOIN fabrics f ON f.id = n.fabric_id "
            "WHERE n.state IN ('burn-in', 'available', 'allocated') "
            "GROUP BY n.site_id, n.accelerator_id, f.name"
        ):
            supply[(sid, acc, fabric)] = int(gpus)
            kw[(sid, acc, fabric)] = Decimal(power)
        sites = {
            sid: (live_on, retired_on, Decimal(mw), Decimal(pue))
            for sid, live_on, retired_on, mw, pue in conn.execute(
                "SELECT id, live_on, retired_on, power_mw, pue FROM sites"
            )
        }
        claims = conn.execute(
            "SELECT site_id, accelerator_id, fabric, start_h, end_h, gpus, internal "
            "FROM capacity_claims"
        ).fetchall()
        floors = conn.execute(
            "SELECT site_id, accelerator_id, start_h, end_h, gpus FROM capacity_floors"
        ).fetchall()
        contracts = conn.execute("SELECT count(*) FROM contracts").fetchone()
    conn.close()

    def hour(d: Any) -> int:
        return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) // 3600

    events: dict[tuple[int, int, str], list[tuple[int, int]]] = defaultdict(list)
    watts: dict[int, list[tuple[int, int]]] = defaultdict(list)
    customers: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    outside_live = 0
    for sid, acc, fabric, a, b, gpus, internal in claims:
        key = (sid, acc, fabric)
        events[key] += [(a, gpus), (b, -gpus)]
        per_gpu = math.ceil(kw[key] * 1000 / supply[key]) if key in supply else 0
        watts[sid] += [(a, gpus * per_gpu), (b, -gpus * per_gpu)]
        if not internal:
            customers[(sid, acc)] += [(a, gpus), (b, -gpus)]
        live_on, retired_on, _, _ = sites[sid]
        if a < hour(live_on) or (retired_on and b > hour(retired_on)):
            outside_live += 1

    def peaks(deltas: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
        """(hour, level) at every breakpoint."""
        merged: dict[int, int] = defaultdict(int)
        for h, d in deltas:
            merged[h] += d
        level = 0
        for h in sorted(merged):
            level += merged[h]
            yield h, level

    oversold: list[dict[str, Any]] = []
    breakpoints = 0
    for key, deltas in events.items():
        for h, level in peaks(deltas):
            breakpoints += 1
            if level > supply.get(key, 0):
                oversold.append({"pool": list(key), "hour": h, "committed": level})
                break
    power_over = 0
    for sid, deltas in watts.items():
        _, _, mw, pue = sites[sid]
        it_watts = int(mw * 1_000_000 / pue)
        if any(level > it_watts for _, level in peaks(deltas)):
            power_over += 1
    floor_breaches = 0
    acc_supply: dict[tuple[int, int], int] = defaultdict(int)
    for (sid, acc, _), g in supply.items():
        acc_supply[(sid, acc)] += g
    for sid, acc, a, b, fg in floors:
        for h, level in peaks(customers[(sid, acc)]):
            if a <= h < b and level > acc_supply[(sid, acc)] - fg:
                floor_breaches += 1
                break
    return {
        "pools_checked": len(supply),
        "claims_checked": len(claims),
        "breakpoints_checked": breakpoints,
        "oversold_pools": len({tuple(o["pool"]) for o in oversold}),
        "oversold_samples": oversold[:3],
        "claims_outside_site_life": outside_live,
        "sites_over_power": power_over,
        "floor_breaches": floor_breaches,
        "contracts_in_db": int(contracts[0]) if contracts else 0,
    }
