"""Demand for the stream relay: the market channels this web process has clients for, registered in
`P stream:demand` (refreshed every 10 s with a 30 s expiry, so a dead process's interest lapses) and
announced on `P stream:demand:changed` when new (docs/streams-protocol.md).
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.exceptions import RedisError

log = logging.getLogger("spotgate.hub")

DEMAND_REFRESH = 10.0  # seconds between re-registrations of this process's market channels
DEMAND_TTL_MS = 30_000  # a registration's lifetime: a dead process's interest lapses within it


class Demand:
    def __init__(self, redis, demand_key: str, demand_changed: str, feeds: dict, *, after_refresh, wall=time.time):
        self.redis = redis
        self.demand_key = demand_key
        self.demand_changed = demand_changed
        self._feeds = feeds
        self._after_refresh = after_refresh  # called after each refresh (the pub/sub PING check)
        self._wall = wall

    def _expiry(self) -> int:
        return int(self._wall() * 1000) + DEMAND_TTL_MS

    async def add(self, names: list[str]) -> None:
        """Tell the relay at once about channels new to this process (the refresh loop keeps them)."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zadd(self.demand_key, dict.fromkeys(names, self._expiry()))
                for name in names:
                    pipe.publish(self.demand_changed, name)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("could not register stream demand (retried every %g s): %r", DEMAND_REFRESH, exc)

    async def refresh(self) -> None:
        names = [name for name, feed in self._feeds.items() if not feed.channel.private]
        try:
            if names:
                await self.redis.zadd(self.demand_key, dict.fromkeys(names, self._expiry()))
        except (RedisError, OSError) as exc:
            log.warning("could not refresh stream demand: %r", exc)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(DEMAND_REFRESH)
            await self.refresh()
            self._after_refresh()
