"""The stream relay's report of itself in `P stream:status`: written by the relay every second, read
by the web tier's /status and by `make run`'s readiness check.

    {"market": [{"open": bool, "channels": int, ...}, ...],   one entry per upstream connection
     "user": {"mode", "subscribed", "ageSeconds", "rotating", "auth"?},
     "updatedAt": ms epoch}
"""

from __future__ import annotations

import time

import orjson

STATUS_TTL = 10  # seconds: a relay that stopped stops being reported soon after
RELAY_STALE_MS = 3_000  # the relay reports every second: older than this, it is not running


def now_ms() -> int:
    return int(time.time() * 1000)


def encode_report(state: dict, at_ms: int | None = None) -> bytes:
    """The relay's `state` as it is stored (SET with STATUS_TTL)."""
    return orjson.dumps({**state, "updatedAt": now_ms() if at_ms is None else at_ms})


def summary(raw: bytes | None, at_ms: int | None = None) -> dict:
    """What the web tier says of the relay, from the stored report (None: no report)."""
    report = orjson.loads(raw) if raw else None
    if not isinstance(report, dict):
        return {"running": False, "reportAgeMs": None, "connections": 0, "channels": 0, "userStream": None}
    age = max(0, (now_ms() if at_ms is None else at_ms) - int(report.get("updatedAt", 0)))
    market = report.get("market") or []
    return {
        "running": age <= RELAY_STALE_MS,
        "reportAgeMs": age,
        "connections": sum(1 for c in market if c.get("open")),
        "channels": sum(int(c.get("channels", 0)) for c in market),
        "userStream": report.get("user"),
    }
