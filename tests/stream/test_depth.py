"""Order books through the relay, as a web process sees them on `P md:depth:<SYM>`: a snapshot, then
continuous diffs; applied in order they rebuild the paper exchange's own book exactly. A sequence
gap upstream is answered with a new snapshot — subscribers never see a silent hole."""

from __future__ import annotations

import time
from decimal import Decimal

import orjson
import pytest

from services.contract.keys import Keys
from tests.processes import PaperProcess

from .conftest import demand

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "ETHBTC")


@pytest.fixture(scope="module")
def paper():
    # a step and a diff every 25 ms (the stream clock four times Binance's 100 ms): 500 diffs in seconds
    px = PaperProcess(seed=67, PAPER_STEP_MS="25", PAPER_WS_TICK_MS="25")
    yield px
    px.stop()


class Follower:
    """A web process's view of one symbol: snapshot, then diffs with U = previous u + 1."""

    def __init__(self):
        self.update_id: int | None = None
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.snapshots = 0
        self.diffs = 0
        self.gaps: list[tuple[int, int]] = []  # (expected U, got U): must stay empty

    def feed(self, message: dict) -> None:
        data = message["data"]
        if message["type"] == "depth.snapshot":
            self.snapshots += 1
            self.update_id = data["lastUpdateId"]
            self.bids = {Decimal(p): Decimal(q) for p, q in data["bids"]}
            self.asks = {Decimal(p): Decimal(q) for p, q in data["asks"]}
        elif message["type"] == "depth.diff":
            assert self.update_id is not None, "a diff before any snapshot"
            if data["U"] != self.update_id + 1:
                self.gaps.append((self.update_id + 1, data["U"]))
            for side, levels in ((self.bids, data["bids"]), (self.asks, data["asks"])):
                for price, qty in levels:
                    if Decimal(qty) == 0:
                        side.pop(Decimal(price), None)
                    else:
                        side[Decimal(price)] = Decimal(qty)
            self.update_id = data["u"]
            self.diffs += 1

    def matches(self, book: dict) -> bool:
        return (
            self.update_id == book["lastUpdateId"]
            and self.bids == {Decimal(p): Decimal(q) for p, q in book["bids"]}
            and self.asks == {Decimal(p): Decimal(q) for p, q in book["asks"]}
        )


def follow(sub, followers: dict[str, Follower], until, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        item = sub.next(deadline - time.monotonic())
        if item is None:
            raise AssertionError(f"{what}: not within {timeout} s")
        _, channel, message = item
        if channel.startswith("depth:"):
            followers[channel[6:]].feed(message)


def converge(paper, sub, followers: dict[str, Follower], symbols) -> None:
    """Pause the market, then follow until every book is at the exchange's update id and equal."""
    paper.pause()
    try:
        books = {s: paper.get("/_paper/book", symbol=s).json() for s in symbols}
        follow(
            sub,
            followers,
            lambda: all(
                followers[s].update_id is not None and followers[s].update_id >= books[s]["lastUpdateId"]
                for s in symbols
            ),
            5,
            "books catching up with the exchange",
        )
        for symbol in symbols:
            assert followers[symbol].matches(books[symbol]), symbol
    finally:
        paper.resume()


def test_snapshot_and_500_diffs_rebuild_the_exchanges_book(paper, make_relay, make_subscriber, redis_client):
    relay = make_relay(paper, STREAM_SYMBOLS="none")
    sub = make_subscriber(relay.prefix, "md:depth:*")
    followers = {s: Follower() for s in SYMBOLS}
    for symbol in SYMBOLS:
        demand(redis_client, relay.prefix, f"depth:{symbol}")
    follow(sub, followers, lambda: sum(f.diffs for f in followers.values()) >= 500, 40, "500 diffs")

    assert all(f.snapshots == 1 for f in followers.values())
    assert all(f.gaps == [] for f in followers.values())
    converge(paper, sub, followers, SYMBOLS)
    # the book a newly arriving client starts from (P book:<SYM>) is the top 20 of the same book
    stored = orjson.loads(redis_client.get(Keys(relay.prefix).book("BTCUSDT")))
    exchange = paper.get("/_paper/book", symbol="BTCUSDT").json()
    assert stored["lastUpdateId"] <= exchange["lastUpdateId"]
    assert len(stored["bids"]) <= 20 and stored["bids"] == sorted(stored["bids"], key=lambda level: -Decimal(level[0]))


def test_a_depth_gap_is_answered_with_a_new_snapshot(paper, make_relay, make_subscriber, redis_client):
    relay = make_relay(paper, STREAM_SYMBOLS="none")
    sub = make_subscriber(relay.prefix, "md:depth:*")
    followers = {s: Follower() for s in ("BTCUSDT", "ETHUSDT")}
    for symbol in followers:
        demand(redis_client, relay.prefix, f"depth:{symbol}")
    follow(sub, followers, lambda: all(f.diffs >= 10 for f in followers.values()), 15, "first diffs")

    assert paper.admin("POST", "streams/faults", {"kind": "depth_gap", "symbol": "BTCUSDT"}).status_code == 201
    btc = followers["BTCUSDT"]
    follow(sub, followers, lambda: btc.snapshots == 2 and btc.diffs >= 30, 10, "a new BTCUSDT snapshot")
    # nothing published between the two snapshots skipped an update; the other book never blinked
    assert btc.gaps == [] and followers["ETHUSDT"].gaps == [] and followers["ETHUSDT"].snapshots == 1
    assert "depth gap" in relay.log_text()
    converge(paper, sub, followers, followers)
