"""The WebSocket API: `/ws` (multiplexed) and the pre-subscribed shortcuts, one reader and one writer per socket.

    /ws                              subscribe / unsubscribe / ping / auth messages
    /ws/ticker/<sym>  /ws/depth/<sym>  /ws/trades/<sym>  /ws/kline/<sym>/<interval>  /ws/user[?lastEventId=]

A token comes as `?token=`, `Authorization: Bearer`, or a first `{"type": "auth"}` message. `user` and
`orders` always need one (any role: a viewer may read account events); market channels need one
when WS_PUBLIC_MARKET_DATA is false. The protocol itself is app/ws_protocol.py; the fan-out app/hub.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from sanic import Blueprint, Request, Sanic
from sanic.exceptions import RequestCancelled, WebsocketClosed
from sanic_ext import openapi
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from binance_client import errors as upstream

from .auth import Role, authenticate_token, bearer_token, require_role
from .clients import client_ip
from .errors import (
    ApiError, BadRequest, TooManyRequests, Unauthorized, Unavailable, WsClose, count_error, from_binance, render,
    ws_close_code, ws_error_frame,
)
from .hub import Hub
from .ws_protocol import (
    Auth, Channel, ChannelKind, Close, EventId, MessageRate, Ping, Rate, Subscribe, Subscriber, Unsubscribe,
    authenticated, encode, parse_channel, parse_client_message, pong, subscribed, unsubscribed, welcome,
)

log = logging.getLogger("spotgate.ws")

AUTH_TIMEOUT = 10.0        # seconds to send a token when nothing can be done without one
WRITE_BATCH = 64           # frames joined into one write when a client is behind
HIGH_WATER = 65536         # Sanic pauses writes above this many buffered bytes
CLOSE_FLUSH_TIMEOUT = 5.0  # seconds the writer gets to send an error frame and the close
MAX_MESSAGE_BYTES = 64 * 1024

bp = Blueprint("ws")


class Connection(Subscriber):
    """One client socket: its reader and writer, its token, and its side of the fan-out."""

    __slots__ = ("ws", "app", "hub", "settings", "request", "id", "principal", "auth_deadline", "pending",
                 "ping_waiter", "replay_task", "user_baseline", "rate", "admitted_ip")

    def __init__(self, request: Request, ws):
        settings = request.app.ctx.settings
        super().__init__(settings.ws_send_queue)
        self.ws = ws
        self.app = request.app
        self.hub: Hub = request.app.ctx.hub
        self.settings = settings
        self.request = request
        self.id = uuid.uuid4().hex[:16]
        self.principal = None
        self.auth_deadline: float | None = None
        self.pending: Subscribe | None = None  # a shortcut's subscription, waiting for a token
        self.ping_waiter = None
        self.replay_task: asyncio.Task | None = None
        self.user_baseline: EventId | None = None
        self.rate = MessageRate(settings.ws_message_rate)
        self.admitted_ip: str | None = None  # set by the hub while this socket holds an anonymous slot
        self.outbox.direct = self._write_now

    # -- what the hub calls -----------------------------------------------------------------------------

    def _write_now(self, frame: bytes) -> bool:
        # Called by the hub for a client whose queue is empty and whose writer is idle.
        transport = self.ws.io_proto.transport if self.ws.io_proto else None
        if (transport is None or self.ws.ws_proto.state is not State.OPEN or transport.is_closing()
                or transport.get_write_buffer_size() >= HIGH_WATER):
            return False
        transport.write(frame)
        return True

    def writable(self) -> bool:
        transport = self.ws.io_proto.transport if self.ws.io_proto else None
        return transport is not None and not transport.is_closing() and transport.get_write_buffer_size() < HIGH_WATER

    def send(self, message: dict) -> None:
        if not self.outbox.put(encode(message)):
            self.hub.cut_slow(self)

    def send_error(self, exc: ApiError, channel: str | None = None) -> None:
        count_error(exc, "ws")
        self.send(ws_error_frame(exc, channel))

    def fail(self, exc: ApiError) -> None:
        """An error frame, then the close code it maps to (4401, 4403, 4429, ...)."""
        if self.outbox.closed:
            return
        count_error(exc, "ws")
        self.hub.detach(self)
        self.outbox.put(encode(ws_error_frame(exc)))
        self.outbox.close_after(ws_close_code(exc), exc.message[:120])

    def cut(self, code: int, reason: str) -> None:
        """Close at once, dropping what is queued (the queue is what the client could not take)."""
        if self.outbox.closed and self.ws.ws_proto.state is not State.OPEN:
            return
        self.hub.detach(self)
        self.outbox.abandon()
        log.info("closing connection %s: %s", self.id, reason)
        self.ws.fail_connection(code, reason[:120])

    # -- the socket -------------------------------------------------------------------------------------

    async def run(self, presubscribe: list[str]) -> None:
        """The handler task is the writer; the reader runs beside it. Whichever ends first ends the
        other (what asyncio.wait(FIRST_COMPLETED) over two tasks does, without its ~1.7 KB a socket)."""
        self._fail_on_invalid_utf8()
        reader = asyncio.create_task(self._read(presubscribe))
        reader.add_done_callback(self._reader_done)
        try:
            await self._write()
        except asyncio.CancelledError:
            # Sanic cancels the handlers when the server stops, then closes with 1000 ("normal"). 1001
            # ("going away") tells the client to reconnect: to another dyno, or to this one restarted.
            self.ws.fail_connection(WsClose.GOING_AWAY, "Server restarting")
            raise
        finally:
            for task in (reader, self.replay_task):
                if task is not None:
                    task.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            self.hub.detach(self)
            waiter = self.ping_waiter
            if waiter is not None:
                if waiter.done():
                    waiter.cancelled() or waiter.exception()  # retrieved, so never logged
                else:
                    waiter.cancel()

    def _fail_on_invalid_utf8(self) -> None:
        """Sanic's frame assembler decodes text frames in a task of its own, where invalid UTF-8 raises
        UnicodeDecodeError that nothing handles: the socket stayed open, its reader stuck, and an ERROR
        was logged for each such frame. RFC 6455 (8.1) says fail the connection: close 1007."""
        ws = self.ws
        process_events = ws.process_events

        async def process_events_or_fail(events) -> None:
            try:
                await process_events(events)
            except UnicodeDecodeError:
                log.info("closing connection %s: invalid UTF-8 in a text frame", self.id)
                ws.fail_connection(WsClose.INVALID_DATA, "Text frames must be valid UTF-8")

        ws.process_events = process_events_or_fail

    def _reader_done(self, reader: asyncio.Task) -> None:
        # The peer closed (or the reader failed): stop writing. After fail() the outbox is already
        # closed with a Close queued, and the writer still sends the error frame and the close.
        if not reader.cancelled():
            exc = reader.exception()
            if exc is not None and not isinstance(exc, ConnectionClosed | WebsocketClosed):
                log.error("connection %s: reader failed", self.id, exc_info=exc)
        if not self.outbox.closed:
            self.outbox.abandon()

    async def _write(self) -> None:
        """Drain the outbox; a slow client blocks only here (Sanic's write buffer, then this queue)."""
        while await self._write_batch():
            pass

    async def _write_batch(self) -> bool:
        await self.outbox.wait()
        frames = []
        for item in self.outbox.take(WRITE_BATCH):
            if isinstance(item, Close):
                if frames:
                    await self._write_bytes(b"".join(frames))
                if item.code:
                    try:
                        await asyncio.wait_for(self.ws.close(item.code, item.reason), CLOSE_FLUSH_TIMEOUT)
                    except asyncio.TimeoutError:
                        self.ws.fail_connection(item.code, item.reason)
                return False
            frames.append(item)
        return not frames or await self._write_bytes(frames[0] if len(frames) == 1 else b"".join(frames))

    async def _write_bytes(self, data: bytes) -> bool:
        # Frames are built once by the hub for every client (app.ws_protocol.text_frame), so they go to
        # the transport as they are, with Sanic's backpressure, instead of through ws.send().
        if self.ws.ws_proto.state is not State.OPEN:
            return False
        try:
            await self.ws.io_proto.send(data)
        except (RequestCancelled, AttributeError):
            return False
        return True

    async def _read(self, presubscribe: list[str]) -> None:
        await self._open(presubscribe)
        while not self.outbox.closed:
            raw = await self.ws.recv()
            if raw is None:
                continue
            verdict = self.rate.check(time.monotonic())
            if verdict == Rate.ABUSE:
                self.fail(TooManyRequests(f"More than {2 * self.rate.limit} messages in one second",
                                          code="RATE_LIMITED"))
                return
            if verdict == Rate.REFUSED:
                self.send_error(TooManyRequests(f"At most {self.rate.limit} messages a second; this one was "
                                                "ignored", code="RATE_LIMITED"))
                continue
            try:
                message = parse_client_message(raw, self.settings.ws_max_subscriptions)
                if isinstance(message, Subscribe):
                    await self._subscribe(message)
                elif isinstance(message, Unsubscribe):
                    self._unsubscribe(message)
                elif isinstance(message, Ping):
                    self.send(pong())
                elif isinstance(message, Auth):
                    await self._authenticate(message.token)
            except ApiError as exc:
                self.send_error(exc)

    async def _open(self, presubscribe: list[str]) -> None:
        request = self.request
        query = request.args if request.query_string else {}  # parsed only when there is a query
        token = query.get("token")
        try:
            if token is None and "authorization" in request.headers:
                token = bearer_token(request)
            if token is not None:
                self.principal = await authenticate_token(self.app, token)
        except ApiError as exc:
            self.fail(exc)
            return
        public = self.settings.ws_public_market_data
        self.send(welcome(self.id, self.principal, public_market_data=public,
                          heartbeat=self.settings.ws_heartbeat_interval,
                          limits={"subscriptions": self.settings.ws_max_subscriptions,
                                  "messagesPerSecond": self.settings.ws_message_rate,
                                  "sendQueue": self.settings.ws_send_queue}))
        if not presubscribe:
            if not public and self.principal is None:
                self.auth_deadline = time.monotonic() + AUTH_TIMEOUT
            return
        raw_last = query.get("lastEventId")
        try:
            last_event_id = None if raw_last is None else EventId.parse(raw_last)
        except ApiError as exc:
            self.send_error(exc, presubscribe[0])
            return
        subscription = Subscribe(tuple(presubscribe), last_event_id)
        if self.principal is None and (presubscribe == ["user"] or not public):
            self.pending = subscription  # subscribed once an auth message arrives
            self.auth_deadline = time.monotonic() + AUTH_TIMEOUT
            return
        await self._subscribe(subscription)

    async def _authenticate(self, token: str) -> None:
        try:
            principal = await authenticate_token(self.app, token)
        except ApiError as exc:
            if exc.status >= 500:
                self.send_error(exc)  # the revocation list is unreachable: the client may try again
            else:
                self.fail(exc)
            return
        self.principal = principal
        self.auth_deadline = None
        self.hub.authenticated(self)
        self.send(authenticated(principal))
        if self.pending is not None:
            subscription, self.pending = self.pending, None
            await self._subscribe(subscription)

    def _authorize(self, channel: Channel) -> None:
        if channel.private or not self.settings.ws_public_market_data:
            if self.principal is None:
                raise Unauthorized(f"'{channel.name}' needs a token: send {{\"type\": \"auth\", \"token\": ...}}",
                                   code="TOKEN_MISSING")
            require_role(self.principal, Role.VIEWER)

    async def _resolve(self, raw: object) -> Channel:
        channel = parse_channel(raw)
        if channel.symbol is not None:
            try:
                channel = channel.with_symbol(await self.app.ctx.market.symbol(channel.symbol))
            except upstream.BinanceError as exc:
                raise from_binance(exc) from None
        self._authorize(channel)
        return channel

    async def _subscribe(self, message: Subscribe) -> None:
        accepted: list[str] = []
        new: list[Channel] = []
        for raw in message.channels:
            try:
                channel = await self._resolve(raw)
            except ApiError as exc:
                self.send_error(exc, raw if isinstance(raw, str) else None)
                continue
            name = channel.name
            if name in accepted:
                continue
            if name not in self.channels:
                if len(self.channels) + len(new) >= self.settings.ws_max_subscriptions:
                    self.send_error(BadRequest(f"At most {self.settings.ws_max_subscriptions} subscriptions per "
                                               "connection", code="SUBSCRIPTION_LIMIT"), name)
                    continue
                if channel.kind == ChannelKind.DEPTH and not self.hub.follows_depth(self, name) and \
                        self.hub.depth_room(self) <= sum(c.kind == ChannelKind.DEPTH and
                                                         not self.hub.follows_depth(self, c.name) for c in new):
                    # each new book costs a REST snapshot from the weight budget everyone shares
                    self.send_error(TooManyRequests(
                        f"At most {self.settings.ws_max_depth_channels} depth channels per client (token, or IP "
                        "address without one)", code="DEPTH_LIMIT"), name)
                    continue
                new.append(channel)
            accepted.append(name)
        if new:
            try:
                await self.hub.acquire(new)
            except ApiError as exc:
                for channel in new:
                    self.send_error(exc, channel.name)
                    accepted.remove(channel.name)
                new = []
        if self.outbox.closed:  # closed while waiting for Redis
            self.hub.release([c.name for c in new])
            return
        if accepted:
            self.send(subscribed(accepted))
        self.hub.register(self, new)
        if any(c.kind == ChannelKind.USER for c in new):
            try:
                await self.hub.start_user_stream(self, message.last_event_id)
            except ApiError as exc:
                self.user_pending = None
                self.hub.unregister(self, ["user"])
                self.hub.release(["user"])
                self.send_error(exc, "user")

    def _unsubscribe(self, message: Unsubscribe) -> None:
        names = []
        for raw in message.channels:
            try:
                name = parse_channel(raw).name
            except ApiError as exc:
                self.send_error(exc, raw if isinstance(raw, str) else None)
                continue
            if name not in names:
                names.append(name)
        present = [name for name in names if name in self.channels]
        self.hub.unregister(self, present)
        self.hub.release(present)
        if "user" in present:
            if self.replay_task is not None:
                self.replay_task.cancel()
            self.user_pending = None
            self.user_cursor = None
        if names:
            self.send(unsubscribed(names))


async def serve(request: Request, ws, presubscribe: list[str]) -> None:
    conn = Connection(request, ws)
    request.app.ctx.hub.attach(conn, request)
    await conn.run(presubscribe)


# -- routes -----------------------------------------------------------------------------------------------


def _upgrade_token(request: Request) -> str | None:
    token = request.args.get("token") if request.query_string else None
    if token is None and "authorization" in request.headers:
        try:
            token = bearer_token(request)
        except ApiError:
            return None
    return token


@bp.on_request
async def admit(request: Request):
    """Refuse the upgrade itself when there is no slot for it, so clients see an HTTP answer rather
    than a drop. A valid token in the upgrade (`?token=` or Authorization) may take the slots kept
    for authenticated clients and is not counted against its address."""
    hub = request.app.ctx.hub
    token = _upgrade_token(request)
    principal = None
    if token is not None:
        try:
            principal = await authenticate_token(request.app, token)
        except ApiError:
            pass  # counted as anonymous; the connection itself then answers 4401 (or 1013)
    refusal = hub.admit(request, client_ip(request), authenticated=principal is not None)
    if refusal == "capacity":
        return render(request, Unavailable("Maximum WebSocket connections reached", code="WS_CAPACITY",
                                           retry_after=5))
    if refusal == "reserved":
        return render(request, Unavailable("The remaining WebSocket slots are kept for authenticated clients: "
                                           "send a token in the upgrade (?token= or Authorization)",
                                           code="WS_CAPACITY", retry_after=5))
    if refusal == "address":
        return render(request, TooManyRequests("Too many WebSocket connections without a token from this address",
                                               code="WS_ADDRESS_LIMIT", retry_after=5))


@bp.websocket("/ws")
async def multiplexed(request: Request, ws):
    await serve(request, ws, [])


@bp.websocket("/ws/ticker/<symbol:str>")
async def ticker(request: Request, ws, symbol: str):
    await serve(request, ws, [f"ticker:{symbol}"])


@bp.websocket("/ws/depth/<symbol:str>")
async def depth(request: Request, ws, symbol: str):
    await serve(request, ws, [f"depth:{symbol}"])


@bp.websocket("/ws/trades/<symbol:str>")
async def trades(request: Request, ws, symbol: str):
    await serve(request, ws, [f"trades:{symbol}"])


@bp.websocket("/ws/kline/<symbol:str>/<interval:str>")
async def kline(request: Request, ws, symbol: str, interval: str):
    await serve(request, ws, [f"kline:{symbol}:{interval}"])


@bp.websocket("/ws/user")
async def user(request: Request, ws):
    await serve(request, ws, ["user"])


def setup_ws(app: Sanic) -> None:
    """The hub on `app.ctx.hub` (opened after Redis, closed before it) and the /ws routes."""
    # One housekeeping task pings every client (app.hub) instead of a keepalive task per socket.
    app.config.WEBSOCKET_PING_INTERVAL = None
    app.config.WEBSOCKET_MAX_SIZE = MAX_MESSAGE_BYTES

    @app.before_server_start
    async def open_hub(app_: Sanic):
        app_.ctx.hub = Hub(app_.ctx.settings, app_.ctx.auth)
        await app_.ctx.hub.start()

    @app.after_server_stop
    async def close_hub(app_: Sanic):
        await app_.ctx.hub.stop()

    app.blueprint(bp)
    # Out of the OpenAPI spec (sanic-ext would describe Sanic's wrapper as a GET); the README
    # documents the protocol.
    openapi.exclude(bp=bp)
