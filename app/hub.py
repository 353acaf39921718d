"""The web process's WebSocket hub: its connections, the channels they follow, and the Redis side of both.

    stream relay ──PUBLISH P md:<channel>──▶ Redis ──▶ PubSub.read (ONE subscription per web process,
                                                         │          app/hub_pubsub.py)
                                                         │ FanOut: parse + frame each message once
                                                         ▼          (app/hub_fanout.py)
                        Session.push*() per local client (app/ws_session.py): bounded queue,
                        tickers conflated, depth resynced from P book:<SYM>, user events by id
                                                         ▼
                                          each client's writer task (app/ws.py)

The hub wires its parts and keeps the per-process books: admission (app/hub_admission.py),
reference-counted channels (`P md:<channel>` subscribed when the first local client wants it,
unsubscribed after the last one leaves), demand for the relay (app/hub_demand.py), depth channels
per client, user-event replays (app/hub_replay.py), timers (app/hub_housekeeping.py).
The Redis contract is docs/streams-protocol.md.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from config.redis_connection import redis_connection
from services.contract.keys import Keys
from services.metrics import metrics

from .clients import client_ip
from .errors import Unavailable, WsClose
from .hub_admission import Admission
from .hub_demand import Demand
from .hub_fanout import FanOut, Feed
from .hub_housekeeping import Housekeeping
from .hub_pubsub import PubSub
from .hub_replay import UserReplay
from .ws_protocol import Channel, ChannelKind, EventId

log = logging.getLogger("spotgate.hub")

SUBSCRIBE_TIMEOUT = 5.0  # Redis must confirm a new subscription within this
REDIS_CONNECTIONS = 16  # the hub's command pool (book reads, replays, demand, revocations)


class Hub:
    """Per web process: the connections, the channels they follow, and the Redis side of both."""

    def __init__(self, settings, auth):
        # The hub's own clients: a bounded pool that makes bursts (a thousand clients subscribing at
        # once) wait rather than fail, and cannot starve the REST tier's connections.
        url, tls = redis_connection(settings)
        self.redis = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                url, **tls, max_connections=REDIS_CONNECTIONS, timeout=SUBSCRIBE_TIMEOUT, health_check_interval=30
            )
        )
        self.settings = settings
        keys = self.keys = Keys(settings.redis_key_prefix)
        self.md_prefix = keys.md_prefix.encode()
        self.control = f"{keys.prefix}ws:hub:{uuid.uuid4().hex}".encode()  # keeps the reader subscribed
        m = metrics()
        self.admission = Admission(settings, m)
        self.connections = self.admission.connections  # connection → None
        self._feeds: dict[str, Feed] = {}
        # depth channels per client (token subject, or IP without a token): each new book costs the
        # relay a REST snapshot from the shared weight budget, so one client may follow only so many
        self._depth_by_client: dict[str, dict[str, set]] = {}  # client → depth channel → its connections
        self._depth_client_of: dict = {}  # connection → the client it counts for
        self._tasks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()
        self._slow_closes = m.ws_slow_closes
        self.fanout = FanOut(self.redis, keys, self._feeds, cut_slow=self.cut_slow, spawn=self._spawn, metrics=m)
        # Pub/sub on its own client without retries (see PubSub).
        self._client = aioredis.Redis.from_url(
            url, **tls, retry=Retry(NoBackoff(), 0), socket_keepalive=True, client_name=keys.hub_client_name
        )
        self.pubsub = PubSub(
            self._client,
            self.md_prefix,
            self.control,
            self._feeds,
            dispatch=self.fanout.dispatch,
            lost=lambda: self.fanout.broadcast_status("reconnecting"),
            restored=self._resync_all,
            spawn=self._spawn,
        )
        self.demand = Demand(self.redis, keys.demand, keys.demand_changed, self._feeds, after_refresh=self.pubsub.check)
        self.replay = UserReplay(self.redis, keys.user_events)
        self.housekeeping = Housekeeping(settings, self.connections, self.redis, auth.revocations, m.ws_slow_closes)

    # -- lifecycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        for name, loop in (
            ("hub-reader", self.pubsub.read),
            ("hub-commands", self.pubsub.send_commands),
            ("hub-demand", self.demand.run),
            ("hub-housekeeping", self.housekeeping.run),
        ):
            self._tasks.append(asyncio.create_task(loop(), name=name))

    async def stop(self) -> None:
        for task in self._tasks + list(self._background):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._background, return_exceptions=True)
        await self._client.aclose()
        await self.redis.aclose()

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("hub task %s failed", task.get_name(), exc_info=task.exception())

    # -- connections ------------------------------------------------------------------------------------

    def admit(self, request, ip: str, authenticated: bool) -> str | None:
        """See Admission.admit: None, or why the upgrade is refused ("capacity", "reserved", "address")."""
        return self.admission.admit(request, ip, authenticated)

    def attach(self, conn, request) -> None:
        self.admission.attach(conn, request)

    def authenticated(self, conn) -> None:
        """A connection without a token sent one: it leaves the anonymous share and its address's count."""
        self.admission.authenticated(conn)

    def detach(self, conn) -> None:
        """Forget a connection and everything it followed (idempotent)."""
        self.admission.detach(conn)
        names = list(conn.channels)
        self.unregister(conn, names)
        self.release(names)

    def cut_slow(self, conn) -> None:
        self._slow_closes.inc()
        resume = " (resume with lastEventId)" if "user" in conn.channels else ""
        conn.cut(WsClose.SLOW_CLIENT, "Too slow: the send queue is full" + resume)

    # -- subscriptions ----------------------------------------------------------------------------------

    async def acquire(self, channels: list[Channel]) -> None:
        """Follow these channels (counted once per caller) once Redis confirms it; raises Unavailable."""
        feeds, demand = [], []
        for channel in channels:
            feed = self._feeds.get(channel.name)
            if feed is None:
                feed = self._feeds[channel.name] = Feed(channel)
                self.pubsub.subscribe(channel.name)
                if not channel.private:
                    demand.append(feed)
            feed.refs += 1
            feeds.append(feed)
        if demand:  # "subscribed" is sent once the relay has been told too (Demand.add never raises)
            announced = self._spawn(self.demand.add([f.name for f in demand]))
            for feed in demand:
                feed.announced = announced
        try:
            pending = [asyncio.shield(f.confirmed) for f in feeds if not f.confirmed.done()]
            announcing = {f.announced for f in feeds if f.announced is not None and not f.announced.done()}
            pending += [asyncio.shield(task) for task in announcing]
            if pending:
                await asyncio.wait_for(asyncio.gather(*pending), SUBSCRIBE_TIMEOUT)
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("could not follow %s: %r", ", ".join(c.name for c in channels), exc)
            self.release([c.name for c in channels])
            raise Unavailable(
                "Live data is unavailable right now (Redis)", code="STREAM_UNAVAILABLE", retry_after=1
            ) from None
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
                self.pubsub.unsubscribe(name)  # demand is not removed: it lapses

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
                self.fanout.follow_depth(feed, conn)

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

    # -- user events and reconnects ---------------------------------------------------------------------

    async def start_user_stream(self, conn, last_event_id: EventId | None) -> None:
        """After `register` of the user channel: replay from `last_event_id` (exclusive), then the live
        events held meanwhile; without it, live events from now on. Raises ApiError when Redis cannot say."""
        await self.replay.start(conn, last_event_id)

    def _resync_all(self) -> None:
        """Subscribed again after a lost connection: what was missed is recovered where it can be
        (depth from a fresh snapshot, user events from the stream) and announced where it cannot."""
        log.info("Redis pub/sub restored; resyncing %d channels", len(self._feeds))
        self.fanout.broadcast_status("restored")
        for feed in list(self._feeds.values()):
            if feed.channel.kind == ChannelKind.DEPTH:
                self.fanout.resync_depth(feed)
            elif feed.channel.kind == ChannelKind.USER:
                self.replay.resync(feed)
