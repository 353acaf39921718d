"""Order pacing: every worker takes a slot from Binance's ORDERS limits (per 10 s and per day, read
from exchangeInfo) in Redis before it sends an order, so a burst is drained at the allowed rate
instead of being bounced with 429/-1015. Slots are counted in fixed windows, as Binance counts them.

`OrderPacer` holds the limits and the window keys; the slot itself is taken by the worker's order
gate (services/job_runs.py), in the same script as the kill switch check and the weight budget.
"""

from __future__ import annotations

# A Lua function, so the worker's order gate can take a slot in the same call as the rest.
TAKE_FUNCTION = """
local function take_order_slot(ten_key, day_key, per_10s, per_day)
  local ten = tonumber(redis.call('GET', ten_key) or '0')
  local day = tonumber(redis.call('GET', day_key) or '0')
  if ten >= per_10s then return {0, 1} end
  if day >= per_day then return {0, 2} end
  redis.call('INCR', ten_key); redis.call('PEXPIRE', ten_key, 20000)
  redis.call('INCR', day_key); redis.call('PEXPIRE', day_key, 90000000)
  return {1, 0}
end
"""

TEN_S = 10_000
DAY = 86_400_000
SHARE = 0.9  # of Binance's limits: headroom for orders placed outside spotgate on the same account


class OrderPacer:
    def __init__(self, prefix: str, per_10s: int = 100, per_day: int = 200_000):
        self.prefix = prefix
        self.set_limits(per_10s, per_day)

    def set_limits(self, per_10s: int, per_day: int) -> None:
        self.per_10s = max(1, int(per_10s * SHARE))
        self.per_day = max(1, int(per_day * SHARE))

    def set_limits_from_exchange_info(self, info: dict) -> None:
        per_10s, per_day = 100, 200_000
        for limit in info.get("rateLimits", []):
            if limit.get("rateLimitType") != "ORDERS":
                continue
            seconds = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}.get(limit.get("interval"), 0)
            span = seconds * int(limit.get("intervalNum", 1))
            if span == 10:
                per_10s = int(limit["limit"])
            elif span == 86400:
                per_day = int(limit["limit"])
        self.set_limits(per_10s, per_day)

    def keys(self, now_ms: int) -> list[str]:
        """The counters of the 10 s and daily windows `now_ms` falls in."""
        return [f"{self.prefix}pace:orders:10s:{now_ms // TEN_S}", f"{self.prefix}pace:orders:1d:{now_ms // DAY}"]

    @staticmethod
    def wait_after(which: int, now_ms: int) -> float:
        """Seconds until the full window (1: 10 s, 2: daily) ends and a slot can free up."""
        window = TEN_S if int(which) == 1 else DAY
        return (window - now_ms % window) / 1000 + 0.01
