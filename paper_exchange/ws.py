"""WebSocket adapters of the paper exchange: market streams (`/ws`, `/stream`), the WebSocket API
(`/ws-api/v3`) with user data subscriptions, legacy listen-key streams, and the admin routes for
stream faults and deposits.

One `StreamHub` per app holds every connection and subscription. It learns about the market by
reading the core: the engine's `listeners` (every order state change, so trades and the best
levels are flushed right after each engine call), `book.take_diff()` on a 100 ms clock (PAPER_WS_TICK_MS), and the
trade history. Each payload is rendered once (streams.py, user_stream.py), framed once, and the
same bytes go to every subscriber through the subscriber's own bounded queue, drained by its own
writer task: a slow client only ever delays (and eventually disconnects) itself.

    Connection      one socket: subscriptions, send queue, writer, incoming-message budget
    StreamHub       subscriptions, fan-out, the market clock, user events, faults
    setup_streams   registers the routes and starts the clock with the server
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote

import orjson
from sanic import Request, Sanic
from sanic.response import HTTPResponse, raw
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from . import streams, user_stream, wire
from .engine import OrderEvent
from .errors import BinanceError
from .keys import ED25519
from .streams import ControlError, StreamConfig
from .user_stream import RequestError

log = logging.getLogger("paper_exchange.ws")
SEND_BUFFER_BYTES = 128 * 1024  # kernel send buffer per WebSocket (Linux doubles it)
TREASURY = "paper-treasury"  # where deposits come from and withdrawals go, so totals stay constant
ASSET_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def now_ms() -> int:
    return int(time.time() * 1000)


def json_response(body, status: int = 200) -> HTTPResponse:
    return raw(orjson.dumps(body), status=status, content_type="application/json")


def text_frame(payload: bytes) -> bytes:
    """A complete server-to-client WebSocket text frame (RFC 6455: FIN, unmasked)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65_536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


class _Close:
    """A queued instruction: close the socket once everything before it has been written."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str):
        self.code, self.reason = code, reason


# -- one connection ---------------------------------------------------------------------------------


class Connection:
    """One WebSocket: what it subscribed to, and a bounded queue of ready-made frames."""

    _ids = itertools.count(1)

    def __init__(self, hub: StreamHub, ws, request: Request, kind: str, combined: bool = False):
        self.id = next(self._ids)
        self.hub = hub
        self.ws = ws
        self.kind = kind  # "stream" (market and listen-key streams) or "api"
        self.path = request.path
        self.ip = request.ip or "127.0.0.1"
        self.combined = combined
        self.opened = time.monotonic()
        self.streams: dict[str, None] = {}  # subscription order, for LIST_SUBSCRIPTIONS
        self.subscriptions: dict[int, str] = {}  # WS-API: subscriptionId -> account
        self.next_subscription_id = 0
        # WS-API session (session.logon): the Ed25519 key it is logged on with, and the subscription
        # userDataStream.subscribe made for it (session.logout ends that one only)
        self.session_key = None
        self.authorized_since: int | None = None
        self.logon_subscription: int | None = None
        self.connected_since = now_ms()
        self.default_limits = True
        self.queue: deque = deque()  # (enqueued at, frame bytes or _Close)
        self.wakeup = asyncio.Event()
        self.sent = 0
        self.drop_after: int | None = None  # fault: abort after this many more messages
        self.incoming: deque[float] = deque()
        self.closed = False
        self._cap_kernel_buffer()

    def _cap_kernel_buffer(self) -> None:
        """Linux grows a socket's send buffer to megabytes for a client that stops reading; a
        fixed modest one bounds memory per connection and makes the bounded queue (not the
        kernel) the place where a slow client shows, within seconds."""
        transport = getattr(self.ws.io_proto, "transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            except OSError:
                pass

    # -- sending ------------------------------------------------------------------------------

    def offer(self, frame, at: float) -> None:
        if self.closed:
            return
        if len(self.queue) >= self.hub.config.send_queue:
            # The client does not read fast enough: cut it off rather than buffer without bound
            # or hold up everyone else. Its socket buffers are full, so a close frame could not
            # get through either: the TCP connection is aborted.
            self.drop()
            return
        self.queue.append((at, frame))
        if not self.wakeup.is_set():
            self.wakeup.set()

    def send_json(self, body) -> None:
        self.offer(text_frame(orjson.dumps(body)), time.monotonic())

    def finish(self, code: int = 1000, reason: str = "") -> None:
        """Close after the messages already queued have gone out."""
        if not self.closed:
            self.queue.append((time.monotonic(), _Close(code, reason)))
            self.wakeup.set()

    def fail(self, code: int, reason: str) -> None:
        """Close at once with a close frame (policy violations), dropping what is queued."""
        if self.closed:
            return
        self.closed = True
        self.queue.clear()
        self.ws.fail_connection(code, reason)

    def drop(self) -> None:
        """Cut the TCP connection without a close frame (fault: a network drop)."""
        if self.closed:
            return
        self.closed = True
        self.queue.clear()
        transport = getattr(self.ws.io_proto, "transport", None)
        if transport is not None:
            transport.abort()
        self.wakeup.set()

    async def write_loop(self) -> None:
        queue, io = self.queue, self.ws.io_proto
        while not self.closed:
            if not queue:
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            delay = self.hub.delay_s
            now = time.monotonic()
            if delay and queue[0][0] + delay > now:
                await asyncio.sleep(queue[0][0] + delay - now)
                continue
            batch, close = [], None
            while queue and len(batch) < 512:
                at, frame = queue[0]
                if delay and at + delay > now:
                    break
                queue.popleft()
                if isinstance(frame, _Close):
                    close = frame
                    break
                batch.append(frame)
                if self.drop_after is not None and self.sent + len(batch) >= self.drop_after:
                    break
            if batch:
                if self.ws.ws_proto.state is not State.OPEN:
                    return
                try:
                    await io.send(b"".join(batch) if len(batch) > 1 else batch[0])
                except Exception:  # the transport went away under us
                    return
                self.sent += len(batch)
            if self.drop_after is not None and self.sent >= self.drop_after:
                self.drop()
                return
            if close is not None:
                self.closed = True
                try:
                    await self.ws.close(close.code, close.reason)
                except Exception:
                    pass
                return

    # -- receiving ----------------------------------------------------------------------------

    def within_budget(self) -> bool:
        """Count one incoming message (PING, PONG or JSON); past 5 a second Binance disconnects."""
        now = time.monotonic()
        incoming = self.incoming
        incoming.append(now)
        while incoming and incoming[0] <= now - 1.0:
            incoming.popleft()
        if len(incoming) > streams.MAX_INCOMING_PER_SECOND:
            self.fail(1008, "Too many messages")
            return False
        return True

    def count_control_frames(self) -> None:
        """Sanic answers PINGs and consumes PONGs itself; wrap its frame handler so those frames
        count against the incoming-message budget too, as on Binance."""
        original = self.ws.process_events

        async def process_events(events):
            for event in events:
                if isinstance(event, Frame) and event.opcode in (Opcode.PING, Opcode.PONG):
                    if not self.within_budget():
                        return
            await original(events)

        self.ws.process_events = process_events

    def describe(self) -> dict:
        return {
            "id": self.id,
            "path": self.path,
            "kind": self.kind,
            "combined": self.combined,
            "streams": list(self.streams),
            "subscriptions": sorted(self.subscriptions),
            "loggedOn": self.session_key.key if self.session_key else None,
            "queued": len(self.queue),
            "sent": self.sent,
            "age_s": round(time.monotonic() - self.opened, 3),
        }


# -- the hub ----------------------------------------------------------------------------------------


class StreamHub:
    def __init__(self, px, config: StreamConfig):
        self.px = px
        self.config = config
        self.exchange = px.exchange
        self.user_account = px.api_keys[px.config.api_key].account
        self.connections: set[Connection] = set()
        self.market: dict[str, set[Connection]] = {}
        self.listen: dict[str, set[Connection]] = {}  # listen key -> connections
        self.listen_owner: dict[str, str] = {}  # listen key -> account
        self.listen_expiry: dict[str, int] = {}  # listen key -> last known expiry (ms)
        self.api: dict[str, dict[Connection, int]] = {}  # account -> connection -> subscriptionId
        self.watched: dict[str, int] = {}  # account -> number of subscriptions
        self.balances = user_stream.BalanceWatch()
        self.pending: dict[str, list] = {}  # account -> [(report, canceled order)]
        self.execution_ids = itertools.count(1)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._flush_scheduled = False
        symbols = list(self.exchange.markets)
        self.names = {s: streams.stream_symbol(s) for s in symbols}
        self.depth = {s: streams.DepthDiffs() for s in symbols}
        self.last_trade: dict[str, int] = {}
        self.last_agg: dict[str, int] = {}
        self.best: dict[str, tuple] = {}
        self.kline_open: dict[str, int] = {}  # kline stream -> open time last sent
        # faults
        self.delay_s = 0.0
        self.stalls: dict[str, float] = {}  # stream name or "*" -> until (monotonic)
        self.gaps: set[str] = set()  # symbols (or "*") whose next diff is withheld
        self.published = 0

    # -- connections and subscriptions ----------------------------------------------------------

    def add(self, conn: Connection) -> None:
        self.connections.add(conn)

    def remove(self, conn: Connection) -> None:
        conn.closed = True
        self.connections.discard(conn)
        self.unsubscribe(conn, list(conn.streams))
        for sub_id in list(conn.subscriptions):
            self.end_subscription(conn, sub_id, notify=False)

    def live_listen_key(self, name: str, now: int) -> str | None:
        entry = self.px.listen_keys.get(name)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def check_names(self, names: list[str], now: int, request_id=None) -> None:
        for name in names:
            if streams.parse_stream(name) is None and self.live_listen_key(name, now) is None:
                raise ControlError(2, "Invalid request: invalid stream", request_id)

    def subscribe(self, conn: Connection, names: list[str], now: int, request_id=None) -> None:
        self.check_names(names, now, request_id)
        if len(set(conn.streams) | set(names)) > streams.MAX_STREAMS:
            raise ControlError(
                2,
                f"Invalid request: too many streams; a connection can listen to at most {streams.MAX_STREAMS} streams",
                request_id,
            )
        for name in names:
            if name in conn.streams:
                continue
            conn.streams[name] = None
            account = None if streams.parse_stream(name) else self.live_listen_key(name, now)
            if account is None:
                self.market.setdefault(name, set()).add(conn)
            else:
                self.listen.setdefault(name, set()).add(conn)
                self.listen_owner[name] = account
                self.listen_expiry[name] = self.px.listen_keys[name][1]
                self._watch(account)

    def unsubscribe(self, conn: Connection, names: list[str]) -> None:
        for name in names:
            if conn.streams.pop(name, False) is not False:
                for table in (self.market, self.listen):
                    subs = table.get(name)
                    if subs is not None and conn in subs:
                        subs.discard(conn)
                        if not subs:
                            del table[name]
                            self.kline_open.pop(name, None)
                            if table is self.listen:
                                self._unwatch(self.listen_owner.pop(name))
                                self.listen_expiry.pop(name, None)

    def start_subscription(self, conn: Connection, account: str) -> int:
        if account in conn.subscriptions.values():
            raise BinanceError(-2035, "User Data Stream subscription already active.")
        if (
            len(conn.subscriptions) >= user_stream.MAX_ACTIVE_SUBSCRIPTIONS
            or conn.next_subscription_id >= user_stream.MAX_SUBSCRIPTION_IDS
        ):
            raise BinanceError(-2042, "Maximum subscription ID reached for this connection.")
        sub_id = conn.next_subscription_id
        conn.next_subscription_id += 1
        conn.subscriptions[sub_id] = account
        self.api.setdefault(account, {})[conn] = sub_id
        self._watch(account)
        return sub_id

    def end_subscription(self, conn: Connection, sub_id: int, notify: bool = True) -> None:
        account = conn.subscriptions.pop(sub_id)
        if conn.logon_subscription == sub_id:
            conn.logon_subscription = None
        subs = self.api.get(account, {})
        subs.pop(conn, None)
        if not subs:
            self.api.pop(account, None)
        self._unwatch(account)
        if notify:
            conn.send_json({"subscriptionId": sub_id, "event": user_stream.event_stream_terminated(now_ms())})

    def _watch(self, account: str) -> None:
        self.watched[account] = self.watched.get(account, 0) + 1
        self.balances.watch(self.exchange.accounts[account])

    def _unwatch(self, account: str) -> None:
        left = self.watched.get(account, 0) - 1
        if left > 0:
            self.watched[account] = left
        else:
            self.watched.pop(account, None)
            self.balances.forget(account)
            self.pending.pop(account, None)

    # -- fan-out --------------------------------------------------------------------------------

    def stalled(self, name: str) -> bool:
        if not self.stalls:
            return False
        now = time.monotonic()
        for key in (name, "*"):
            until = self.stalls.get(key)
            if until is not None:
                if until > now:
                    return True
                del self.stalls[key]
        return False

    def publish(self, name: str, payload: dict) -> None:
        """Send one market event to every subscriber of `name`: rendered and framed once."""
        subs = self.market.get(name)
        if not subs or self.stalled(name):
            return
        data = orjson.dumps(payload)
        plain = wrapped = None
        at = time.monotonic()
        self.published += 1
        for conn in tuple(subs):
            if conn.combined:
                if wrapped is None:
                    wrapped = text_frame(b'{"stream":"' + name.encode() + b'","data":' + data + b"}")
                conn.offer(wrapped, at)
            else:
                if plain is None:
                    plain = text_frame(data)
                conn.offer(plain, at)

    def publish_user(self, account: str, event: dict) -> None:
        """One user data event to the account's listen-key streams and WS-API subscriptions."""
        if self.stalled("*"):
            return
        data = orjson.dumps(event)
        at = time.monotonic()
        plain = None
        for key, owner in self.listen_owner.items():
            if owner != account or self.stalled(key):
                continue
            for conn in tuple(self.listen.get(key, ())):
                if conn.combined:
                    conn.offer(text_frame(b'{"stream":"' + key.encode() + b'","data":' + data + b"}"), at)
                else:
                    if plain is None:
                        plain = text_frame(data)
                    conn.offer(plain, at)
        for conn, sub_id in tuple(self.api.get(account, {}).items()):
            conn.offer(text_frame(b'{"subscriptionId":' + str(sub_id).encode() + b',"event":' + data + b"}"), at)

    # -- the core's order events (user data, trades, best levels) ------------------------------

    def on_order_event(self, event: OrderEvent) -> None:
        """Engine listener: runs inside the engine call, so it only records; `flush` sends once
        the call has finished (balances, cancel ids and aggregated trades are final by then)."""
        execution_id = next(self.execution_ids)
        account = event.order.account.name
        if account in self.watched:
            report = user_stream.execution_report(event, execution_id, now_ms())
            canceled = event.order if event.execution == "CANCELED" else None
            self.pending.setdefault(account, []).append((report, canceled))
        if not self._flush_scheduled and self.loop is not None:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        now = now_ms()
        for symbol, market in self.exchange.markets.items():
            self._flush_trades(symbol, market, now)
            name = self.names[symbol] + "@bookTicker"
            if name in self.market:
                best = streams.best_levels(market.book)
                if best != self.best.get(symbol):
                    self.best[symbol] = best
                    self.publish(name, streams.book_ticker(symbol, market.book.update_id, best))
            else:
                self.best.pop(symbol, None)
        pending, self.pending = self.pending, {}
        for account_name, reports in pending.items():
            account = self.exchange.accounts[account_name]
            for report, canceled in reports:
                if canceled is not None:
                    user_stream.complete_cancel(report, canceled)
                self.publish_user(account_name, report)
            self._publish_position(account, now)

    def _publish_position(self, account, now: int) -> None:
        changed = self.balances.changed(account)
        if changed:
            self.publish_user(account.name, user_stream.account_position(account, changed, now))

    def _flush_trades(self, symbol: str, market, now: int) -> None:
        history = market.history
        newest, newest_agg = history.next_trade_id - 1, history.next_agg_id - 1
        last, last_agg = self.last_trade.get(symbol), self.last_agg.get(symbol)
        self.last_trade[symbol], self.last_agg[symbol] = newest, newest_agg
        lower = self.names[symbol]
        if last is not None and newest > last and lower + "@trade" in self.market:
            for t in _since(history.trades, last):
                self.publish(lower + "@trade", streams.trade(symbol, t, now))
        if last_agg is not None and newest_agg > last_agg and lower + "@aggTrade" in self.market:
            for a in _since(history.agg_trades, last_agg):
                self.publish(lower + "@aggTrade", streams.agg_trade(symbol, a, now))

    # -- the clock: depth every tick (100 ms), tickers every second, klines every 1 or 2 s -----

    async def clock(self) -> None:
        loop = asyncio.get_running_loop()
        tick, next_at, period = 0, loop.time(), self.config.tick_ms / 1000
        while True:
            next_at += period
            delay = next_at - loop.time()
            if delay < -1.0:  # the loop was blocked: skip ahead instead of bursting
                next_at, delay = loop.time(), 0
            await asyncio.sleep(max(0.0, delay))
            tick += 1
            try:
                self.on_tick(tick, now_ms())
            except Exception:  # a bug here must not stop every stream
                log.exception("stream clock tick failed")

    def on_tick(self, tick: int, now: int) -> None:
        per_second = max(1, round(1000 / self.config.tick_ms))  # 10 ticks a second at Binance's 100 ms
        second = tick % per_second == 0
        for symbol, market in self.exchange.markets.items():
            self._depth_tick(symbol, market, now, second)
        if second:
            self._second_tick(now, with_klines=tick % (2 * per_second) == 0)

    def _depth_tick(self, symbol: str, market, now: int, second: bool) -> None:
        lower = self.names[symbol]
        fast, slow = lower + "@depth@100ms", lower + "@depth"
        diffs = self.depth[symbol]
        diff = market.book.take_diff()
        if diff is not None:
            if symbol in self.gaps:
                self.gaps.discard(symbol)
                diffs.discard()  # the gap shows on @depth too
            else:
                if fast in self.market:
                    self.publish(fast, streams.depth_update(symbol, diff, now))
                if slow in self.market:
                    diffs.add(diff)
        if second:
            merged = diffs.take()
            if merged is not None and slow in self.market:
                self.publish(slow, streams.depth_update(symbol, merged, now))
        for levels in streams.PARTIAL_LEVELS:
            for name in (
                (f"{lower}@depth{levels}@100ms", f"{lower}@depth{levels}")
                if second
                else (f"{lower}@depth{levels}@100ms",)
            ):
                if name in self.market:
                    self.publish(name, streams.partial_depth(market.book, levels))

    def _second_tick(self, now: int, with_klines: bool) -> None:
        for symbol, market in self.exchange.markets.items():
            lower = self.names[symbol]
            mini, full = lower + "@miniTicker", lower + "@ticker"
            if mini in self.market or full in self.market:
                stats = wire.ticker_24hr(market, now, full=True)
                if mini in self.market:
                    self.publish(mini, streams.mini_ticker(stats, now))
                if full in self.market:
                    self.publish(full, streams.ticker(stats, now))
        for name in [n for n in self.market if "@kline_" in n]:
            stream = streams.parse_stream(name)
            if stream.symbol in self.exchange.markets and (with_klines or stream.interval == "1s"):
                self._kline(stream, now)
        self._expire_listen_keys(now)

    def _kline(self, stream: streams.Stream, now: int) -> None:
        market = self.exchange.markets[stream.symbol]
        start, end = streams.kline_bounds(stream.interval, now)
        previous = self.kline_open.get(stream.name)
        if previous is not None and previous != start:
            # the candle we were updating has closed: its final state, with x = true
            p_start, p_end = streams.kline_bounds(stream.interval, previous)
            self._send_kline(stream, market, p_start, p_end, closed=True, now=now)
        self.kline_open[stream.name] = start
        self._send_kline(stream, market, start, end, closed=False, now=now)

    def _send_kline(self, stream, market, start: int, end: int, closed: bool, now: int) -> None:
        candle = streams.current_candle(market.history, stream.interval, start, now)
        if candle is None:
            before = market.history.last
            candle = streams.empty_candle(start, before.price if before else market.spec.start_price)
        self.publish(stream.name, streams.kline(stream.symbol, stream.interval, candle, end, closed, now))

    def _expire_listen_keys(self, now: int) -> None:
        for key in list(self.listen):
            entry = self.px.listen_keys.get(key)
            if entry is not None and entry[1] > now:
                self.listen_expiry[key] = entry[1]
                continue
            expired = (entry is not None) or self.listen_expiry.get(key, 0) <= now
            conns = list(self.listen.get(key, ()))
            if expired:
                event = user_stream.listen_key_expired(key, now)
                for conn in conns:
                    conn.send_json({"stream": key, "data": event} if conn.combined else event)
            for conn in conns:
                self.unsubscribe(conn, [key])
                conn.finish(1000, "listenKey expired" if expired else "listenKey closed")

    # -- deposits ------------------------------------------------------------------------------

    def deposit(self, asset: str, amount: Decimal) -> dict:
        """Move `amount` of `asset` from the treasury account to the paper user (negative: back),
        so the exchange's totals stay constant; emits balanceUpdate + outboundAccountPosition."""
        user = self.exchange.accounts[self.user_account]
        held = user.balances.get(asset)
        if (held.free if held else 0) + amount < 0:
            raise ValueError(f"insufficient free {asset}: {wire.fmt(held.free if held else None)}")
        balance = user.balance(asset)
        treasury = self.exchange.accounts.get(TREASURY) or self.exchange.add_account(TREASURY, {})
        now = now_ms()
        treasury.balance(asset).free -= amount
        balance.free += amount
        user.update_time = now
        if user.name in self.watched:
            self.publish_user(user.name, user_stream.balance_update(asset, amount, now))
            self._publish_position(user, now)
        return {"asset": asset, "free": wire.fmt(balance.free), "locked": wire.fmt(balance.locked)}

    # -- faults --------------------------------------------------------------------------------

    def targets(self, target: str) -> list[Connection]:
        return [
            c
            for c in self.connections
            if target == "all"
            or (target == "streams" and c.kind == "stream")
            or (target == "ws-api" and c.kind == "api")
        ]

    def server_shutdown(self, target: str, disconnect_after: float | None) -> int:
        now = now_ms()
        event = user_stream.server_shutdown(now)
        conns = self.targets(target)
        for conn in conns:
            if conn.kind == "api":
                conn.send_json({"event": event})
            else:
                conn.send_json({"stream": "!serverShutdown", "data": event} if conn.combined else event)
        if disconnect_after is not None and self.loop is not None:

            def close_all():
                for conn in conns:
                    conn.finish(1001, "Server shutdown")

            self.loop.call_later(disconnect_after, close_all)
        return len(conns)

    def fault_state(self) -> dict:
        now = time.monotonic()
        return {
            "delay_ms": round(self.delay_s * 1000),
            "stalls": {k: round(v - now, 3) for k, v in self.stalls.items() if v > now},
            "depth_gaps": sorted(self.gaps),
        }


def _since(rows: deque, last_id: int) -> list:
    """Rows of a history deque with an id above `last_id`, oldest first (read from the new end)."""
    fresh = []
    for row in reversed(rows):
        if row.id <= last_id:
            break
        fresh.append(row)
    fresh.reverse()
    return fresh


# -- socket handlers --------------------------------------------------------------------------------


async def _serve(hub: StreamHub, conn: Connection, reader) -> None:
    """Run a connection's reader and writer until either ends or its lifetime is up."""
    hub.add(conn)
    tasks = {asyncio.ensure_future(conn.write_loop()), asyncio.ensure_future(reader)}
    try:
        done, _ = await asyncio.wait(tasks, timeout=hub.config.max_lifetime, return_when=asyncio.FIRST_COMPLETED)
        if not done:  # Binance's 24 h cut, after what is already queued
            conn.finish(1000, "Connection lifetime exceeded")
            await asyncio.wait(tasks, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hub.remove(conn)
        for task in tasks:
            task.cancel()


async def _read(conn: Connection, handle: Callable[[object], bool | None]) -> None:
    """Each message `conn`'s client sends, to `handle`, until the client goes away or `handle`
    answers False (to close for too many messages)."""
    while True:
        try:
            message = await conn.ws.recv()
        except Exception:
            return
        if message is None or conn.closed:
            continue
        if handle(message) is False:
            return


def _market_message(hub: StreamHub, conn: Connection, message) -> bool:
    if not conn.within_budget():
        return False
    try:
        control = streams.parse_control(message)
        conn.send_json(_apply_control(hub, conn, control))
    except ControlError as exc:
        conn.send_json(exc.reply())
    return True


def _apply_control(hub: StreamHub, conn: Connection, control: streams.Control) -> dict:
    method, params, request_id = control.method, control.params, control.id
    if method == "SUBSCRIBE":
        hub.subscribe(conn, params, now_ms(), request_id)
        return streams.result(None, request_id)
    if method == "UNSUBSCRIBE":
        hub.unsubscribe(conn, params)
        return streams.result(None, request_id)
    if method == "LIST_SUBSCRIPTIONS":
        return streams.result(list(conn.streams), request_id)
    if method == "SET_PROPERTY":
        conn.combined = params[1]
        return streams.result(None, request_id)
    return streams.result(conn.combined, request_id)  # GET_PROPERTY


async def _open_streams(hub: StreamHub, request: Request, ws, names: list[str], combined: bool) -> None:
    """A market stream connection, subscribed to the streams its URL names. Binance keeps a
    connection open whatever its path says (`/ws/0`, an index some clients use; `/stream` with no
    streams): what is not a stream is ignored, and SUBSCRIBE works as on any connection."""
    conn = Connection(hub, ws, request, "stream", combined)
    now = now_ms()
    wanted = []
    for name in dict.fromkeys(unquote(n) for n in names if n):
        try:
            hub.check_names([name], now)
        except ControlError:
            continue
        wanted.append(name)
    try:
        hub.subscribe(conn, wanted[: streams.MAX_STREAMS], now)
    except ControlError as exc:  # cannot happen for checked names, but a refusal must not pass silently
        await ws.close(1008, exc.msg[:120])
        return
    conn.count_control_frames()
    await _serve(hub, conn, _read(conn, lambda message: _market_message(hub, conn, message)))


def _api_request(hub: StreamHub, conn: Connection, message, default_limits: bool) -> None:
    px, now = hub.px, now_ms()
    try:
        request = user_stream.parse_request(message)
    except RequestError as exc:
        conn.send_json(user_stream.error_response(exc.request_id, exc.error, None))
        return
    params = request.params
    show = params.get("returnRateLimits", default_limits)
    limits = None
    after = []
    try:
        if not isinstance(show, bool):
            raise BinanceError(-1130, "Data sent for parameter 'returnRateLimits' is not valid.")
        weight = user_stream.WEIGHTS.get(request.method, 1)
        used = px.limits.charge_weight(conn.ip, weight, now)
        limits = user_stream.weight_limits(px.limits.weight_limit, used) if show else None
        result = _api_method(hub, conn, request, now, after)
        conn.send_json(user_stream.response(request.id, result, limits))
    except BinanceError as exc:
        if limits is None and show:
            limits = user_stream.weight_limits(px.limits.weight_limit, px.limits.used_weight(conn.ip, now))
        conn.send_json(user_stream.error_response(request.id, exc, limits))
    for action in after:
        action()


def _api_method(hub: StreamHub, conn: Connection, request, now: int, after: list):
    method, params = request.method, request.params
    if method == "ping":
        user_stream.check_unread(params, {"returnRateLimits"})
        return {}
    if method == "time":
        user_stream.check_unread(params, {"returnRateLimits"})
        return {"serverTime": now}
    if method == "userDataStream.subscribe.signature":
        api_key = user_stream.verify_signed_request(params, hub.px.api_keys, now)
        return {"subscriptionId": hub.start_subscription(conn, api_key.account)}
    if method == "session.logon":
        api_key = user_stream.verify_signed_request(params, hub.px.api_keys, now)
        if api_key.kind != ED25519:
            # web-socket-api.md: "Only Ed25519 keys are supported for this feature" (no code given)
            raise BinanceError(-1002, "You are not authorized to execute this request.", 401)
        conn.session_key, conn.authorized_since = api_key, now
        return _session(conn, now)
    if method == "session.status":
        user_stream.check_unread(params, {"returnRateLimits"})
        return _session(conn, now)
    if method == "session.logout":
        user_stream.check_unread(params, {"returnRateLimits"})
        # only the logon's own subscription ends (then its eventStreamTerminated), not the signed ones
        ending = conn.logon_subscription
        conn.session_key = conn.authorized_since = None
        if ending is not None:
            after.append(lambda: hub.end_subscription(conn, ending) if ending in conn.subscriptions else None)
        return _session(conn, now, without=ending)
    if method == "userDataStream.subscribe":
        user_stream.check_unread(params, {"returnRateLimits"})
        if conn.session_key is None:
            raise BinanceError(-1002, "You are not authorized to execute this request.", 401)
        sub_id = hub.start_subscription(conn, conn.session_key.account)
        conn.logon_subscription = sub_id
        return {"subscriptionId": sub_id}
    if method == "userDataStream.unsubscribe":
        user_stream.check_unread(params, {"subscriptionId", "returnRateLimits"})
        wanted = params.get("subscriptionId")
        if wanted is not None:
            if isinstance(wanted, bool) or not isinstance(wanted, int):
                raise BinanceError(-1130, "Data sent for parameter 'subscriptionId' is not valid.")
            if wanted not in conn.subscriptions:
                raise BinanceError(-2036, "User Data Stream subscription not active.")
            ids = [wanted]
        else:
            ids = sorted(conn.subscriptions)
        # the reply first, then each subscription's eventStreamTerminated
        after.extend(lambda sub_id=sub_id: hub.end_subscription(conn, sub_id) for sub_id in ids)
        return {}
    if method == "session.subscriptions":
        user_stream.check_unread(params, {"returnRateLimits"})
        return [{"subscriptionId": sub_id} for sub_id in sorted(conn.subscriptions)]
    raise user_stream.unknown_method()


def _session(conn: Connection, now: int, without: int | None = None) -> dict:
    key = conn.session_key
    return user_stream.session_status(
        key.key if key else None,
        conn.authorized_since,
        conn.connected_since,
        conn.default_limits,
        now,
        any(sub_id != without for sub_id in conn.subscriptions),
    )


async def _open_api(hub: StreamHub, request: Request, ws) -> None:
    conn = Connection(hub, ws, request, "api")
    try:
        hub.px.limits.charge_weight(conn.ip, user_stream.CONNECT_WEIGHT, now_ms())
    except BinanceError as exc:
        await ws.close(1008, exc.msg[:120])
        return
    default_limits = request.args.get("returnRateLimits", "true").lower() != "false"
    conn.default_limits = default_limits
    await _serve(hub, conn, _read(conn, lambda message: _api_request(hub, conn, message, default_limits)))


# -- admin routes -----------------------------------------------------------------------------------


def _body(request: Request) -> dict:
    body = orjson.loads(request.body or b"{}")
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


def _seconds(body: dict, name: str, default=None, low: float = 0.0, high: float = 86_400.0):
    value = body.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{name} must be a number between {low:g} and {high:g}")
    return float(value)


def _stream_fault(hub: StreamHub, body: dict) -> dict:
    kind = body.get("kind")
    target = body.get("target", "all")
    if target not in ("all", "streams", "ws-api"):
        raise ValueError("target must be 'all', 'streams' or 'ws-api'")
    if kind == "drop":
        conns = hub.targets(target)
        for conn in conns:
            conn.drop()
        return {"kind": kind, "connections": len(conns)}
    if kind == "drop_after":
        count = body.get("messages")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("messages must be a positive integer")
        conns = hub.targets(target)
        for conn in conns:
            conn.drop_after = conn.sent + count
        return {"kind": kind, "messages": count, "connections": len(conns)}
    if kind == "stall":
        seconds = _seconds(body, "seconds", low=0.001)
        if seconds is None:
            raise ValueError("seconds is required")
        stream = body.get("stream", "*")
        if not isinstance(stream, str) or not stream:
            raise ValueError("stream must be a stream name (or omitted for every stream)")
        hub.stalls[stream] = time.monotonic() + seconds
        return {"kind": kind, "stream": stream, "seconds": seconds}
    if kind == "delay":
        ms = _seconds(body, "ms", high=600_000)
        if ms is None:
            raise ValueError("ms is required (0 removes the delay)")
        hub.delay_s = ms / 1000
        return {"kind": kind, "ms": ms}
    if kind == "depth_gap":
        symbol = body.get("symbol", "*")
        if symbol != "*" and symbol not in hub.exchange.markets:
            raise ValueError("unknown symbol")
        hub.gaps.update(hub.exchange.markets if symbol == "*" else (symbol,))
        return {"kind": kind, "symbol": symbol}
    if kind == "shutdown":
        after = _seconds(body, "disconnect_after", default=5.0)
        return {"kind": kind, "connections": hub.server_shutdown(target, after), "disconnect_after": after}
    raise ValueError("kind must be one of drop, drop_after, stall, delay, depth_gap, shutdown")


def _admin_routes(app: Sanic, hub: StreamHub) -> None:
    @app.get("/_paper/streams")
    async def stream_status(request: Request):
        return json_response(
            {
                "connections": [c.describe() for c in sorted(hub.connections, key=lambda c: c.id)],
                "faults": hub.fault_state(),
                "published": hub.published,
            }
        )

    @app.route("/_paper/streams/faults", methods=["GET", "POST", "DELETE"])
    async def stream_faults(request: Request):
        if request.method == "POST":
            try:
                return json_response(_stream_fault(hub, _body(request)), status=201)
            except (ValueError, orjson.JSONDecodeError) as exc:
                return json_response({"error": str(exc)}, status=400)
        if request.method == "DELETE":
            hub.delay_s = 0.0
            hub.stalls.clear()
            hub.gaps.clear()
            for conn in hub.connections:
                conn.drop_after = None
        return json_response(hub.fault_state())

    @app.post("/_paper/deposit")
    async def deposit(request: Request):
        """{"asset": "USDT", "amount": "100"}; a negative amount withdraws."""
        try:
            body = _body(request)
            asset, amount = body.get("asset"), body.get("amount")
            if not isinstance(asset, str) or not 0 < len(asset) <= 20 or not set(asset) <= ASSET_CHARS:
                raise ValueError("asset must be an upper-case asset name, e.g. USDT")
            if isinstance(amount, bool) or not isinstance(amount, (str, int, float)):
                raise ValueError("amount must be a decimal number (string preferred)")
            value = Decimal(str(amount))
            if not value.is_finite() or value == 0 or value.as_tuple().exponent < -8:  # type: ignore[operator]
                raise ValueError("amount must be non-zero with at most 8 decimals")
            return json_response(hub.deposit(asset, value))
        except (ValueError, InvalidOperation, orjson.JSONDecodeError) as exc:
            return json_response({"error": str(exc) or "invalid amount"}, status=400)


# -- wiring -----------------------------------------------------------------------------------------


def setup_streams(app: Sanic, px, config: StreamConfig | None = None) -> StreamHub:
    """Market streams, the WebSocket API and their admin routes on the paper exchange's app."""
    config = config or StreamConfig.from_env()
    hub = StreamHub(px, config)
    app.ctx.streams = hub
    # websockets logs every closed socket at INFO: thousands of lines under load, none useful.
    logging.getLogger("sanic.websockets").setLevel(logging.WARNING)
    # Sanic's keepalive is Binance's: a ping every interval, disconnect when a pong is overdue.
    app.config.WEBSOCKET_PING_INTERVAL = config.ping_seconds
    app.config.WEBSOCKET_PING_TIMEOUT = config.pong_timeout
    px.exchange.listeners.append(hub.on_order_event)

    async def raw_streams(request: Request, ws, names: str = ""):
        await _open_streams(hub, request, ws, names.split("/"), combined=False)

    async def combined_streams(request: Request, ws):
        await _open_streams(hub, request, ws, (request.args.get("streams") or "").split("/"), combined=True)

    async def ws_api(request: Request, ws):
        await _open_api(hub, request, ws)

    app.add_websocket_route(raw_streams, "/ws", name="paper_ws")
    app.add_websocket_route(raw_streams, "/ws/<names:path>", name="paper_ws_streams")
    app.add_websocket_route(combined_streams, "/stream", name="paper_stream")
    app.add_websocket_route(ws_api, "/ws-api/v3", name="paper_ws_api")
    _admin_routes(app, hub)

    @app.before_server_start
    async def start_streams(app_: Sanic):
        hub.loop = asyncio.get_running_loop()
        app_.add_task(hub.clock(), name="paper-streams")

    return hub
