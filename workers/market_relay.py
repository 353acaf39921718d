"""Market streams: upstream combined-stream connections following the demand, and what their
messages become in Redis (tickers, trades, klines, order books).

    MarketRelay   channels wanted → slots; every upstream message → the bus (one ChannelState each)
    Slot          one upstream connection's worth of channels (≤ STREAM_MAX_STREAMS streams), served
                  by one Link — two while it rotates — and one writer thread that sends
                  SUBSCRIBE/UNSUBSCRIBE for the difference between what is wanted and what was asked
                  (so changes batch up naturally while the writer waits for its send slot)
    DepthSnapshots  REST `GET /api/v3/depth` under the shared weight budget

Rotation (24 h cut, serverShutdown) is make-before-break: a successor connection subscribes to
everything, then replaces the old one. While both run, the same events arrive twice: trades are
deduplicated by id, depth events by the book's update ids; tickers and klines are states, so a repeat
changes nothing. A drop publishes `status: reconnecting` on the channels it served, and `restored`
once the reconnected link has confirmed their subscriptions; depth channels rebuild their book
(a new `depth.snapshot`).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from binance_client import BinanceClient, endpoints
from binance_client.budget import READ, WeightBudget
from binance_client.errors import BinanceError, RateLimitedError
from services.contract.channels import Channel, DataType, route
from services.metrics import metrics

from .channels import TickerState, kline, trade
from .order_book import OrderBook, Outcome
from .stream_bus import StreamBus, now_ms
from .upstream_ws import Backoff, Link, Rotating

log = logging.getLogger("spotgate.stream.market")
NAMES_PER_MESSAGE = 200  # streams in one SUBSCRIBE (a full connection is restored in 6 messages)
REJECTED_RETRY = 60.0  # a stream Binance refused is asked for again after this long
SNAPSHOT_RETRY_MAX = 5.0


# -- REST snapshots ---------------------------------------------------------------------------------


class DepthSnapshots:
    def __init__(self, client: BinanceClient, budget: WeightBudget, limit: int):
        self.client, self.budget, self.limit = client, budget, limit

    def fetch(self, symbol: str) -> dict:
        request = endpoints.depth(symbol, self.limit)
        self.budget.spend(request.weight, READ)  # market data: never from the share kept for orders
        try:
            response = self.client.send(request)
        except RateLimitedError as exc:
            self.budget.pause(exc.retry_after or 1, exc.http_status)
            raise
        self.budget.observe(response.rate_limits.used_weight_1m)
        return response.data


# -- per-channel state ------------------------------------------------------------------------------


@dataclass(eq=False)
class ChannelState:
    channel: Channel
    lock: threading.Lock = field(default_factory=threading.Lock)
    ticker: TickerState | None = None
    last_trade: int = -1
    book: OrderBook | None = None
    generation: int = 0  # bumped whenever the book is thrown away: late snapshots are ignored
    fetching: bool = False
    closed: bool = False

    def __post_init__(self):
        if self.channel.kind == "ticker":
            self.ticker = TickerState(self.channel.symbol)
        elif self.channel.kind == "depth":
            self.book = OrderBook(self.channel.symbol)

    def lose_book(self) -> None:
        """Forget the book (its connection dropped): the next event starts the procedure again."""
        with self.lock:
            if self.book is not None:
                self.book.reset()
                self.generation += 1
                self.fetching = False


@dataclass
class Subscriptions:
    """What one connection of a slot has asked for, and what upstream has confirmed."""

    requested: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    pending: dict[int, tuple[str, list[str]]] = field(default_factory=dict)


# -- one upstream connection's worth of channels ----------------------------------------------------


class Slot(Rotating):
    def __init__(self, relay: MarketRelay, index: int):
        self.relay = relay
        self.index = index
        self.channels: dict[str, Channel] = {}
        self.streams: set[str] = set()
        self.subs: dict[Link, Subscriptions] = {}
        self.interrupted: set[str] = set()  # channels told `reconnecting`, not yet `restored`
        self.rejected: dict[str, float] = {}
        self.wake = threading.Event()
        super().__init__(f"market-{index}", log)
        self._writer = threading.Thread(target=self._write_loop, name=f"market-{index}-writer", daemon=True)

    def start(self) -> None:
        self.active.start()
        self._writer.start()

    def stop(self) -> list[Link]:
        links = super().stop()
        self.wake.set()
        return links

    def _link(self) -> Link:
        settings = self.relay.settings
        return Link(
            f"market-{self.index}.{next(self.relay.link_ids)}",
            self.relay.url,
            on_open=self._on_open,
            on_message=self._on_message,
            on_close=self._on_close,
            backoff=Backoff(settings.stream_reconnect_base, settings.stream_reconnect_max),
        )

    # -- channels (main thread) ----------------------------------------------------------------------

    def room(self) -> int:
        return self.relay.settings.stream_max_streams - len(self.streams)

    def add(self, channel: Channel) -> None:
        with self.lock:
            self.channels[channel.name] = channel
            self.streams.update(channel.streams)
        self.wake.set()

    def remove(self, name: str) -> None:
        with self.lock:
            channel = self.channels.pop(name, None)
            if channel is not None:
                self.streams.difference_update(channel.streams)
                self.interrupted.discard(name)
        self.wake.set()

    def due_for_rotation(self, max_age: float) -> bool:
        with self.lock:
            return self.successor is None and self.active.is_open and self.active.age() >= max_age

    # -- link callbacks (link threads) ---------------------------------------------------------------

    def _on_open(self, link: Link) -> None:
        with self.lock:
            self.subs[link] = Subscriptions()
        self.wake.set()

    def _on_message(self, link: Link, message) -> None:
        if not isinstance(message, dict):
            return
        stream = message.get("stream")
        if stream is not None:
            if stream == "!serverShutdown":
                self.rotate("serverShutdown")
            else:
                self.relay.on_data(stream, message.get("data"))
        elif "id" in message and ("result" in message or "error" in message):
            self._on_reply(link, message)
        elif message.get("e") == "serverShutdown":
            self.rotate("serverShutdown")

    def _on_reply(self, link: Link, reply: dict) -> None:
        restored: list[str] = []
        with self.lock:
            subs = self.subs.get(link)
            sent = subs.pending.pop(reply["id"], None) if subs is not None else None
            if sent is None:
                return
            method, names = sent
            if "error" in reply:
                log.error("market-%d: %s %s refused: %s", self.index, method, names[:5], reply["error"])
                if method == "SUBSCRIBE":
                    subs.requested.difference_update(names)
                    retry_at = time.monotonic() + REJECTED_RETRY
                    self.rejected.update((name, retry_at) for name in names)
                return
            if method == "SUBSCRIBE":
                subs.acked.update(names)
                link.healthy()
            if link is self.successor and self.streams <= subs.acked:
                self._promote()
            if link is self.active and self.interrupted:
                restored = [c for c in self.interrupted if set(self.channels[c].streams) <= subs.acked]
                self.interrupted.difference_update(restored)
        if restored:
            log.info("market-%d: restored %d channels", self.index, len(restored))
            self.relay.bus.status(restored, "restored")

    def _promote(self) -> None:
        """The successor has every subscription: it takes over."""
        self.subs.pop(self.promote(), None)

    def _on_close(self, link: Link, planned: bool) -> None:
        lost: list[str] = []
        with self.lock:
            self.subs.pop(link, None)
            if planned or self.closed:
                return
            if link is self.successor:
                return  # it reconnects by itself; the active connection still serves
            if link is not self.active:
                return
            if self.successor is not None:
                self._promote()  # already on its way: no point reconnecting the old one
            acked = self.subs.get(self.active, Subscriptions()).acked
            lost = [
                name
                for name, c in self.channels.items()
                if name not in self.interrupted and not set(c.streams) <= acked
            ]
            self.interrupted.update(lost)
        if lost:
            log.warning("market-%d: upstream lost, %d channels reconnecting", self.index, len(lost))
            self.relay.channels_lost(lost)

    # -- the writer ------------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while not self.closed:
            self.wake.wait(1.0)
            self.wake.clear()
            for link in (self.active, self.successor):
                if link is not None and link.is_open and not self.closed:
                    self._sync(link)

    def _sync(self, link: Link) -> None:
        """Send what makes `link`'s subscriptions equal the slot's streams."""
        with self.lock:
            subs = self.subs.get(link)
            if subs is None:
                return
            now = time.monotonic()
            self.rejected = {n: t for n, t in self.rejected.items() if t > now}
            removes = sorted(subs.requested - self.streams)
            adds = sorted(self.streams - subs.requested - set(self.rejected))
        for method, names in (("UNSUBSCRIBE", removes), ("SUBSCRIBE", adds)):
            for start in range(0, len(names), NAMES_PER_MESSAGE):
                chunk = names[start : start + NAMES_PER_MESSAGE]
                request_id = next(self.relay.request_ids)
                with self.lock:
                    if self.subs.get(link) is not subs:
                        return  # reconnected meanwhile: the next pass starts from scratch
                    subs.pending[request_id] = (method, chunk)
                    if method == "SUBSCRIBE":
                        subs.requested.update(chunk)
                    else:
                        subs.requested.difference_update(chunk)
                        subs.acked.difference_update(chunk)
                if not link.send({"method": method, "params": chunk, "id": request_id}):
                    return

    def describe(self) -> dict:
        with self.lock:
            subs = self.subs.get(self.active)
            return {
                "index": self.index,
                "channels": len(self.channels),
                "streams": len(self.streams),
                "subscribed": len(subs.acked) if subs else 0,
                "open": self.active.is_open,
                "ageSeconds": round(self.active.age(), 1),
                "rotating": self.successor is not None,
            }


# -- the relay --------------------------------------------------------------------------------------


class MarketRelay:
    def __init__(self, settings, bus: StreamBus, snapshots: DepthSnapshots):
        self.settings = settings
        self.bus = bus
        self.snapshots = snapshots
        self.url = lambda: f"{settings.binance_stream_url}/stream"
        self.slots: list[Slot] = []
        self.assignment: dict[str, Slot] = {}
        self.states: dict[str, ChannelState] = {}
        self.lock = threading.Lock()
        self.link_ids = itertools.count(1)
        self.request_ids = itertools.count(1)
        self.slot_ids = itertools.count(1)
        self.fetcher = ThreadPoolExecutor(max_workers=4, thread_name_prefix="depth-snapshot")
        self.stopped = threading.Event()
        m = metrics()
        self._seen = {
            kind: (m.stream_messages.labels(kind), m.stream_lag.labels(kind))
            for kind in ("ticker", "bookTicker", "trade", "kline", "depth")
        }
        self._resyncs = m.stream_resyncs

    # -- demand (main thread) ----------------------------------------------------------------------

    def set_demand(self, wanted: dict[str, Channel]) -> None:
        """Subscribe what is newly wanted, unsubscribe what is no longer."""
        with self.lock:
            for name in [n for n in self.assignment if n not in wanted]:
                slot = self.assignment.pop(name)
                slot.remove(name)
                state = self.states.pop(name)
                with state.lock:
                    state.closed = True
                if state.book is not None:
                    self.bus.forget_book(state.channel.symbol)
                log.info("unsubscribing %s (no demand)", name)
            for name, channel in wanted.items():
                if name in self.assignment:
                    continue
                self.states[name] = ChannelState(channel)
                slot = next((s for s in self.slots if s.room() >= len(channel.streams)), None)
                if slot is None:
                    slot = Slot(self, next(self.slot_ids))
                    self.slots.append(slot)
                    slot.start()
                slot.add(channel)
                self.assignment[name] = slot
                log.info("subscribing %s", name)
            for slot in [s for s in self.slots if not s.channels]:
                self.slots.remove(slot)
                slot.stop()

    def tick(self) -> None:
        """Periodic upkeep: rotate connections before Binance's 24 h cut."""
        for slot in list(self.slots):
            if slot.due_for_rotation(self.settings.stream_rotate_after):
                slot.rotate("lifetime")

    def stop(self) -> None:
        self.stopped.set()
        with self.lock:
            slots, self.slots = self.slots, []
        for slot in slots:
            slot.stop()
        for slot in slots:
            for link in (slot.active, slot.successor):
                if link is not None:
                    link.join(2)
        self.fetcher.shutdown(wait=False, cancel_futures=True)

    def describe(self) -> list[dict]:
        return [slot.describe() for slot in list(self.slots)]

    # -- upstream events (link threads) -------------------------------------------------------------

    def channels_lost(self, names: list[str]) -> None:
        self.bus.status(names, "reconnecting")
        for name in names:
            state = self.states.get(name)
            if state is not None:
                state.lose_book()

    def on_data(self, stream: str, data) -> None:
        routed = route(stream)
        if routed is None or not isinstance(data, dict):
            return
        name, kind = routed
        messages, lag = self._seen[kind]
        messages.inc()
        event_time = data.get("E")
        if isinstance(event_time, int):
            lag.observe(max(0, now_ms() - event_time) / 1000)
        state = self.states.get(name)
        if state is None:
            return  # no longer wanted; its UNSUBSCRIBE is on the way
        if kind == "depth":
            self._depth(state, data)
            return
        with state.lock:
            if state.closed:
                return
            if state.ticker is not None:
                ticker = state.ticker.update(kind, data, now_ms())
                if ticker is not None:
                    self.bus.ticker(state.channel.symbol, ticker)
            elif kind == "trade":
                if data["t"] > state.last_trade:
                    state.last_trade = data["t"]
                    self.bus.publish(name, DataType.TRADE, trade(data))
            elif kind == "kline":
                self.bus.publish(name, DataType.KLINE, kline(data))

    def _depth(self, state: ChannelState, event: dict) -> None:
        with state.lock:
            if state.closed:
                return
            before = state.book.update_id
            result = state.book.on_event(event)
            if result.outcome is Outcome.APPLIED:
                self.bus.depth_diff(state.channel.symbol, result.diff, state.book.top())
            elif result.outcome is Outcome.LOST:
                log.warning("%s: depth gap (U=%s after u=%s): resyncing", state.channel.name, event.get("U"), before)
                self._resyncs.inc()
                state.generation += 1
                state.fetching = False
            if not state.book.synced and not state.fetching:
                state.fetching = True
                self.fetcher.submit(self._sync_book, state, state.generation)

    def _sync_book(self, state: ChannelState, generation: int) -> None:
        """Steps 3-7 of the procedure: snapshots until one fits the buffered events."""
        symbol, delay = state.channel.symbol, 0.1
        while not self.stopped.is_set():
            try:
                snapshot = self.snapshots.fetch(symbol)
            except BinanceError as exc:
                log.warning("%s: depth snapshot failed: %s", state.channel.name, exc)
                self.stopped.wait(max(delay, exc.retry_after or 0))
                delay = min(SNAPSHOT_RETRY_MAX, delay * 2)
                with state.lock:
                    if state.closed or state.generation != generation:
                        return
                continue
            with state.lock:
                if state.closed or state.generation != generation:
                    return  # the book was thrown away meanwhile; whoever did so fetches anew
                result = state.book.load(snapshot)
                if result.outcome is Outcome.SYNCED:
                    state.fetching = False
                    self.bus.depth_snapshot(symbol, state.book.top())
                    log.info("%s: book synced at %s", state.channel.name, state.book.update_id)
                    return
                if result.outcome is Outcome.NEED_SNAPSHOT:
                    state.fetching = False  # nothing buffered: the next event starts over
                    return
                # STALE (the snapshot predates the events) or LOST (a gap among them): fetch again
                if result.outcome is Outcome.LOST:
                    state.generation += 1
                    generation = state.generation
            self.stopped.wait(0.05)
