"""The whole system for end-to-end tests: a paper exchange, a Celery worker (embedded beat), the stream
relay and the web process on one Redis key prefix, and WebSocket clients that talk to the web process
only — nothing stands in for a part of the stack, and nothing reads Redis where a client could look."""

from __future__ import annotations

import queue
import threading
import time
from decimal import Decimal

import orjson
import redis
from websockets.exceptions import ConnectionClosed

from services.contract.keys import Keys
from tests.processes import PaperProcess, RelayProcess, WebProcess, WorkerProcess
from tests.support import Deadline, delete_prefix, new_prefix
from tests.ws.support import Client

TOP_LEVELS = 20  # levels per side in a depth.snapshot (README "Order books")


class System:
    """One deployment of spotgate against its own paper exchange. Every process it starts is stopped
    and its key prefix deleted by `stop()`, also when starting it failed halfway."""

    def __init__(
        self,
        redis_url: str,
        *,
        seed: int,
        paper_env: dict | None = None,
        worker_env: dict | None = None,
        relay_env: dict | None = None,
        web_env: dict | None = None,
        redis_options: dict | None = None,
    ):
        self.redis_url = redis_url
        self.prefix = new_prefix()
        # the test's own client (redis_options: e.g. the CA file of a TLS Redis)
        self.redis = redis.Redis.from_url(redis_url, **(redis_options or {}))
        self.paper: PaperProcess | None = None
        self.worker: WorkerProcess | None = None
        self.relay: RelayProcess | None = None
        self.webs: list[WebProcess] = []
        try:
            self.paper = PaperProcess(seed=seed, **(paper_env or {}))
            self.worker = WorkerProcess(self.paper.url, redis_url, self.prefix, **(worker_env or {}))
            self.web = self.start_web(**(web_env or {}))
            if relay_env is not None:
                self.start_relay(**relay_env)
        except BaseException:
            self.stop()
            raise

    # -- processes ------------------------------------------------------------------------------------

    def start_web(self, **env: str) -> WebProcess:
        """Another web process on the same prefix (as a second dyno would be): stopped by `stop()`."""
        web = WebProcess(self.paper.url, self.redis_url, self.prefix, **env)
        self.webs.append(web)
        return web

    def start_relay(self, **env: str) -> RelayProcess:
        # One relay per prefix at a time: two would publish every message twice.
        assert self.relay is None, "a relay is already running"
        self.redis.delete(Keys(self.prefix).stream_status)  # a previous relay's report must not count
        self.relay = RelayProcess(self.paper, self.redis_url, self.prefix, **env)
        return self.relay

    def stop_relay(self) -> None:
        if self.relay is not None:
            self.relay.stop()
            self.relay = None

    def user_stream_ready(self) -> bool:
        """The relay's own report (stream:status): only an operator can see this, so it is polled."""
        raw = self.redis.get(Keys(self.prefix).stream_status)
        return bool(raw) and orjson.loads(raw)["user"]["subscribed"]

    def stop(self) -> None:
        # Relay and web processes first (they write the prefix until they stop), the exchange last;
        # one that fails to stop must not leave the others running.
        failures = []
        for part in [self.relay, *self.webs, self.worker, self.paper]:
            try:
                if part is not None:
                    part.discard()  # the prefix is deleted next: nothing is looked at any more
            except Exception as exc:  # noqa: BLE001 (reported below, after everything is stopped)
                failures.append(exc)
        self.relay = None
        delete_prefix(self.redis, self.prefix)
        self.redis.close()
        if failures:
            raise failures[0]

    # -- what a user does -----------------------------------------------------------------------------

    def connect(self, path: str = "/ws", web: WebProcess | None = None, **options) -> Client:
        return Client(f"ws://127.0.0.1:{(web or self.web).port}{path}", **options)

    def fault(self, **body) -> dict:
        """A stream fault on the paper exchange (POST /_paper/streams/faults)."""
        response = self.paper.admin("POST", "streams/faults", body)
        assert response.status_code == 201, response.text
        return response.json()

    def place_limit(self, symbol: str = "BTCUSDT") -> dict:
        """A BUY LIMIT well under the market (it rests, it never fills) through REST, as a trader."""
        bid = Decimal(self.paper.get("/api/v3/ticker/bookTicker", symbol=symbol).json()["bidPrice"])
        answer = self.web.http.post(
            self.web.url + "/api/v1/order",
            timeout=30,
            json={
                "symbol": symbol,
                "side": "BUY",
                "type": "LIMIT",
                "quantity": "0.001",
                "price": str((bid * Decimal("0.9")).quantize(Decimal("0.01"))),
            },
            headers={"Authorization": f"Bearer {self.web.token('trader')}"},
        )
        assert answer.status_code == 201, answer.text
        order = answer.json()["data"]
        assert order["status"] == "NEW", order
        return order

    def cancel(self, order: dict) -> None:
        answer = self.web.http.delete(
            self.web.url + "/api/v1/order",
            timeout=30,
            params={"symbol": order["symbol"], "orderId": order["orderId"]},
            headers={"Authorization": f"Bearer {self.web.token('trader')}"},
        )
        assert answer.status_code == 200, answer.text


class Inbox:
    """Messages from several WebSocket clients in arrival order: one reader thread per client, so no
    socket goes unread (and gets cut as slow) while the test waits on another."""

    def __init__(self):
        self.messages: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []

    def watch(self, name: str, client: Client) -> None:
        def read():
            try:
                while True:
                    self.messages.put((name, time.monotonic(), orjson.loads(client.ws.recv())))
            except ConnectionClosed:
                pass

        thread = threading.Thread(target=read, name=f"inbox-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def next(self, timeout: float):
        """(client name, arrived at, message), or None after `timeout`."""
        try:
            return self.messages.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def until(self, done, timeout: float, what: str, feed=None) -> None:
        """Hand every message to `feed(name, arrived, message)` until `done()`; fails after `timeout`."""
        deadline = Deadline(timeout)
        while not done():
            item = self.next(deadline.left())
            if item is None:
                raise AssertionError(f"{what}: not within {timeout} s")
            if feed is not None:
                feed(*item)


class ClientBook:
    """A depth client's book, kept as README "Order books" tells clients to: replace it on every
    `depth.snapshot`; apply each `depth.diff`, the first after a snapshot having U <= lastUpdateId + 1
    <= u, each next one U = previous u + 1. A diff that does not continue the book is recorded in
    `breaks` (a gap the server did not announce with a snapshot).

    A snapshot holds the top 20 levels a side, so the client knows the exchange's book exactly at the
    prices from its best level down to the snapshot's 20th, plus every price a later diff set (diffs
    carry absolute quantities); `known()` cuts the exchange's full book to exactly that."""

    def __init__(self, symbol: str):
        self.symbol = symbol
        self.update_id: int | None = None
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.snapshots = 0
        self.diffs = 0
        self.breaks: list[tuple[int, int, int]] = []  # (book's u, diff's U, diff's u)
        self._fresh = False
        self._bid_floor: Decimal | None = None  # None: the snapshot held the whole side
        self._ask_ceiling: Decimal | None = None
        self._touched_bids: set[Decimal] = set()
        self._touched_asks: set[Decimal] = set()

    def feed(self, message: dict) -> None:
        data = message["data"]
        if message["type"] == "depth.snapshot":
            self.snapshots += 1
            self.update_id = data["lastUpdateId"]
            self.bids = {Decimal(p): Decimal(q) for p, q in data["bids"]}
            self.asks = {Decimal(p): Decimal(q) for p, q in data["asks"]}
            self._bid_floor = min(self.bids) if len(self.bids) >= TOP_LEVELS else None
            self._ask_ceiling = max(self.asks) if len(self.asks) >= TOP_LEVELS else None
            self._touched_bids, self._touched_asks = set(), set()
            self._fresh = True
        elif message["type"] == "depth.diff":
            assert self.update_id is not None, f"a {self.symbol} diff before any snapshot: {data}"
            first, final = data["U"], data["u"]
            continues = (first <= self.update_id + 1 <= final) if self._fresh else first == self.update_id + 1
            if not continues:
                self.breaks.append((self.update_id, first, final))
            for side, touched, levels in (
                (self.bids, self._touched_bids, data["bids"]),
                (self.asks, self._touched_asks, data["asks"]),
            ):
                for price, qty in levels:
                    touched.add(Decimal(price))
                    if Decimal(qty) == 0:
                        side.pop(Decimal(price), None)
                    else:
                        side[Decimal(price)] = Decimal(qty)
            self.update_id = final
            self.diffs += 1
            self._fresh = False

    def known(self, book: dict) -> tuple[dict, dict]:
        """The exchange's full book (GET /_paper/book) at the prices this client can know."""
        bids = {Decimal(p): Decimal(q) for p, q in book["bids"]}
        asks = {Decimal(p): Decimal(q) for p, q in book["asks"]}
        return (
            {
                p: q
                for p, q in bids.items()
                if self._bid_floor is None or p >= self._bid_floor or p in self._touched_bids
            },
            {
                p: q
                for p, q in asks.items()
                if self._ask_ceiling is None or p <= self._ask_ceiling or p in self._touched_asks
            },
        )


def assert_books_match(paper: PaperProcess, inbox: Inbox, books: dict[str, ClientBook], feed) -> None:
    """Pause the market, let every client book catch up with the exchange's update id, and compare:
    equal update ids, the exchange's book at every price the client can know, the same best bid and
    best ask, and more than a handful of levels compared a side."""
    paper.pause()
    try:
        exchange = {s: paper.get("/_paper/book", symbol=s).json() for s in books}
        inbox.until(
            lambda: all(
                b.update_id is not None and b.update_id >= exchange[s]["lastUpdateId"] for s, b in books.items()
            ),
            5,
            "client books catching up with the exchange",
            feed,
        )
        for symbol, book in books.items():
            assert book.update_id == exchange[symbol]["lastUpdateId"], symbol
            bids, asks = book.known(exchange[symbol])
            assert book.bids == bids and book.asks == asks, symbol
            assert max(book.bids) == max(Decimal(p) for p, _ in exchange[symbol]["bids"]), symbol
            assert min(book.asks) == min(Decimal(p) for p, _ in exchange[symbol]["asks"]), symbol
            assert len(bids) >= 10 and len(asks) >= 10, (symbol, len(bids), len(asks))
    finally:
        paper.resume()
