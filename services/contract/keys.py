"""The Redis keys and pub/sub channels two or more processes share, spelled once (`Keys(prefix)`).

Every name starts with the settings' REDIS_KEY_PREFIX, so several deployments (and test runs) can
share one Redis. What each key holds, who writes it and who reads it is services/contract/__init__.py.
"""

from __future__ import annotations

# A relay ticker older than this is not trusted: the REST tier fetches instead, the worker's risk
# check asks Binance (the relay rewrites a ticker with every upstream event, several a second).
TICKER_FRESH_MS = 5_000


class Keys:
    """The shared names under one key prefix. Attributes for fixed names, methods for families."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.md_prefix = f"{prefix}md:"  # + a channel name: see md()
        self.demand = f"{prefix}stream:demand"
        self.demand_changed = f"{prefix}stream:demand:changed"
        self.user_events = f"{prefix}user:events"
        self.stream_status = f"{prefix}stream:status"
        # kombu's Redis transport puts every key of ours under this (global_keyprefix): queue lists,
        # the unacked hash and its index
        self.celery_prefix = f"{prefix}celery:"
        self.celery_unacked = f"{self.celery_prefix}unacked"
        # the client name of a web process's pub/sub connection (CLIENT LIST shows it; tests cut it)
        self.hub_client_name = f"{prefix}ws-hub"

    def md(self, channel: str) -> str:
        """The pub/sub channel carrying our channel `channel` (`ticker:BTCUSDT`, `user`, ...)."""
        return f"{self.md_prefix}{channel}"

    def ticker(self, symbol: str) -> str:
        return f"{self.prefix}ticker:{symbol}"

    def book(self, symbol: str) -> str:
        return f"{self.prefix}book:{symbol}"

    def queue(self, queue: str) -> str:
        """The list kombu reads Celery queue `queue` from (priority 0)."""
        return f"{self.celery_prefix}{queue}"

    def reply(self, token: str) -> str:
        """A reply list; `token` is fresh per call (services/contract/replies.py makes it)."""
        return f"{self.prefix}reply:{token}"
