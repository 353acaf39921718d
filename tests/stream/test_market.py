"""Market streams through the relay: always-on tickers keep `P ticker:<SYM>` fresh, demand written
as a web process writes it subscribes upstream within a second and its lapse unsubscribes, trades
and klines arrive in our shapes, and streams past one connection's limit open another connection."""

from __future__ import annotations

import time
from decimal import Decimal

import orjson
import pytest

from services.contract.keys import Keys
from tests.processes import PaperProcess

from .conftest import demand, eventually, paper_streams, subscribed_upstream

TICKER_FIELDS = {
    "symbol",
    "price",
    "priceChange",
    "priceChangePercent",
    "weightedAvgPrice",
    "openPrice",
    "highPrice",
    "lowPrice",
    "lastPrice",
    "volume",
    "quoteVolume",
    "openTime",
    "closeTime",
    "count",
    "bidPrice",
    "bidQty",
    "askPrice",
    "askQty",
    "updatedAt",
}


@pytest.fixture(scope="module")
def paper():
    px = PaperProcess(seed=61, PAPER_STEP_MS="100")
    yield px
    px.stop()


@pytest.fixture
def relay(paper, make_relay):
    return make_relay(paper, STREAM_SYMBOLS="BTCUSDT,ETHBTC")


def test_always_on_tickers_are_published_and_keep_the_rest_cache_fresh(paper, relay, make_subscriber, redis_client):
    sub = make_subscriber(relay.prefix)
    _, first = sub.wait_for(
        lambda ch, m: ch == "ticker:BTCUSDT" and m["type"] == "ticker", timeout=10, what="a BTCUSDT ticker"
    )
    assert first["channel"] == "ticker:BTCUSDT" and set(first["data"]) == TICKER_FIELDS
    data = first["data"]
    assert Decimal(data["bidPrice"]) < Decimal(data["askPrice"])
    assert data["price"] == data["lastPrice"]
    sub.wait_for(lambda ch, m: ch == "ticker:ETHBTC", timeout=5, what="an ETHBTC ticker")

    stored = orjson.loads(redis_client.get(Keys(relay.prefix).ticker("BTCUSDT")))
    assert set(stored) == TICKER_FIELDS and time.time() * 1000 - stored["updatedAt"] < 5_000
    # the paper exchange's own REST ticker agrees with what the relay merged from its streams
    rest = paper.get("/api/v3/ticker/24hr", symbol="BTCUSDT").json()
    assert stored["openTime"] <= rest["openTime"] + 5_000 and Decimal(stored["volume"]) > 0
    # kept fresh: later tickers replace it
    sub.wait_for(
        lambda ch, m: ch == "ticker:BTCUSDT" and m["data"]["updatedAt"] > stored["updatedAt"] + 900,
        timeout=5,
        what="a newer BTCUSDT ticker",
    )
    again = orjson.loads(redis_client.get(Keys(relay.prefix).ticker("BTCUSDT")))
    assert again["updatedAt"] > stored["updatedAt"] and time.time() * 1000 - again["updatedAt"] < 5_000
    # a symbol nobody asked for is not streamed
    assert redis_client.get(Keys(relay.prefix).ticker("BNBUSDT")) is None


def test_demand_subscribes_within_a_second_and_its_lapse_unsubscribes(paper, relay, make_subscriber, redis_client):
    sub = make_subscriber(relay.prefix)
    eventually(lambda: "btcusdt@ticker" in subscribed_upstream(paper), 10, what="the relay's first subscriptions")
    asked = time.monotonic()
    demand(redis_client, relay.prefix, "trades:ETHUSDT", seconds=3)
    eventually(lambda: "ethusdt@trade" in subscribed_upstream(paper), 1.0, what="ethusdt@trade subscribed")
    subscribed_after = time.monotonic() - asked
    assert subscribed_after < 1.0

    _, message = sub.wait_for(lambda ch, m: ch == "trades:ETHUSDT", timeout=10, what="an ETHUSDT trade")
    assert message["type"] == "trade" and set(message["data"]) == {"id", "price", "qty", "time", "isBuyerMaker"}
    assert Decimal(message["data"]["price"]) > 0

    # nobody renews the demand: within a second of its expiry the stream is gone upstream
    expiry = asked + 3
    eventually(
        lambda: "ethusdt@trade" not in subscribed_upstream(paper),
        expiry - time.monotonic() + 1.5,
        what="ethusdt@trade unsubscribed",
    )
    assert time.monotonic() - expiry < 1.5
    assert {"btcusdt@ticker", "btcusdt@bookTicker"} <= subscribed_upstream(paper)  # always-on stays


def test_klines_and_renewed_demand(paper, relay, make_subscriber, redis_client):
    sub = make_subscriber(relay.prefix)
    demand(redis_client, relay.prefix, "kline:BTCUSDT:1s", seconds=2)
    _, message = sub.wait_for(lambda ch, m: ch == "kline:BTCUSDT:1s", timeout=5, what="a 1s kline")
    assert message["type"] == "kline"
    k = message["data"]
    assert k["interval"] == "1s" and k["closeTime"] - k["openTime"] == 999 and isinstance(k["closed"], bool)
    assert Decimal(k["low"]) <= Decimal(k["close"]) <= Decimal(k["high"])
    # a web process re-adding the channel keeps it (no unsubscribe in between)
    for _ in range(3):
        demand(redis_client, relay.prefix, "kline:BTCUSDT:1s", seconds=2)
        sub.wait_for(lambda ch, m: ch == "kline:BTCUSDT:1s", timeout=3, what="klines while renewed")
        assert "btcusdt@kline_1s" in subscribed_upstream(paper)
    # malformed demand is ignored, the relay carries on
    demand(redis_client, relay.prefix, "kline:BTCUSDT:7m")
    demand(redis_client, relay.prefix, "user")
    sub.wait_for(lambda ch, m: ch == "kline:BTCUSDT:1s", timeout=3, what="klines after bad demand")
    assert relay.proc.poll() is None


def test_streams_past_one_connections_limit_open_another_connection(paper, make_relay, make_subscriber, redis_client):
    relay = make_relay(paper, STREAM_SYMBOLS="none", STREAM_MAX_STREAMS="4")
    sub = make_subscriber(relay.prefix)
    channels = [
        "ticker:BTCUSDT",
        "ticker:ETHUSDT",
        "trades:BTCUSDT",
        "trades:ETHUSDT",
        "trades:BNBUSDT",
        "kline:ETHBTC:1s",
    ]
    for channel in channels:
        demand(redis_client, relay.prefix, channel)
    # 2 + 2 + 1 + 1 + 1 + 1 streams at most 4 a connection: 2 connections at least
    connections = eventually(
        lambda: (
            [c for c in paper_streams(paper) if c["streams"]]
            if sum(len(c["streams"]) for c in paper_streams(paper)) >= 8
            else None
        ),
        10,
        what="every stream subscribed",
    )
    assert len(connections) >= 2 and all(len(c["streams"]) <= 4 for c in connections)
    # a channel's streams stay together (ticker + bookTicker on one connection)
    for c in connections:
        if "btcusdt@ticker" in c["streams"]:
            assert "btcusdt@bookTicker" in c["streams"]
    seen = set()
    deadline = time.monotonic() + 10
    while seen != {"ticker:BTCUSDT", "ticker:ETHUSDT", "kline:ETHBTC:1s"} and time.monotonic() < deadline:
        item = sub.next(deadline - time.monotonic())
        if item and item[1] in ("ticker:BTCUSDT", "ticker:ETHUSDT", "kline:ETHBTC:1s"):
            seen.add(item[1])
    assert seen == {"ticker:BTCUSDT", "ticker:ETHUSDT", "kline:ETHBTC:1s"}


def test_a_utf8_symbol_streams_through_redis_under_its_own_name(paper, make_relay, make_subscriber, redis_client):
    """币安人生USDT: STREAM_SYMBOLS and demand name it as exchangeInfo does; upstream it is
    币安人生usdt@... (only ASCII letters lowered); Redis channels and keys carry the UTF-8 name."""
    symbol = "币安人生USDT"
    relay = make_relay(paper, STREAM_SYMBOLS=symbol)
    sub = make_subscriber(relay.prefix)
    _, ticker = sub.wait_for(lambda ch, m: ch == f"ticker:{symbol}", timeout=10, what="a ticker of the UTF-8 symbol")
    assert ticker["data"]["symbol"] == symbol and set(ticker["data"]) == TICKER_FIELDS
    assert orjson.loads(redis_client.get(Keys(relay.prefix).ticker(symbol)))["symbol"] == symbol
    assert {"币安人生usdt@ticker", "币安人生usdt@bookTicker"} <= subscribed_upstream(paper)
    demand(redis_client, relay.prefix, f"trades:{symbol}")
    _, trade = sub.wait_for(lambda ch, m: ch == f"trades:{symbol}", timeout=10, what="a trade of the UTF-8 symbol")
    assert Decimal(trade["data"]["price"]) > 0
