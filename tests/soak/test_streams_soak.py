"""Streams soak: the paper exchange drops every upstream stream connection, breaks the depth
sequence and sends serverShutdown, over and over, while many WebSocket clients of the web process
follow tickers and order books.

At the end: every client is still connected and has had data since the last event (none stuck), no
depth client ever saw a diff that does not continue its book without a fresh snapshot first (0
undetected gaps), and every depth client's book equals the exchange's. Short form in `make test`
(10 events, 30 clients); long form in `make soak` (100 events, 300 clients).
"""

from __future__ import annotations

import itertools
import time

import pytest

from tests.e2e.conftest import ClientBook, Inbox, System
from tests.soak.support import scan_logs

DEPTH_SYMBOLS = ("BTCUSDT", "ETHUSDT")
EVENTS = (
    {"kind": "drop", "target": "streams"},
    {"kind": "depth_gap", "symbol": "*"},
    {"kind": "shutdown", "target": "streams", "disconnect_after": 1.0},
)


def run(redis_url: str, events: int, clients: int, spacing_s: float) -> None:
    system = System(
        redis_url,
        seed=91,
        paper_env={"PAPER_STEP_MS": "100"},
        relay_env={"STREAM_SYMBOLS": "none"},
        # every client connects from 127.0.0.1: the per-IP cap (100 by default) is lifted with the total
        web_env={"MAX_WS_CONNECTIONS": str(clients + 50), "WS_MAX_CONNECTIONS_PER_IP": str(clients + 50)},
    )
    sockets = []
    try:
        inbox = Inbox()
        books: dict[str, ClientBook] = {}
        last_data: dict[str, float] = {}
        for n in range(clients):
            symbol = DEPTH_SYMBOLS[n % 2]
            if n % 3 == 2:
                name, path, channel = f"ticker-{n}", "/ws/ticker/btcusdt", "ticker:BTCUSDT"
            else:
                name, path, channel = f"depth-{n}", f"/ws/depth/{symbol.lower()}", f"depth:{symbol}"
                books[name] = ClientBook(symbol)
            client = system.connect(path)
            client.open([channel])
            sockets.append((name, client))
            inbox.watch(name, client)

        def feed(name, arrived, message):
            if message["type"] in ("ticker", "depth.snapshot", "depth.diff"):
                last_data[name] = arrived
            if name in books:
                books[name].feed(message)  # status messages leave the book alone

        def drain(seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while (item := inbox.next(deadline - time.monotonic())) is not None:
                feed(*item)

        inbox.until(lambda: len(last_data) == clients, 30, "data on every client", feed)
        fired = []
        for event in itertools.islice(itertools.cycle(EVENTS), events):
            fired.append(system.fault(**event)["kind"])
            drain(spacing_s)
        last_event = time.monotonic()
        inbox.until(
            lambda: all(last_data[name] > last_event for name, _ in sockets),
            30,
            "data on every client after the last event",
            feed,
        )

        closed = [name for name, client in sockets if client.ws.close_code is not None]
        assert not closed, f"clients closed: {closed[:10]}"
        breaks = {name: book.breaks for name, book in books.items() if book.breaks}
        assert not breaks, f"undetected gaps: {breaks}"
        assert all(book.snapshots >= 2 for book in books.values())  # each event's resync reached them
        assert_every_book_matches(system, inbox, books, feed)
        scan_logs(web=system.web, worker=system.worker, relay=system.relay)
    finally:
        for _, client in sockets:
            client.ws.close()
        system.stop()


def assert_every_book_matches(system: System, inbox: Inbox, books: dict[str, ClientBook], feed) -> None:
    """The market paused, every client book caught up with the exchange's update id and equal to
    the exchange's book at every price the client can know."""
    system.paper.pause()
    try:
        exchange = {s: system.paper.get("/_paper/book", symbol=s).json() for s in DEPTH_SYMBOLS}
        inbox.until(
            lambda: all(
                b.update_id is not None and b.update_id >= exchange[b.symbol]["lastUpdateId"] for b in books.values()
            ),
            15,
            "client books catching up",
            feed,
        )
        for name, book in books.items():
            assert book.update_id == exchange[book.symbol]["lastUpdateId"], name
            bids, asks = book.known(exchange[book.symbol])
            assert (book.bids, book.asks) == (bids, asks), name
            assert len(bids) >= 10 and len(asks) >= 10, (name, len(bids), len(asks))
    finally:
        system.paper.resume()


@pytest.mark.timeout(120)
def test_streams_soak_short_10_upstream_faults_30_clients(redis_url):
    run(redis_url, events=10, clients=30, spacing_s=1.5)


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_streams_soak_100_upstream_faults_300_clients(redis_url):
    run(redis_url, events=100, clients=300, spacing_s=1.5)
