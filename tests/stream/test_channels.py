"""Pure parts of the relay: channel names ⇄ Binance streams, merged tickers, message shapes, backoff."""

from __future__ import annotations

import random

import pytest

from services.contract.channels import Channel, route
from workers.channels import TickerState, kline, order_from_report, trade
from workers.upstream_ws import Backoff


@pytest.mark.parametrize(
    "name, streams",
    [
        ("ticker:BTCUSDT", ("btcusdt@ticker", "btcusdt@bookTicker")),
        ("trades:ETHBTC", ("ethbtc@trade",)),
        ("kline:BNBUSDT:1m", ("bnbusdt@kline_1m",)),
        ("kline:BNBUSDT:1M", ("bnbusdt@kline_1M",)),
        ("depth:ETHUSDT", ("ethusdt@depth@100ms",)),
        # a UTF-8 symbol: only its ASCII letters change case in stream names
        ("ticker:币安人生USDT", ("币安人生usdt@ticker", "币安人生usdt@bookTicker")),
        ("kline:币安人生USDT:1h", ("币安人生usdt@kline_1h",)),
    ],
)
def test_channels_map_to_binance_streams_and_back(name, streams):
    channel = Channel.parse(name)
    assert channel is not None and channel.name == name and channel.streams == streams
    assert {route(s)[0] for s in streams} == {name}


@pytest.mark.parametrize(
    "name",
    [
        "ticker:btcusdt",
        "ticker:",
        "kline:BTCUSDT",
        "kline:BTCUSDT:7m",
        "depth:BTCUSDT:x",
        "user",
        "orders",
        "trades:BTC-USDT",
        "book:BTCUSDT",
        "ticker:" + "A" * 21,
        "ticker:币安人生usdt",
    ],
)
def test_malformed_or_non_market_channels_are_refused(name):
    assert Channel.parse(name) is None


def test_the_ticker_merges_24h_statistics_with_the_best_bid_and_ask():
    state = TickerState("BTCUSDT")
    book = {"u": 1, "s": "BTCUSDT", "b": "100.0", "B": "1", "a": "101.0", "A": "2"}
    assert state.update("bookTicker", book, 1) is None  # no statistics yet: nothing to publish
    stats = {
        "s": "BTCUSDT",
        "p": "1",
        "P": "1.0",
        "w": "99",
        "c": "100.5",
        "o": "99.5",
        "h": "102",
        "l": "98",
        "v": "10",
        "q": "1000",
        "O": 0,
        "C": 1,
        "n": 5,
        "b": "99.0",
        "B": "9",
        "a": "102.0",
        "A": "9",
    }
    merged = state.update("ticker", stats, 2)
    assert merged == {
        "symbol": "BTCUSDT",
        "price": "100.5",
        "priceChange": "1",
        "priceChangePercent": "1.0",
        "weightedAvgPrice": "99",
        "openPrice": "99.5",
        "highPrice": "102",
        "lowPrice": "98",
        "lastPrice": "100.5",
        "volume": "10",
        "quoteVolume": "1000",
        "openTime": 0,
        "closeTime": 1,
        "count": 5,
        "bidPrice": "100.0",
        "bidQty": "1",
        "askPrice": "101.0",
        "askQty": "2",
        "updatedAt": 2,
    }
    later = state.update("bookTicker", {**book, "b": "100.2"}, 3)
    assert later["bidPrice"] == "100.2" and later["lastPrice"] == "100.5" and later["updatedAt"] == 3


def test_trade_kline_and_order_shapes():
    assert trade({"e": "trade", "t": 7, "p": "1.5", "q": "2", "T": 9, "m": True}) == {
        "id": 7,
        "price": "1.5",
        "qty": "2",
        "time": 9,
        "isBuyerMaker": True,
    }
    k = {
        "t": 0,
        "T": 59_999,
        "i": "1m",
        "o": "1",
        "h": "2",
        "l": "0.5",
        "c": "1.5",
        "v": "3",
        "q": "4",
        "n": 2,
        "x": False,
    }
    assert kline({"k": k}) == {
        "openTime": 0,
        "closeTime": 59_999,
        "interval": "1m",
        "open": "1",
        "high": "2",
        "low": "0.5",
        "close": "1.5",
        "volume": "3",
        "quoteVolume": "4",
        "trades": 2,
        "closed": False,
    }
    report = {
        "s": "BTCUSDT",
        "i": 5,
        "c": "cancel-1",
        "C": "sg-abc",
        "S": "BUY",
        "o": "LIMIT",
        "X": "CANCELED",
        "p": "1",
        "q": "2",
        "z": "0",
        "Z": "0",
        "L": "0",
        "l": "0",
        "T": 11,
        "x": "CANCELED",
    }
    assert order_from_report(report)["clientOrderId"] == "sg-abc"  # the order's id, not the cancel's
    assert order_from_report({**report, "C": "", "c": "sg-new"})["clientOrderId"] == "sg-new"
    assert "expiryReason" not in order_from_report(report)
    expired = {**report, "X": "EXPIRED", "x": "EXPIRED", "eR": "UNFILLED_IOC_QUANTITY_EXPIRED"}
    assert order_from_report(expired)["expiryReason"] == "UNFILLED_IOC_QUANTITY_EXPIRED"  # Binance's eR


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets():
    backoff = Backoff(1.0, 30.0, rng=random.Random(1))
    delays = [backoff.next() for _ in range(8)]
    for delay, nominal in zip(delays, (1, 2, 4, 8, 16, 30, 30, 30), strict=True):
        assert nominal * 0.8 <= delay <= min(30, nominal * 1.2)
    assert len(set(delays)) > 3  # jittered, not lockstep
    backoff.reset()
    assert backoff.next() <= 1.2
