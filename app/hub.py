"""The web process's one Redis pub/sub reader and its fan-out to the local WebSocket clients.

    stream relay ──PUBLISH P md:<channel>──▶ Redis ──▶ Hub._read (ONE subscription per web process)
                                                         │ parse + frame each message once
                                                         ▼
                        Session.push*() per local client (app/ws_session.py): bounded queue,
                        tickers conflated, depth resynced from P book:<SYM>, user events by id
                                                         ▼
                                          each client's writer task (app/ws.py)

Channels are reference-counted: `P md:<channel>` is subscribed when the first local client wants it
and unsubscribed after the last one leaves. Market channels are registered as demand for the relay
(`P stream:demand`, refreshed every 10 s with a 30 s expiry; new ones announced on
`P stream:demand:changed`), so they lapse by themselves when no process wants them any more.
The Redis contract is docs/streams-protocol.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections import deque

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from config.redis_connection import redis_connection
from services.metrics import metrics

from .clients import client_ip
from services.depth_sequence import DepthSequence, Step

from .errors import BadRequest, Unavailable, Unauthorized, WsClose
from .ws_protocol import CHANNEL_MESSAGES, Channel, ChannelKind, EventId, ServerKind, data_message, encode, text_frame
from .ws_session import CutSlow, Delivery

log = logging.getLogger("spotgate.hub")

DEMAND_REFRESH = 10.0     # seconds between re-registrations of this process's market channels
DEMAND_TTL_MS = 30_000    # a registration's lifetime: a dead process's interest lapses within it
SUBSCRIBE_TIMEOUT = 5.0   # Redis must confirm a new subscription within this
DEPTH_RING = 256          # recent diffs kept per depth channel, to continue a fresh snapshot
SNAPSHOT_RETRY = 0.25     # seconds between P book reads while clients wait for a usable one
REPLAY_PAGE = 500         # user events per XRANGE while replaying
TOKEN_RECHECK = 10.0      # seconds between revocation checks of connected tokens
RECONNECT_MAX = 5.0
REDIS_CONNECTIONS = 16    # the hub's command pool (book reads, replays, demand, revocations)
STATUS_STATES = {"reconnecting": "upstream_reconnecting", "restored": "upstream_restored"}
CONFLATED = Delivery.CONFLATED


class Feed:
    """One Redis channel this process follows, and the local clients on it."""

    __slots__ = ("name", "channel", "refs", "subscribers", "confirmed",
                 "sequence", "ring", "waiting", "fetching")

    def __init__(self, channel: Channel):
        self.name = channel.name
        self.channel = channel
        self.refs = 0
        self.subscribers: dict = {}  # connection → its Session (insertion-ordered)
        self.confirmed = asyncio.get_running_loop().create_future()
        # depth channels only
        self.sequence = DepthSequence()              # the diffs this process received
        self.ring: deque = deque(maxlen=DEPTH_RING)  # (U, u, frame)
        self.waiting: set = set()                     # clients waiting for a snapshot
        self.fetching = False


class Hub:
    """Per web process: the connections, the channels they follow, and the Redis side of both."""

    def __init__(self, settings, auth):
        # The hub's own clients: a bounded pool that makes bursts (a thousand clients subscribing at
        # once) wait rather than fail, and cannot starve the REST tier's connections.
        url, tls = redis_connection(settings)
        self.redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            url, **tls, max_connections=REDIS_CONNECTIONS, timeout=SUBSCRIBE_TIMEOUT,
            health_check_interval=30))
        self.settings = settings
        self.revocations = auth.revocations
        prefix = settings.redis_key_prefix
        self.prefix = prefix
        self.md_prefix = f"{prefix}md:".encode()
        self.demand_key = f"{prefix}stream:demand"
        self.demand_changed = f"{prefix}stream:demand:changed"
        self.user_events_key = f"{prefix}user:events"
        self.control = f"{prefix}ws:hub:{uuid.uuid4().hex}".encode()  # keeps the reader subscribed
        self.connections: dict = {}               # connection → None
        self._admitted = weakref.WeakSet()        # requests let through, not yet connected
        self._anonymous = 0                       # connected without a token (WS_RESERVED_AUTHENTICATED)
        self._anonymous_by_ip: dict[str, int] = {}  # the same, per client address (WS_MAX_CONNECTIONS_PER_IP)
        self._anonymous_ip: dict = {}                # connection → its address, while it holds such a slot
        self._feeds: dict[str, Feed] = {}
        # depth channels per client (token subject, or IP without a token): each new book costs the
        # relay a REST snapshot from the shared weight budget, so one client may follow only so many
        self._depth_by_client: dict[str, dict[str, set]] = {}   # client → depth channel → its connections
        self._depth_client_of: dict = {}                         # connection → the client it counts for
        # Pub/sub on its own client without retries: a lost connection must surface here, where
        # subscriptions are restored and clients resynced, not be reconnected silently.
        self._client = aioredis.Redis.from_url(url, **tls, retry=Retry(NoBackoff(), 0),
                                               socket_keepalive=True, client_name=f"{prefix}ws-hub")
        self._pubsub = None
        self._commands: deque = deque()           # (verb, name) in call order
        self._commands_ready = asyncio.Event()
        self._expect: dict[str, deque] = {}       # name → feeds awaiting a SUBSCRIBE confirmation
        self._generation = 0
        self._last_pong = time.monotonic()
        self._tasks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()
        # Metric children bound once: a delivery costs one increment per message, not per socket.
        m = metrics()
        self._delivered = {kind: m.ws_deliveries.labels(kind.value) for kind in ChannelKind}
        self._conflated = {kind: m.ws_dropped.labels(kind.value, "conflated") for kind in ChannelKind}
        self._resynced = m.ws_dropped.labels(ChannelKind.DEPTH.value, "resync")
        self._connections, self._opened, self._refused = m.ws_connections, m.ws_opened, m.ws_refused
        self._slow_closes = m.ws_slow_closes

    # -- lifecycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        for name, loop in (("hub-reader", self._read), ("hub-commands", self._send_commands),
                           ("hub-demand", self._demand_loop), ("hub-housekeeping", self._housekeeping)):
            self._tasks.append(asyncio.create_task(loop(), name=name))

    async def stop(self) -> None:
        for task in self._tasks + list(self._background):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._background, return_exceptions=True)
        await self._client.aclose()
        await self.redis.aclose()

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- connections ------------------------------------------------------------------------------------

    def admit(self, request, ip: str, authenticated: bool) -> str | None:
        """Reserve a slot for a WebSocket upgrade, or say why not: "capacity" at MAX_WS_CONNECTIONS,
        "reserved" when only the WS_RESERVED_AUTHENTICATED slots are left and the upgrade carries no
        valid token, "address" at WS_MAX_CONNECTIONS_PER_IP sockets without a token from `ip`. A
        request that never becomes a connection (failed handshake) frees its slot when it is
        garbage-collected; admitted requests not yet connected are few, so they are counted here."""
        settings = self.settings
        if len(self.connections) + len(self._admitted) >= settings.max_ws_connections:
            self._refused.inc()
            return "capacity"
        if not authenticated:
            pending = [r for r in self._admitted if r.ctx.ws_anonymous]
            if self._anonymous + len(pending) >= settings.max_ws_connections - settings.ws_reserved_authenticated:
                self._refused.inc()
                return "reserved"
            from_ip = self._anonymous_by_ip.get(ip, 0) + sum(1 for r in pending if r.ctx.ws_ip == ip)
            if from_ip >= settings.ws_max_connections_per_ip:
                self._refused.inc()
                return "address"
        request.ctx.ws_ip, request.ctx.ws_anonymous = ip, not authenticated
        self._admitted.add(request)
        return None

    def attach(self, conn, request) -> None:
        self._admitted.discard(request)
        self.connections[conn] = None
        if getattr(request.ctx, "ws_anonymous", False):
            ip = self._anonymous_ip[conn] = request.ctx.ws_ip
            self._anonymous += 1
            self._anonymous_by_ip[ip] = self._anonymous_by_ip.get(ip, 0) + 1
        self._connections.inc()
        self._opened.inc()

    def authenticated(self, conn) -> None:
        """A connection without a token sent one: it leaves the anonymous share and its address's count."""
        ip = self._anonymous_ip.pop(conn, None)
        if ip is None:
            return
        self._anonymous -= 1
        left = self._anonymous_by_ip.get(ip, 1) - 1
        if left > 0:
            self._anonymous_by_ip[ip] = left
        else:
            self._anonymous_by_ip.pop(ip, None)

    def detach(self, conn) -> None:
        """Forget a connection and everything it followed (idempotent)."""
        if conn in self.connections:
            del self.connections[conn]
            self._connections.dec()
        self.authenticated(conn)  # its anonymous slot, if it held one, is free again
        names = list(conn.channels)
        self.unregister(conn, names)
        self.release(names)

    # -- subscriptions ----------------------------------------------------------------------------------

    async def acquire(self, channels: list[Channel]) -> None:
        """Follow these channels (counted once per caller) once Redis confirms it; raises Unavailable."""
        feeds, demand = [], []
        for channel in channels:
            feed = self._feeds.get(channel.name)
            if feed is None:
                feed = self._feeds[channel.name] = Feed(channel)
                self._command("SUBSCRIBE", channel.name)
                if not channel.private:
                    demand.append(feed)
            feed.refs += 1
            feeds.append(feed)
        if demand:
            self._spawn(self._add_demand(demand))
        try:
            pending = [asyncio.shield(f.confirmed) for f in feeds if not f.confirmed.done()]
            if pending:
                await asyncio.wait_for(asyncio.gather(*pending), SUBSCRIBE_TIMEOUT)
        except (asyncio.TimeoutError, RedisError, OSError) as exc:
            log.warning("could not follow %s: %r", ", ".join(c.name for c in channels), exc)
            self.release([c.name for c in channels])
            raise Unavailable("Live data is unavailable right now (Redis)", code="STREAM_UNAVAILABLE",
                              retry_after=1) from None
        except asyncio.CancelledError:  # the client left while waiting
            self.release([c.name for c in channels])
            raise

    def release(self, names: list[str]) -> None:
        for name in names:
            feed = self._feeds.get(name)
            if feed is None:
                continue
            feed.refs -= 1
            if feed.refs <= 0:
                del self._feeds[name]
                self._command("UNSUBSCRIBE", name)  # demand is not removed: it lapses

    def register(self, conn, channels: list[Channel]) -> None:
        """Start delivering (after `acquire`); depth clients are first given a snapshot."""
        session = conn.session
        session.subscribed(channels)
        for channel in channels:
            feed = self._feeds[channel.name]
            feed.subscribers[conn] = session
            if channel.kind == ChannelKind.DEPTH:
                client = self._depth_client_of.setdefault(conn, self.client_of(conn))
                self._depth_by_client.setdefault(client, {}).setdefault(channel.name, set()).add(conn)
                feed.waiting.add(conn)
                self._load_snapshot(feed)

    def unregister(self, conn, names: list[str]) -> None:
        for name in names:
            if name in conn.session.depth:
                self._depth_unfollow(conn, name)
            conn.session.unsubscribed([name])
            feed = self._feeds.get(name)
            if feed is not None:
                feed.subscribers.pop(conn, None)
                feed.waiting.discard(conn)

    @staticmethod
    def client_of(conn) -> str:
        """Whom a connection's depth channels count for: its token's subject, else its IP address."""
        if conn.principal is not None:
            return f"sub:{conn.principal.sub}"
        return f"ip:{client_ip(conn.request)}"

    def depth_room(self, conn) -> int:
        """How many more depth channels this connection's client may follow (WS_MAX_DEPTH_CHANNELS)."""
        client = self._depth_client_of.get(conn) or self.client_of(conn)
        return self.settings.ws_max_depth_channels - len(self._depth_by_client.get(client, ()))

    def follows_depth(self, conn, name: str) -> bool:
        """Whether this connection's client already follows `name` (on any of its connections)."""
        client = self._depth_client_of.get(conn) or self.client_of(conn)
        return name in self._depth_by_client.get(client, ())

    def _depth_unfollow(self, conn, name: str) -> None:
        client = self._depth_client_of.get(conn)
        channels = self._depth_by_client.get(client)
        if channels is None:
            return
        holders = channels.get(name)
        if holders is not None:
            holders.discard(conn)
            if not holders:
                del channels[name]
        if not channels:
            del self._depth_by_client[client]
        if not conn.session.depth.keys() - {name}:
            self._depth_client_of.pop(conn, None)

    def _command(self, verb: str, name: str) -> None:
        # Sent by one task in call order, so an UNSUBSCRIBE never overtakes a later SUBSCRIBE.
        self._commands.append((verb, name))
        self._commands_ready.set()

    async def _send_commands(self) -> None:
        while True:
            await self._commands_ready.wait()
            self._commands_ready.clear()
            while self._commands and self._pubsub is not None:
                pubsub = self._pubsub
                verb, name = self._commands.popleft()
                names = [name]
                while self._commands and self._commands[0][0] == verb:
                    names.append(self._commands.popleft()[1])
                if verb == "SUBSCRIBE":
                    for n in names:  # replies come in command order: the k-th one confirms the k-th send
                        self._expect.setdefault(n, deque()).append(self._feeds.get(n))
                method = pubsub.subscribe if verb == "SUBSCRIBE" else pubsub.unsubscribe
                try:
                    await method(*[self.md_prefix + n.encode() for n in names])
                except (RedisError, OSError) as exc:
                    log.warning("pub/sub command failed (%r); the reader reconnects and resubscribes", exc)
                    break

    async def _add_demand(self, feeds: list[Feed]) -> None:
        """Tell the relay at once about channels new to this process (the refresh loop keeps them)."""
        expiry = int(time.time() * 1000) + DEMAND_TTL_MS
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zadd(self.demand_key, {f.name: expiry for f in feeds})
                for f in feeds:
                    pipe.publish(self.demand_changed, f.name)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("could not register stream demand (retried every %g s): %r", DEMAND_REFRESH, exc)

    async def _demand_loop(self) -> None:
        while True:
            await asyncio.sleep(DEMAND_REFRESH)
            names = [name for name, feed in self._feeds.items() if not feed.channel.private]
            try:
                if names:
                    expiry = int(time.time() * 1000) + DEMAND_TTL_MS
                    await self.redis.zadd(self.demand_key, {name: expiry for name in names})
            except (RedisError, OSError) as exc:
                log.warning("could not refresh stream demand: %r", exc)
            self._check_reader()

    # -- the reader -------------------------------------------------------------------------------------

    async def _read(self) -> None:
        delay = 0.1
        while True:
            pubsub = self._client.pubsub()
            try:
                self._commands.clear()  # the full subscription below supersedes them
                self._expect = {name: deque([feed]) for name, feed in self._feeds.items()}
                await pubsub.subscribe(*[self.md_prefix + name.encode() for name in self._feeds], self.control)
                self._generation += 1
                self._pubsub = pubsub
                self._last_pong = time.monotonic()
                self._commands_ready.set()
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None:
                        self._on_message(message)
                        delay = 0.1
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._pubsub is not None:
                    log.warning("lost the Redis pub/sub connection (%r); reconnecting", exc)
                    self._broadcast_status("reconnecting")
                self._pubsub = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)
            except Exception:
                log.exception("hub reader failed; restarting it")
                self._pubsub = None
                await asyncio.sleep(1.0)
            finally:
                await pubsub.aclose()

    def _check_reader(self) -> None:
        """A pub/sub connection that stopped answering PING is dropped, so the reader reconnects."""
        pubsub = self._pubsub
        if pubsub is None:
            return
        if time.monotonic() - self._last_pong > 3 * DEMAND_REFRESH and pubsub.connection is not None:
            log.warning("Redis pub/sub did not answer PING; reconnecting")
            self._spawn(pubsub.connection.disconnect())
            return
        self._spawn(self._ping(pubsub))

    async def _ping(self, pubsub) -> None:
        try:
            await pubsub.ping()
        except (RedisError, OSError):
            pass

    def _on_message(self, message: dict) -> None:
        kind = message["type"]
        channel = message["channel"]
        if kind == "message":
            if channel.startswith(self.md_prefix):
                self._dispatch(channel[len(self.md_prefix):].decode(), message["data"])
        elif kind == "subscribe":
            if channel == self.control:
                if self._generation > 1:
                    self._resync_all()
                return
            expected = self._expect.get(channel[len(self.md_prefix):].decode())
            if expected:
                feed = expected.popleft()
                if feed is not None and not feed.confirmed.done():
                    feed.confirmed.set_result(None)
        elif kind == "pong":
            self._last_pong = time.monotonic()

    # -- fan-out ----------------------------------------------------------------------------------------

    def _dispatch(self, name: str, payload: bytes) -> None:
        feed = self._feeds.get(name)
        if feed is None or not feed.subscribers:
            return
        try:
            message = orjson.loads(payload)
            kind = ServerKind(message["type"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("dropped a malformed message on %s", name)
            return
        if kind not in CHANNEL_MESSAGES[feed.channel.kind]:
            log.warning("dropped a %s message on %s", kind, name)
            return
        if kind == ServerKind.STATUS:
            state = STATUS_STATES.get((message.get("data") or {}).get("state"))
            if state is not None:
                self._fan_out(feed, encode(data_message(kind, name, {"state": state})))
            return
        # The relay's JSON is forwarded as it came (encoded once, by the relay), framed once here.
        if message.get("channel") != name or "data" not in message:
            payload = orjson.dumps(data_message(kind, name, message.get("data"), message.get("id")))
        frame = text_frame(payload)
        self._delivered[feed.channel.kind].inc(len(feed.subscribers))
        if kind == ServerKind.TICKER:
            conflated = 0
            for session in feed.subscribers.values():
                if session.push_latest(name, frame) is CONFLATED:
                    conflated += 1
            if conflated:
                self._conflated[feed.channel.kind].inc(conflated)
        elif kind == ServerKind.DEPTH_DIFF:
            self._depth_diff(feed, message["data"], frame)
        elif kind == ServerKind.DEPTH_SNAPSHOT:
            self._depth_snapshot(feed, message["data"], frame)
        elif kind == ServerKind.USER:
            try:
                event_id = EventId.parse(message.get("id"))
            except BadRequest:
                log.warning("dropped a user event without a valid id")
                return
            self._fan_out(feed, frame, lambda session: session.user_event(event_id, frame))
        else:
            self._fan_out(feed, frame)

    def _fan_out(self, feed: Feed, frame: bytes, push=None) -> None:
        too_slow = []
        for conn, session in feed.subscribers.items():
            if (session.push(frame) if push is None else push(session)) == Delivery.CUT:
                too_slow.append(conn)
        for conn in too_slow:
            self.cut_slow(conn)

    def cut_slow(self, conn) -> None:
        self._slow_closes.inc()
        resume = " (resume with lastEventId)" if "user" in conn.channels else ""
        conn.cut(WsClose.SLOW_CLIENT, "Too slow: the send queue is full" + resume)

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
                log.info("depth gap on %s (%s after %s): resyncing %d clients", feed.name, first,
                         sequence.update_id, len(feed.subscribers))
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
                    raw = await self.redis.get(f"{self.prefix}book:{feed.channel.symbol}")
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
        frame = encode(data_message(ServerKind.DEPTH_SNAPSHOT, feed.name, data))
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

    # -- user events ------------------------------------------------------------------------------------

    async def start_user_stream(self, conn, last_event_id: EventId | None) -> None:
        """After `register` of the user channel: replay from `last_event_id` (exclusive), then the live
        events held meanwhile; without it, live events from now on. Raises ApiError when Redis cannot say."""
        try:
            newest, deleted = await self._stream_info()
        except (RedisError, OSError):
            raise Unavailable("User events are unavailable right now (Redis)", code="STREAM_UNAVAILABLE",
                              retry_after=1) from None
        start, errors = conn.session.start_user(last_event_id, newest, deleted)
        for exc in errors:
            conn.send_error(exc, "user")
        if start is not None:
            self.replay_user_events(conn, start)

    async def _stream_info(self) -> tuple[EventId, EventId | None]:
        try:
            info = await self.redis.xinfo_stream(self.user_events_key)
        except RedisError as exc:
            if "no such key" in str(exc).lower():
                return EventId(0, 0), None
            raise
        def event_id(value):
            if value is None:
                return None
            value = value.decode() if isinstance(value, bytes) else str(value)
            return None if value == "0-0" else EventId.parse(value)
        return event_id(info.get("last-generated-id")) or EventId(0, 0), event_id(info.get("max-deleted-entry-id"))

    def replay_user_events(self, conn, cursor: EventId) -> None:
        conn.session.replay_started()
        conn.replay(self._replay(conn, cursor))

    async def _replay(self, conn, cursor: EventId) -> None:
        """XRANGE (cursor, +] page by page, then the live events held meanwhile, skipping those the
        stream already gave: no gap and no duplicate at the seam (the relay XADDs before it PUBLISHes).
        Live events that did not fit the holding buffer are in the stream: read it again for them."""
        session, outbox = conn.session, conn.outbox
        try:
            while True:
                while True:
                    entries = await self.redis.xrange(self.user_events_key, min=f"({cursor}", max="+",
                                                      count=REPLAY_PAGE)
                    for raw_id, fields in entries:
                        event_id = EventId.parse(raw_id.decode())
                        event = fields.get(b"event")
                        if event is None:
                            continue
                        await conn.room()
                        if outbox.closed:
                            return
                        outbox.put(encode(data_message(ServerKind.USER, "user", orjson.Fragment(event),
                                                       str(event_id))))
                        cursor = event_id
                    if len(entries) < REPLAY_PAGE:
                        break
                if session.replay_restart():
                    continue
                while (held := session.next_held(cursor)) is not None:
                    await conn.room()
                    if outbox.closed:
                        return
                    outbox.put(held[1])
                    cursor = held[0]
                if session.replay_done(cursor):
                    break
        except (RedisError, OSError) as exc:
            log.warning("user event replay failed: %r", exc)
            conn.fail(Unavailable("User events are unavailable right now (Redis); reconnect with lastEventId",
                                  code="STREAM_UNAVAILABLE"))

    # -- Redis reconnects -------------------------------------------------------------------------------

    def _broadcast_status(self, state: str) -> None:
        for feed in list(self._feeds.values()):
            if feed.channel.kind != ChannelKind.USER and feed.subscribers:
                self._fan_out(feed, encode(data_message(ServerKind.STATUS, feed.name,
                                                        {"state": STATUS_STATES[state]})))

    def _resync_all(self) -> None:
        """Subscribed again after a lost connection: what was missed is recovered where it can be
        (depth from a fresh snapshot, user events from the stream) and announced where it cannot."""
        log.info("Redis pub/sub restored; resyncing %d channels", len(self._feeds))
        self._broadcast_status("restored")
        for feed in list(self._feeds.values()):
            if feed.channel.kind == ChannelKind.DEPTH:
                feed.sequence.lose()
                feed.ring.clear()
                for conn, session in feed.subscribers.items():
                    session.depth_waiting(feed.name)
                    feed.waiting.add(conn)
                self._load_snapshot(feed)
            elif feed.channel.kind == ChannelKind.USER:
                for conn, session in feed.subscribers.items():
                    start = session.resync_user()
                    if start is not None:
                        self.replay_user_events(conn, start)

    # -- housekeeping -----------------------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        """Once a second: slow clients, auth deadlines, expired tokens; heartbeats and revocations on
        their own intervals. One task for all connections instead of timers per connection."""
        heartbeat = self.settings.ws_heartbeat_interval
        next_heartbeat = time.monotonic() + heartbeat
        next_token_check = time.monotonic() + TOKEN_RECHECK
        tick = min(1.0, heartbeat / 2)
        while True:
            await asyncio.sleep(tick)
            now, wall = time.monotonic(), time.time()
            slow_after = self.settings.ws_slow_client_timeout
            for conn in list(self.connections):
                verdict = conn.session.tick(wall, slow_after)
                if isinstance(verdict, CutSlow):
                    self._slow_closes.inc()
                    conn.cut(WsClose.SLOW_CLIENT, verdict.reason)
                elif verdict is not None:
                    conn.fail(verdict.error)
            if now >= next_heartbeat:
                next_heartbeat = now + heartbeat
                await self._heartbeat()
            if now >= next_token_check:
                next_token_check = now + TOKEN_RECHECK
                await self._check_revocations()

    async def _heartbeat(self) -> None:
        """A WebSocket ping to every client (proxies such as Heroku's close connections silent for
        55 s); one whose previous ping is still unanswered is gone and is closed."""
        for index, conn in enumerate(list(self.connections)):
            await conn.heartbeat()
            if index % 256 == 255:
                await asyncio.sleep(0)  # let deliveries through while 10,000 pings go out

    async def _check_revocations(self) -> None:
        by_token: dict = {}
        for conn in self.connections:
            if conn.principal is not None:
                by_token.setdefault(conn.principal, []).append(conn)
        if not by_token:
            return
        revocations = self.revocations
        principals = list(by_token)
        try:
            for start in range(0, len(principals), 1000):
                chunk = principals[start:start + 1000]
                async with self.redis.pipeline(transaction=False) as pipe:
                    for principal in chunk:
                        pipe.mget(revocations.keys(principal))  # the token, its session, its subject
                    found = await pipe.execute()
                for principal, values in zip(chunk, found):
                    if revocations.is_revoked_by(principal, values):
                        for c in by_token[principal]:
                            c.fail(Unauthorized("Token has been revoked", code="TOKEN_REVOKED"))
        except (RedisError, OSError) as exc:
            log.warning("could not check token revocations: %r", exc)
