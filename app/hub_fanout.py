"""Fan-out in one web process: each message from the relay parsed and framed once, then offered to the
session of every local client on its channel (app/ws_session.py decides queue, conflate, resync or
cut); depth channels kept continuous, resynced from `P book:<SYM>` when a client or this process
loses the sequence.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

import orjson
from redis.exceptions import RedisError

from services.contract.channels import DataType
from services.depth_sequence import DepthSequence, Step

from .errors import BadRequest
from .ws_protocol import CHANNEL_MESSAGES, Channel, ChannelKind, EventId, data_message, encode, text_frame
from .ws_session import Delivery

log = logging.getLogger("spotgate.hub")

DEPTH_RING = 256  # recent diffs kept per depth channel, to continue a fresh snapshot
SNAPSHOT_RETRY = 0.25  # seconds between P book reads while clients wait for a usable one
STATUS_STATES = {"reconnecting": "upstream_reconnecting", "restored": "upstream_restored"}
CONFLATED = Delivery.CONFLATED


class Feed:
    """One Redis channel this process follows, and the local clients on it."""

    __slots__ = (
        "name",
        "channel",
        "refs",
        "subscribers",
        "confirmed",
        "announced",
        "sequence",
        "ring",
        "waiting",
        "fetching",
    )

    def __init__(self, channel: Channel):
        self.name = channel.name
        self.channel = channel
        self.refs = 0
        self.subscribers: dict = {}  # connection → its Session (insertion-ordered)
        self.confirmed = asyncio.get_running_loop().create_future()
        self.announced: asyncio.Future | None = None  # the relay told of this market channel (app/hub_demand.py)
        # depth channels only
        self.sequence = DepthSequence()  # the diffs this process received
        self.ring: deque = deque(maxlen=DEPTH_RING)  # (U, u, frame)
        self.waiting: set = set()  # clients waiting for a snapshot
        self.fetching = False


class FanOut:
    """Messages of the channels in `feeds` (the hub's dict, shared) to their local clients."""

    def __init__(self, redis, keys, feeds: dict, *, cut_slow, spawn, metrics):
        self.redis = redis
        self.keys = keys  # services.contract.keys.Keys
        self._feeds = feeds
        self.cut_slow = cut_slow
        self._spawn = spawn
        # Metric children bound once: a delivery costs one increment per message, not per socket.
        self._delivered = {kind: metrics.ws_deliveries.labels(kind.value) for kind in ChannelKind}
        self._conflated = {kind: metrics.ws_dropped.labels(kind.value, "conflated") for kind in ChannelKind}
        self._resynced = metrics.ws_dropped.labels(ChannelKind.DEPTH.value, "resync")

    def follow_depth(self, feed: Feed, conn) -> None:
        """A new client on a depth channel: it waits for a snapshot."""
        feed.waiting.add(conn)
        self._load_snapshot(feed)

    def resync_depth(self, feed: Feed) -> None:
        """Diffs may have been missed (pub/sub was lost): every client starts over from a snapshot."""
        feed.sequence.lose()
        feed.ring.clear()
        for conn, session in feed.subscribers.items():
            session.depth_waiting(feed.name)
            feed.waiting.add(conn)
        self._load_snapshot(feed)

    def dispatch(self, name: str, payload: bytes) -> None:
        feed = self._feeds.get(name)
        if feed is None or not feed.subscribers:
            return
        try:
            message = orjson.loads(payload)
            kind = DataType(message["type"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("dropped a malformed message on %s", name)
            return
        if kind not in CHANNEL_MESSAGES[feed.channel.kind]:
            log.warning("dropped a %s message on %s", kind, name)
            return
        if kind == DataType.STATUS:
            state = STATUS_STATES.get((message.get("data") or {}).get("state"))
            if state is not None:
                self.fan_out(feed, encode(data_message(kind, name, {"state": state})))
            return
        # The relay's JSON is forwarded as it came (encoded once, by the relay), framed once here.
        if message.get("channel") != name or "data" not in message:
            payload = orjson.dumps(data_message(kind, name, message.get("data"), message.get("id")))
        frame = text_frame(payload)
        self._delivered[feed.channel.kind].inc(len(feed.subscribers))
        if kind == DataType.TICKER:
            conflated = 0
            for session in feed.subscribers.values():
                if session.push_latest(name, frame) is CONFLATED:
                    conflated += 1
            if conflated:
                self._conflated[feed.channel.kind].inc(conflated)
        elif kind == DataType.DEPTH_DIFF:
            self._depth_diff(feed, message["data"], frame)
        elif kind == DataType.DEPTH_SNAPSHOT:
            self._depth_snapshot(feed, message["data"], frame)
        elif kind == DataType.USER:
            try:
                event_id = EventId.parse(message.get("id"))
            except BadRequest:
                log.warning("dropped a user event without a valid id")
                return
            self.fan_out(feed, frame, lambda session: session.user_event(event_id, frame))
        else:
            self.fan_out(feed, frame)

    def fan_out(self, feed: Feed, frame: bytes, push=None) -> None:
        too_slow = []
        for conn, session in feed.subscribers.items():
            if (session.push(frame) if push is None else push(session)) == Delivery.CUT:
                too_slow.append(conn)
        for conn in too_slow:
            self.cut_slow(conn)

    # -- depth ------------------------------------------------------------------------------------------

    def _depth_diff(self, feed: Feed, data: dict, frame: bytes) -> None:
        try:
            first, final = int(data["U"]), int(data["u"])
        except (KeyError, TypeError, ValueError):
            log.warning("dropped a depth diff without U/u on %s", feed.name)
            return
        sequence = feed.sequence
        if sequence.synced:
            step = sequence.step(first, final)
            if step is Step.OLD:
                return  # already had it
            if step is Step.GAP:
                # A gap in what this process received: everyone on the channel starts over from a
                # fresh snapshot; the diffs held so far cannot continue one.
                log.info(
                    "depth gap on %s (%s after %s): resyncing %d clients",
                    feed.name,
                    first,
                    sequence.update_id,
                    len(feed.subscribers),
                )
                self._resynced.inc(len(feed.subscribers))
                feed.ring.clear()
                for conn, session in feed.subscribers.items():
                    session.depth_waiting(feed.name)
                    feed.waiting.add(conn)
        sequence.advance(final)  # after a gap, following restarts from this diff
        feed.ring.append((first, final, frame))
        resynced = 0
        for conn, session in feed.subscribers.items():
            if session.depth_diff(feed.name, first, final, frame) == Delivery.RESYNC:
                feed.waiting.add(conn)
                resynced += 1
        if resynced:
            self._resynced.inc(resynced)
        if feed.waiting:
            self._load_snapshot(feed)

    def _depth_snapshot(self, feed: Feed, data: dict, frame: bytes) -> None:
        """The relay rebuilt its book: every client continues from this snapshot."""
        try:
            last_update_id = int(data["lastUpdateId"])
        except (KeyError, TypeError, ValueError):
            log.warning("dropped a depth snapshot without lastUpdateId on %s", feed.name)
            return
        feed.sequence.snapshot(last_update_id)
        feed.ring.clear()
        feed.waiting.clear()
        for conn, session in feed.subscribers.items():
            if session.depth_snapshot(feed.name, last_update_id, frame) != Delivery.OK:
                feed.waiting.add(conn)

    def _load_snapshot(self, feed: Feed) -> None:
        if feed.fetching:
            return  # the running reader serves everyone waiting, including later arrivals
        feed.fetching = True
        self._spawn(self._read_book(feed))

    async def _read_book(self, feed: Feed) -> None:
        """Read `P book:<SYM>` while clients wait for a snapshot: it may not exist yet, be older than
        the diffs held, or a client may have no room for it yet (one stuck too long is cut as slow)."""
        attempt = 0
        try:
            while feed.waiting and self._feeds.get(feed.name) is feed:
                if attempt:
                    await asyncio.sleep(SNAPSHOT_RETRY if attempt < 8 else 1.0)
                attempt += 1
                try:
                    raw = await self.redis.get(self.keys.book(feed.channel.symbol))
                except (RedisError, OSError) as exc:
                    log.warning("could not read the %s book: %r", feed.channel.symbol, exc)
                    continue
                if raw is not None:
                    self._serve_snapshot(feed, raw)
        finally:
            feed.fetching = False

    def _serve_snapshot(self, feed: Feed, raw: bytes) -> None:
        """Give the waiting clients this book, then the held diffs that continue it (unless the book
        is older than the diffs held: then they keep waiting)."""
        try:
            book = orjson.loads(raw)
            last_update_id = int(book["lastUpdateId"])
            data = {"lastUpdateId": last_update_id, "bids": book["bids"], "asks": book["asks"]}
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("the %s book in Redis is malformed", feed.channel.symbol)
            return
        follow = [diff for diff in feed.ring if diff[1] > last_update_id]
        if follow and DepthSequence(last_update_id).step(follow[0][0], follow[0][1]) is not Step.NEXT:
            return  # the book is older than the diffs held
        frame = encode(data_message(DataType.DEPTH_SNAPSHOT, feed.name, data))
        waiting, feed.waiting = feed.waiting, set()
        for conn in waiting:
            session = feed.subscribers.get(conn)
            if session is None:
                continue
            if session.depth_snapshot(feed.name, last_update_id, frame) != Delivery.OK:
                feed.waiting.add(conn)  # no room now: it gets the next one
                continue
            for first, final, diff in follow:
                if session.depth_diff(feed.name, first, final, diff) != Delivery.OK:
                    feed.waiting.add(conn)
                    break

    def broadcast_status(self, state: str) -> None:
        for feed in list(self._feeds.values()):
            if feed.channel.kind != ChannelKind.USER and feed.subscribers:
                self.fan_out(feed, encode(data_message(DataType.STATUS, feed.name, {"state": STATUS_STATES[state]})))
