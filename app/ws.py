"""The WebSocket API: `/ws` (multiplexed) and the pre-subscribed shortcuts, one reader and one writer per socket.

    /ws                              subscribe / unsubscribe / ping / auth messages
    /ws/ticker/<sym>  /ws/depth/<sym>  /ws/trades/<sym>  /ws/kline/<sym>/<interval>  /ws/user[?lastEventId=]

A token comes as `?token=`, `Authorization: Bearer`, or a first `{"type": "auth"}` message. `user` and
`orders` always need one (any role: a viewer may read account events); market channels need one
when WS_PUBLIC_MARKET_DATA is false. The protocol is app/ws_protocol.py, each client's state machine
app/ws_session.py (a `Connection` only moves its frames), the fan-out app/hub.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from sanic import Blueprint, Request, Sanic
from sanic.exceptions import RequestCancelled, ServerError, WebsocketClosed
from sanic_ext import openapi
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from binance_client import errors as upstream

from .auth import Role, authenticate_token, bearer_token, require_role
from .clients import client_ip
from .errors import (
    ApiError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    WsClose,
    count_error,
    from_binance,
    render,
)
from .hub import Hub
from .ws_protocol import (
    Auth,
    Channel,
    EventId,
    Ping,
    Subscribe,
    Unsubscribe,
    authenticated,
    parse_channel,
    pong,
    subscribed,
    unsubscribed,
    welcome,
)
from .ws_session import Abuse, Close, Delivery, Refuse, Session

log = logging.getLogger("spotgate.ws")

WRITE_BATCH = 64  # frames joined into one write when a client is behind
HIGH_WATER = 65536  # Sanic pauses writes above this many buffered bytes
CLOSE_FLUSH_TIMEOUT = 5.0  # seconds the writer gets to send an error frame and the close
MAX_MESSAGE_BYTES = 64 * 1024

bp = Blueprint("ws")


class Connection:
    """One client socket: its reader and writer around its `Session`."""

    __slots__ = (
        "ws",
        "app",
        "hub",
        "settings",
        "request",
        "id",
        "session",
        "outbox",
        "ping_waiter",
        "replay_task",
        "_waiter",
        "_room",
    )

    def __init__(self, request: Request, ws):
        settings = request.app.ctx.settings
        self.ws = ws
        self.app = request.app
        self.hub: Hub = request.app.ctx.hub
        self.settings = settings
        self.request = request
        self.id = uuid.uuid4().hex[:16]
        self.session = Session(
            capacity=settings.ws_send_queue,
            message_rate=settings.ws_message_rate,
            max_subscriptions=settings.ws_max_subscriptions,
            max_depth=settings.ws_max_depth_channels,
        )
        self.outbox = self.session.outbox
        self.outbox.direct = self._write_now
        self.outbox.wake = self._wake
        self.ping_waiter = None
        self.replay_task: asyncio.Task | None = None
        self._waiter: asyncio.Future | None = None  # the writer, waiting for frames
        self._room: asyncio.Future | None = None  # a replay, waiting for room in the queue

    @property
    def principal(self):
        return self.session.principal

    @property
    def channels(self) -> set[str]:
        return self.session.channels

    # -- what the hub calls -----------------------------------------------------------------------------

    def _write_now(self, frame: bytes) -> bool:
        # Called by the hub for a client whose queue is empty and whose writer is idle.
        transport = self.ws.io_proto.transport if self.ws.io_proto else None
        if (
            transport is None
            or self.ws.ws_proto.state is not State.OPEN
            or transport.is_closing()
            or transport.get_write_buffer_size() >= HIGH_WATER
        ):
            return False
        transport.write(frame)
        return True

    def writable(self) -> bool:
        transport = self.ws.io_proto.transport if self.ws.io_proto else None
        return transport is not None and not transport.is_closing() and transport.get_write_buffer_size() < HIGH_WATER

    def send(self, message: dict) -> None:
        if self.session.send(message) == Delivery.CUT:
            self.hub.cut_slow(self)

    def send_error(self, exc: ApiError, channel: str | None = None) -> None:
        count_error(exc, "ws")
        if self.session.send_error(exc, channel) == Delivery.CUT:
            self.hub.cut_slow(self)

    def fail(self, exc: ApiError) -> None:
        """An error frame, then the close code it maps to (4401, 4403, 4429, ...)."""
        if self.outbox.closed:
            return
        count_error(exc, "ws")
        self.hub.detach(self)
        self.session.fail(exc)

    def cut(self, code: int, reason: str) -> None:
        """Close at once, dropping what is queued (the queue is what the client could not take)."""
        if self.outbox.closed and self.ws.ws_proto.state is not State.OPEN:
            return
        self.hub.detach(self)
        self.outbox.abandon()
        self._free_room()
        log.info("closing connection %s: %s", self.id, reason)
        self.ws.fail_connection(code, reason[:120])

    def replay(self, coro) -> None:
        """Run a user-event replay (app/hub_replay.py), replacing one still running."""
        if self.replay_task is not None:
            self.replay_task.cancel()
        self.replay_task = task = asyncio.create_task(coro)
        task.add_done_callback(self._replay_done)

    def _replay_done(self, task: asyncio.Task) -> None:
        if self.replay_task is task:
            self.replay_task = None
        if not task.cancelled() and task.exception() is not None:
            log.error("connection %s: user event replay failed", self.id, exc_info=task.exception())
            self.fail(
                Unavailable(
                    "User events are unavailable right now; reconnect with lastEventId", code="STREAM_UNAVAILABLE"
                )
            )

    def stop_replay(self) -> None:
        if self.replay_task is not None:
            self.replay_task.cancel()

    async def room(self) -> None:
        """Wait until one more frame fits (for producers that may wait, like a replay)."""
        while not self.outbox.has_room() and not self.outbox.closed:
            self._room = asyncio.get_running_loop().create_future()
            try:
                await self._room
            finally:
                self._room = None

    async def heartbeat(self) -> None:
        """A WebSocket ping; a connection whose previous ping is still unanswered is gone and is closed."""
        waiter = self.ping_waiter
        if waiter is not None and not waiter.done():
            self.cut(WsClose.INTERNAL, "No pong within the heartbeat interval")
            return
        if not self.writable():
            return  # backlogged: its queue says more than a ping would
        try:
            self.ping_waiter = await self.ws.ping()
        except (WebsocketClosed, ServerError, RequestCancelled, ConnectionError):
            pass  # closing under us: its handler is ending

    # -- the socket -------------------------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _free_room(self) -> None:
        room = self._room
        if room is not None and not room.done() and (self.outbox.has_room() or self.outbox.closed):
            room.set_result(None)

    async def _wait(self) -> None:
        if not len(self.outbox):
            self._waiter = asyncio.get_running_loop().create_future()
            self.outbox.idle = True
            try:
                await self._waiter
            finally:
                self.outbox.idle = False
                self._waiter = None

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
            self._free_room()

    async def _write(self) -> None:
        """Drain the outbox; a slow client blocks only here (Sanic's write buffer, then this queue)."""
        while await self._write_batch():
            pass

    async def _write_batch(self) -> bool:
        await self._wait()
        frames = []
        items = self.outbox.take(WRITE_BATCH)
        self._free_room()
        for item in items:
            if isinstance(item, Close):
                if frames:
                    await self._write_bytes(b"".join(frames))
                if item.code:
                    try:
                        await asyncio.wait_for(self.ws.close(item.code, item.reason), CLOSE_FLUSH_TIMEOUT)
                    except TimeoutError:
                        self.ws.fail_connection(item.code, item.reason)
                    # close() only sends the close frame; ending the handler now would close the TCP
                    # connection under a client still sending, and the reset would discard the error
                    # frame and the close it has not read yet. Wait for its close reply (the reader
                    # keeps reading meanwhile: _discard_until_closed).
                    if not await self.ws.wait_for_connection_lost(CLOSE_FLUSH_TIMEOUT):
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
            message = self.session.receive(raw)
            if isinstance(message, Abuse):
                self.fail(message.error)
                break
            try:
                if isinstance(message, Refuse):
                    self.send_error(message.error)
                elif isinstance(message, Subscribe):
                    await self._subscribe(message)
                elif isinstance(message, Unsubscribe):
                    self._unsubscribe(message)
                elif isinstance(message, Ping):
                    self.send(pong())
                elif isinstance(message, Auth):
                    await self._authenticate(message.token)
            except ApiError as exc:
                self.send_error(exc)
        await self._discard_until_closed()

    async def _discard_until_closed(self) -> None:
        """Closing: read and drop what the client still sends until the close handshake ends. Left
        unread, its frames pause Sanic's reading, the client's close reply goes unseen, the close
        times out and the kernel resets the connection — and a reset discards what the client had
        not read yet: the error frame and the close code that say why."""
        with contextlib.suppress(ConnectionClosed, WebsocketClosed):
            while True:
                await self.ws.recv()

    async def _open(self, presubscribe: list[str]) -> None:
        request = self.request
        query = request.args if request.query_string else {}  # parsed only when there is a query
        token = query.get("token")
        try:
            if token is None and "authorization" in request.headers:
                token = bearer_token(request)
            if token is not None:
                self.session.authenticated(await authenticate_token(self.app, token))
        except ApiError as exc:
            self.fail(exc)
            return
        public = self.settings.ws_public_market_data
        self.send(
            welcome(
                self.id,
                self.principal,
                public_market_data=public,
                heartbeat=self.settings.ws_heartbeat_interval,
                limits={
                    "subscriptions": self.settings.ws_max_subscriptions,
                    "messagesPerSecond": self.settings.ws_message_rate,
                    "sendQueue": self.settings.ws_send_queue,
                },
            )
        )
        if not presubscribe:
            if not public and self.principal is None:
                self.session.await_token()
            return
        raw_last = query.get("lastEventId")
        try:
            last_event_id = None if raw_last is None else EventId.parse(raw_last)
        except ApiError as exc:
            self.send_error(exc, presubscribe[0])
            return
        subscription = Subscribe(tuple(presubscribe), last_event_id)
        if self.principal is None and (presubscribe == ["user"] or not public):
            self.session.await_token(subscription)  # subscribed once an auth message arrives
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
        held = self.session.authenticated(principal)
        self.hub.authenticated(self)
        self.send(authenticated(principal))
        if held is not None:
            await self._subscribe(held)

    def _authorize(self, channel: Channel) -> None:
        if channel.private or not self.settings.ws_public_market_data:
            if self.principal is None:
                raise Unauthorized(
                    f'\'{channel.name}\' needs a token: send {{"type": "auth", "token": ...}}', code="TOKEN_MISSING"
                )
            require_role(self.principal, Role.VIEWER)

    async def _resolve(self, raw: object) -> Channel | ApiError:
        try:
            channel = parse_channel(raw)
            if channel.symbol is not None:
                try:
                    channel = channel.with_symbol(await self.app.ctx.market.symbol(channel.symbol))
                except upstream.BinanceError as exc:
                    raise from_binance(exc) from None
            self._authorize(channel)
        except ApiError as exc:
            return exc
        return channel

    async def _subscribe(self, message: Subscribe) -> None:
        resolved = [(raw, await self._resolve(raw)) for raw in message.channels]
        plan = self.session.plan_subscribe(
            resolved, lambda name: self.hub.follows_depth(self, name), self.hub.depth_room(self)
        )
        for exc, channel in plan.errors:
            self.send_error(exc, channel)
        accepted, new = plan.accepted, plan.new
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
        if any(c.kind == "user" for c in new):
            try:
                await self.hub.start_user_stream(self, message.last_event_id)
            except ApiError as exc:
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
        if "user" in present:
            self.stop_replay()
        self.hub.unregister(self, present)
        self.hub.release(present)
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
        return render(request, Unavailable("Maximum WebSocket connections reached", code="WS_CAPACITY", retry_after=5))
    if refusal == "reserved":
        return render(
            request,
            Unavailable(
                "The remaining WebSocket slots are kept for authenticated clients: "
                "send a token in the upgrade (?token= or Authorization)",
                code="WS_CAPACITY",
                retry_after=5,
            ),
        )
    if refusal == "address":
        return render(
            request,
            TooManyRequests(
                "Too many WebSocket connections without a token from this address",
                code="WS_ADDRESS_LIMIT",
                retry_after=5,
            ),
        )


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
