"""The pure stream core (streams.py, user_stream.py): stream names, control messages, depth
merging, candles, WS-API signatures (Binance's own worked example) and executionReports built
from the matching engine's events."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

import pytest

from paper_exchange import streams, user_stream
from paper_exchange.candles import MarketHistory
from paper_exchange.engine import Exchange
from paper_exchange.errors import BinanceError
from paper_exchange.keys import HMAC, ApiKey
from paper_exchange.streams import ControlError
from paper_exchange.symbols import DEFAULT_SYMBOLS

DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


@pytest.mark.parametrize(
    "name, kind, symbol, extra",
    [
        ("btcusdt@trade", "trade", "BTCUSDT", {}),
        ("bnbbtc@aggTrade", "aggTrade", "BNBBTC", {}),
        ("ethusdt@kline_1s", "kline", "ETHUSDT", {"interval": "1s"}),
        ("ethusdt@kline_1M", "kline", "ETHUSDT", {"interval": "1M"}),
        ("btcusdt@miniTicker", "miniTicker", "BTCUSDT", {}),
        ("btcusdt@ticker", "ticker", "BTCUSDT", {}),
        ("btcusdt@bookTicker", "bookTicker", "BTCUSDT", {}),
        ("btcusdt@depth", "depth", "BTCUSDT", {"speed_ms": 1000}),
        ("btcusdt@depth@100ms", "depth", "BTCUSDT", {"speed_ms": 100}),
        ("btcusdt@depth20", "partialDepth", "BTCUSDT", {"levels": 20, "speed_ms": 1000}),
        ("btcusdt@depth5@100ms", "partialDepth", "BTCUSDT", {"levels": 5, "speed_ms": 100}),
    ],
)
def test_stream_names(name, kind, symbol, extra):
    stream = streams.parse_stream(name)
    assert (stream.kind, stream.symbol) == (kind, symbol)
    for field, value in extra.items():
        assert getattr(stream, field) == value


@pytest.mark.parametrize(
    "name",
    [
        "BTCUSDT@trade",
        "btcusdt@depth15",
        "btcusdt@depth@500ms",
        "btcusdt@kline_2s",
        "btcusdt",
        "@trade",
        "btcusdt@trade ",
        "btcusdt@Trade",
        5,
    ],
)
def test_invalid_stream_names(name):
    assert streams.parse_stream(name) is None


@pytest.mark.parametrize("request_id", [1, -5, 2**63 - 1, "abc123", "A" * 36, None])
def test_control_ids_binance_accepts(request_id):
    import json

    control = streams.parse_control(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": request_id}))
    assert control.id == request_id


@pytest.mark.parametrize(
    "text",
    [
        '{"method": "LIST_SUBSCRIPTIONS", "id": 2.5}',
        '{"method": "LIST_SUBSCRIPTIONS", "id": "has-dash"}',
        '{"method": "LIST_SUBSCRIPTIONS", "id": 9223372036854775808}',
        '{"method": "LIST_SUBSCRIPTIONS", "id": true}',
        '{"method": "LIST_SUBSCRIPTIONS"}',
    ],
)
def test_control_ids_binance_refuses(text):
    with pytest.raises(ControlError) as caught:
        streams.parse_control(text)
    assert caught.value.reply() == {
        "error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"},
        "id": None,
    }


def test_control_json_errors_point_at_the_position():
    with pytest.raises(ControlError) as caught:
        streams.parse_control('{"method": x}')
    assert caught.value.reply()["error"] == {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 12"}
    with pytest.raises(ControlError) as caught:
        streams.parse_control('{\n"id": 1\n}')
    assert caught.value.msg == "Invalid request: missing field `method` at line 3 column 1"


def test_depth_diffs_merge_into_the_slow_stream():
    diffs = streams.DepthDiffs()
    assert diffs.take() is None
    diffs.add({"U": 10, "u": 12, "b": [(Decimal(100), Decimal(1)), (Decimal(99), Decimal(2))], "a": []})
    diffs.add({"U": 13, "u": 15, "b": [(Decimal(100), Decimal(0))], "a": [(Decimal(101), Decimal(3))]})
    merged = diffs.take()
    assert merged == {
        "U": 10,
        "u": 15,
        "b": [(Decimal(100), Decimal(0)), (Decimal(99), Decimal(2))],
        "a": [(Decimal(101), Decimal(3))],
    }
    assert diffs.take() is None
    event = streams.depth_update("BTCUSDT", merged, 1)
    assert event["b"] == [["100.00000000", "0.00000000"], ["99.00000000", "2.00000000"]]


def test_stream_candles_equal_rest_klines():
    history = MarketHistory()
    base = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
    for i in range(400):
        at = base + i * 9_001
        history.record(Decimal(100 + i % 7), Decimal("0.5"), Decimal(100 + i % 7) / 2, at, is_buyer_maker=i % 3 == 0)
    now = base + 400 * 9_001
    for interval in ("1s", "1m", "15m", "1h"):
        start, end = streams.kline_bounds(interval, base + 399 * 9_001)  # holds the last trade
        candle = streams.current_candle(history, interval, start, end)
        rest = history.klines(interval, start, end, 1, now)[0]
        assert (
            candle.open_time,
            candle.open,
            candle.high,
            candle.low,
            candle.close,
            candle.volume,
            candle.count,
            candle.first_id,
            candle.last_id,
            candle.taker_buy_volume,
        ) == (
            rest.open_time,
            rest.open,
            rest.high,
            rest.low,
            rest.close,
            rest.volume,
            rest.count,
            rest.first_id,
            rest.last_id,
            rest.taker_buy_volume,
        ), interval
    assert streams.kline_bounds("1M", 1_700_000_000_000) == (1698796800000, 1701388799999)


def test_signature_payload_is_binances_worked_example():
    """web-socket-api.md, "SIGNED request example (HMAC)": params sorted by name."""
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01000000",
        "price": "52000.00",
        "recvWindow": 100,
        "timestamp": 1645423376532,
        "apiKey": DOC_KEY,
    }
    payload = user_stream.signature_payload(params)
    assert payload == (
        "apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A&price=52000.00"
        "&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC"
        "&timestamp=1645423376532&type=LIMIT"
    )
    assert (
        hmac.new(DOC_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
        == "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
    )


def test_subscription_signature_checks():
    keys = {DOC_KEY: ApiKey(DOC_KEY, "paper-user", HMAC, secret=DOC_SECRET)}
    params = {"apiKey": DOC_KEY, "timestamp": 1645423376532, "recvWindow": 100}
    params["signature"] = (
        hmac.new(DOC_SECRET.encode(), user_stream.signature_payload(params).encode(), hashlib.sha256)
        .hexdigest()
        .upper()
    )  # HMAC signatures are case-insensitive
    assert user_stream.verify_signed_request(params, keys, 1645423376532 + 100).account == "paper-user"

    def code(p, now=1645423376532 + 50):
        with pytest.raises(BinanceError) as caught:
            user_stream.verify_signed_request(p, keys, now)
        return caught.value.code

    assert code(params, now=1645423376532 + 101) == -1021
    assert code({**params, "timestamp": 1645423376533}) == -1022
    assert code({**params, "apiKey": "x" * 64}) == -2015
    assert code({**params, "apiKey": "not-a-key"}) == -2014
    assert code({k: v for k, v in params.items() if k != "signature"}) == -1102
    assert code({**params, "recvWindow": 60_001}) == -1102
    assert code({**params, "symbol": "BTCUSDT"}) == -1104


def test_execution_reports_follow_the_engine():
    exchange = Exchange(DEFAULT_SYMBOLS)
    account = exchange.add_account("u", {"USDT": Decimal(10_000), "BTC": Decimal(1)})
    exchange.add_account("m", {"USDT": Decimal(10_000), "BTC": Decimal(1)})
    events = []
    exchange.listeners.append(events.append)
    watch = user_stream.BalanceWatch()
    watch.watch(account)

    order = exchange.place_order(
        "u",
        "BTCUSDT",
        "BUY",
        "LIMIT",
        now=1000,
        quantity=Decimal("0.01"),
        price=Decimal("60000"),
        time_in_force="GTC",
        client_order_id="mine",
    )
    new = user_stream.execution_report(events[-1], 1, 1001)
    assert (new["x"], new["X"], new["w"], new["W"], new["c"], new["N"], new["t"]) == (
        "NEW",
        "NEW",
        True,
        1000,
        "mine",
        None,
        -1,
    )
    assert watch.changed(account) == ["USDT"]

    exchange.place_order(
        "m",
        "BTCUSDT",
        "SELL",
        "LIMIT",
        now=2000,
        quantity=Decimal("0.004"),
        price=Decimal("59000"),
        time_in_force="GTC",
    )
    ours = [e for e in events if e.order is order]
    trade = user_stream.execution_report(ours[-1], 2, 2001)
    assert (trade["x"], trade["X"], trade["l"], trade["z"], trade["L"], trade["m"], trade["n"], trade["N"]) == (
        "TRADE",
        "PARTIALLY_FILLED",
        "0.00400000",
        "0.00400000",
        "60000.00000000",
        True,
        "0.00000400",
        "BTC",
    )
    assert trade["Y"] == trade["Z"] == "240.00000000"
    assert watch.changed(account) == ["BTC", "USDT"]

    exchange.cancel_order("u", "BTCUSDT", now=3000, order_id=order.order_id, new_client_order_id="stop-it")
    report = user_stream.execution_report(events[-1], 3, 3001)
    user_stream.complete_cancel(report, order)
    assert (report["x"], report["X"], report["c"], report["C"], report["z"], report["w"]) == (
        "CANCELED",
        "CANCELED",
        "stop-it",
        "mine",
        "0.00400000",
        False,
    )
    position = user_stream.account_position(account, watch.changed(account), 3002)
    assert position["B"] == [{"a": "USDT", "f": f"{account.balance('USDT').free:.8f}", "l": "0.00000000"}]


def test_the_stream_clock_runs_at_binances_100_ms_unless_paper_ws_tick_ms_says_otherwise():
    assert streams.StreamConfig.from_env({}).tick_ms == 100
    assert streams.StreamConfig.from_env({"PAPER_WS_TICK_MS": "25"}).tick_ms == 25
    for bad in ("0", "-5", "fast"):
        with pytest.raises(ValueError, match="PAPER_WS_TICK_MS"):
            streams.StreamConfig.from_env({"PAPER_WS_TICK_MS": bad})
