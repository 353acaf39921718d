"""Order books end to end: depth clients of the web process rebuild the paper exchange's books from a
snapshot and continuous diffs; when the exchange drops every stream connection, clients are told
(upstream_reconnecting, then upstream_restored), data flows again within 5 s, and the hole in the book
is announced by a fresh snapshot, never skipped."""

from __future__ import annotations

import time

import pytest

from .conftest import ClientBook, Inbox, System, assert_books_match

pytestmark = pytest.mark.integration

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "ETHBTC")
RECONNECTING, RESTORED = "upstream_reconnecting", "upstream_restored"


@pytest.fixture(scope="module")
def system(redis_url):
    # A diff goes out per stream-clock tick at most; the clock runs at 25 ms (not Binance's 100 ms) and
    # a 25 ms market step changes every book in every tick, so the four books give ~160 diffs a second.
    s = System(
        redis_url,
        seed=83,
        paper_env={"PAPER_STEP_MS": "25", "PAPER_WS_TICK_MS": "25"},
        relay_env={"STREAM_SYMBOLS": "none"},
    )
    yield s
    s.stop()


def test_a_snapshot_and_500_diffs_rebuild_the_exchanges_books(system):
    """BTCUSDT on the /ws/depth shortcut until it has 500 diffs (~13 s: one diff per 25 ms tick), the
    other three books multiplexed on one /ws meanwhile; then every book equals the exchange's."""
    books = {symbol: ClientBook(symbol) for symbol in SYMBOLS}
    inbox = Inbox()

    def feed(name, arrived, message):
        assert message["type"] in ("depth.snapshot", "depth.diff"), message
        symbol = message["channel"].removeprefix("depth:")
        assert (name == "shortcut") == (symbol == "BTCUSDT"), (name, message["channel"])
        books[symbol].feed(message)

    with system.connect("/ws/depth/btcusdt") as shortcut, system.connect() as multiplexed:
        shortcut.open(["depth:BTCUSDT"])
        multiplexed.next("welcome")
        multiplexed.send({"type": "subscribe", "channels": [f"depth:{s.lower()}" for s in SYMBOLS[1:]]})
        assert multiplexed.next("subscribed")["channels"] == [f"depth:{s}" for s in SYMBOLS[1:]]
        inbox.watch("shortcut", shortcut)
        inbox.watch("multiplexed", multiplexed)
        inbox.until(lambda: books["BTCUSDT"].diffs >= 500, 80, "500 BTCUSDT diffs", feed)

        for symbol, book in books.items():
            assert book.snapshots >= 1 and book.diffs >= 300, (symbol, book.snapshots, book.diffs)
            assert book.breaks == [], (symbol, book.breaks)
        assert_books_match(system.paper, inbox, books, feed)


def test_a_dropped_upstream_is_announced_and_data_flows_again_within_5_s(system):
    book = ClientBook("BTCUSDT")
    received: dict[str, list[tuple[float, dict]]] = {"ticker": [], "depth": []}
    inbox = Inbox()

    def feed(name, arrived, message):
        received[name].append((arrived, message))
        if name == "depth":
            book.feed(message)  # status messages leave the book alone

    def since(name: str, start: int) -> tuple[list[str], list[tuple[float, dict]]]:
        """States announced after `start`, and the data messages that followed upstream_restored."""
        states, data = [], []
        for arrived, message in received[name][start:]:
            if message["type"] == "status":
                states.append(message["data"]["state"])
            elif states[-1:] == [RESTORED]:
                data.append((arrived, message))
        return states, data

    with system.connect("/ws/ticker/btcusdt") as ticker, system.connect("/ws/depth/btcusdt") as depth:
        ticker.open(["ticker:BTCUSDT"])
        depth.open(["depth:BTCUSDT"])
        inbox.watch("ticker", ticker)
        inbox.watch("depth", depth)
        inbox.until(lambda: received["ticker"] and book.diffs >= 5, 10, "tickers and diffs flowing", feed)
        start = {name: len(messages) for name, messages in received.items()}
        snapshots = book.snapshots

        dropped = time.monotonic()
        assert system.fault(kind="drop")["connections"] >= 1

        def recovered() -> bool:
            ticker_data = since("ticker", start["ticker"])[1]
            depth_kinds = [m["type"] for _, m in since("depth", start["depth"])[1]]
            return bool(ticker_data) and "depth.snapshot" in depth_kinds and depth_kinds[-1] == "depth.diff"

        inbox.until(recovered, 5, "tickers and a rebuilt book after the drop", feed)
        for name in ("ticker", "depth"):
            states, data = since(name, start[name])
            assert states == [RECONNECTING, RESTORED], (name, states)
            assert data[0][0] - dropped < 5, name
        # The book was rebuilt: a fresh snapshot, and no diff ever failed to continue the one before.
        assert book.snapshots > snapshots and book.breaks == [], book.breaks
        assert_books_match(
            system.paper,
            inbox,
            {"BTCUSDT": book},
            lambda name, arrived, message: name == "depth" and book.feed(message),
        )
