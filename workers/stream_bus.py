"""The relay's side of the Redis contract with the web processes (docs/streams-protocol.md): demand
in, market data and user events out. The key names are services/contract/keys.py.

    P stream:demand            sorted set: channel → expiry (ms); read, long-lapsed members pruned
    P stream:demand:changed    pub/sub: a web process added a channel (wakes the relay at once)
    P md:<channel>             pub/sub: {"type","channel","data"} (+ "id" for user events)
    P ticker:<SYM>             the merged ticker (JSON), for the REST tier
    P book:<SYM>               the top 20 levels of the relay's book, written with every diff
    P user:events              Redis Stream of user events (field `event`), MAXLEN ~ 10000
    P stream:status            the relay's own state (JSON, expires unless refreshed): connections,
                               channels, user stream — for operators and the web tier's /status
"""

from __future__ import annotations

import time

import orjson

from services.contract.channels import ORDERS, USER, DataType, message
from services.contract.keys import Keys
from services.contract.relay_status import STATUS_TTL, encode_report

from .channels import order_from_report

USER_EVENTS_MAXLEN = 10_000
TICKER_TTL = 3600  # a ticker key outlives its relay only this long (readers check updatedAt)
PRUNE_AFTER_MS = 60_000  # demand lapsed this long ago is removed (web processes re-add what they hold)


def now_ms() -> int:
    return int(time.time() * 1000)


class StreamBus:
    def __init__(self, redis, prefix: str):
        self.redis = redis
        self.keys = Keys(prefix)

    def channel(self, name: str) -> str:
        return self.keys.md(name)

    # -- demand ---------------------------------------------------------------------------------------

    def demanded(self, now: int | None = None) -> list[str]:
        """Channels some web process holds subscribers for (score = expiry in the future)."""
        now = now_ms() if now is None else now
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrangebyscore(self.keys.demand, f"({now}", "+inf")
        pipe.zremrangebyscore(self.keys.demand, "-inf", now - PRUNE_AFTER_MS)
        members, _ = pipe.execute()
        return [m.decode() if isinstance(m, bytes) else m for m in members]

    # -- market data ----------------------------------------------------------------------------------

    def publish(self, channel: str, kind: DataType, data) -> None:
        self.redis.publish(self.channel(channel), orjson.dumps(message(kind, channel, data)))

    def status(self, channels, state: str) -> None:
        channels = list(channels)
        if not channels:
            return
        pipe = self.redis.pipeline(transaction=False)
        for channel in channels:
            pipe.publish(self.channel(channel), orjson.dumps(message(DataType.STATUS, channel, {"state": state})))
        pipe.execute()

    def ticker(self, symbol: str, ticker: dict) -> None:
        channel = f"ticker:{symbol}"
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.keys.ticker(symbol), orjson.dumps(ticker), ex=TICKER_TTL)
        pipe.publish(self.channel(channel), orjson.dumps(message(DataType.TICKER, channel, ticker)))
        pipe.execute()

    def depth_snapshot(self, symbol: str, top: dict) -> None:
        self._depth(symbol, top, DataType.DEPTH_SNAPSHOT, top)

    def depth_diff(self, symbol: str, diff: dict, top: dict) -> None:
        self._depth(symbol, top, DataType.DEPTH_DIFF, diff)

    def _depth(self, symbol: str, top: dict, kind: DataType, data: dict) -> None:
        # One transaction: a web process reading book:<SYM> sees it together with the diffs up to
        # its lastUpdateId, never a book behind a diff it already skipped.
        channel = f"depth:{symbol}"
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self.keys.book(symbol), orjson.dumps({**top, "updatedAt": now_ms()}))
        pipe.publish(self.channel(channel), orjson.dumps(message(kind, channel, data)))
        pipe.execute()

    def forget_book(self, symbol: str) -> None:
        """Nobody follows the symbol's depth any more: its book would only go stale."""
        self.redis.delete(self.keys.book(symbol))

    # -- user data ------------------------------------------------------------------------------------

    def user_event(self, event: dict) -> str:
        """Append one user event to the Redis Stream and publish it (and, for executionReports, the
        order); returns the stream entry id clients resume from."""
        raw = orjson.dumps(event)
        entry_id = self.redis.xadd(self.keys.user_events, {"event": raw}, maxlen=USER_EVENTS_MAXLEN, approximate=True)
        entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        pipe = self.redis.pipeline(transaction=False)
        pipe.publish(self.channel(USER), orjson.dumps(message(DataType.USER, USER, event, id=entry_id)))
        if event.get("e") == "executionReport":
            pipe.publish(
                self.channel(ORDERS),
                orjson.dumps(message(DataType.ORDER, ORDERS, order_from_report(event), id=entry_id)),
            )
        pipe.execute()
        return entry_id

    # -- the relay's own state ------------------------------------------------------------------------

    def report(self, state: dict) -> None:
        self.redis.set(self.keys.stream_status, encode_report(state), ex=STATUS_TTL)
