"""Binance's REQUEST_WEIGHT limit as every process's shared weight budget sees it: a budget per minute.

exchangeInfo lists it in `rateLimits` as `{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
"intervalNum": 1, "limit": 6000}`: `limit` weight per window of `intervalNum` × `interval`. The budget
(binance_client/budget.py) counts a one-minute window, as X-MBX-USED-WEIGHT-1M does, so a limit given
for a longer window (`intervalNum` 2, or HOUR, DAY) is spread evenly over its minutes: spending that
much every minute never exceeds it. A window shorter than a minute (SECOND) cannot be kept by a
per-minute count and is not read (Binance lists none for REQUEST_WEIGHT). With several entries the
strictest wins.
"""

from __future__ import annotations

DEFAULT_WEIGHT_LIMIT = 6000  # Binance's REQUEST_WEIGHT per minute, until exchangeInfo says otherwise
BUDGET_SHARE = 0.9  # of that limit the budget spends; the rest is headroom for what we can't count

_MINUTES = {"MINUTE": 1, "HOUR": 60, "DAY": 1440}


def weight_limit_per_minute(exchange_info: dict) -> int | None:
    """The REQUEST_WEIGHT limit of `exchange_info` as weight per minute, or None when it lists none."""
    found = []
    for entry in exchange_info.get("rateLimits") or []:
        if entry.get("rateLimitType") != "REQUEST_WEIGHT" or entry.get("interval") not in _MINUTES:
            continue
        minutes = _MINUTES[entry["interval"]] * max(1, int(entry.get("intervalNum", 1)))
        found.append(max(1, int(entry["limit"]) // minutes))
    return min(found) if found else None


def budget_limit(weight_per_minute: int) -> int:
    """What the shared budget may spend in a minute of Binance's `weight_per_minute`."""
    return max(1, int(weight_per_minute * BUDGET_SHARE))
