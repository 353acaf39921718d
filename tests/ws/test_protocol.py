"""The /ws protocol core without I/O: channel names, message schemas, send queues, per-client cursors."""

from __future__ import annotations

import pytest

from app.errors import ApiError
from app.ws_protocol import (
    Auth, Delivery, EventId, MessageRate, Outbox, Ping, Rate, Subscribe, Subscriber,
    parse_channel, parse_client_message, text_frame,
)


@pytest.mark.parametrize("raw, name", [
    ("ticker:btcusdt", "ticker:BTCUSDT"), ("DEPTH:EthUsdt", "depth:ETHUSDT"), ("trades:ETHBTC", "trades:ETHBTC"),
    ("kline:bnbusdt:1M", "kline:BNBUSDT:1M"), ("kline:bnbusdt:1m", "kline:BNBUSDT:1m"), ("user", "user"),
    ("orders", "orders"),
    # UTF-8 symbol names (Binance, 2025-12-15): only ASCII letters fold
    ("ticker:币安人生usdt", "ticker:币安人生USDT"),
])
def test_channel_names_are_normalised(raw, name):
    assert parse_channel(raw).name == name


@pytest.mark.parametrize("raw, code", [
    ("ticker", "INVALID_CHANNEL"), ("ticker:BTC:USDT", "INVALID_CHANNEL"), ("book:BTCUSDT", "INVALID_CHANNEL"),
    ("kline:BTCUSDT", "INVALID_CHANNEL"), ("kline:BTCUSDT:1y", "INVALID_INTERVAL"),
    ("orders:BTCUSDT", "INVALID_CHANNEL"),
    ("ticker:BTC-USDT", "INVALID_SYMBOL"), (7, "INVALID_CHANNEL"), ("x" * 100, "INVALID_CHANNEL"),
    # not canonical: "K" (U+212A, the Kelvin sign) lower-cases to "k"
    ("tic\u212aer:BTCUSDT", "INVALID_CHANNEL"),
])
def test_bad_channel_names_are_refused_with_a_code(raw, code):
    with pytest.raises(ApiError) as refused:
        parse_channel(raw)
    assert refused.value.code == code


def test_client_messages_parse_into_their_schemas():
    assert parse_client_message(b'{"type":"ping"}', 10) == Ping()
    assert parse_client_message('{"type":"auth","token":"t"}', 10) == Auth("t")
    message = parse_client_message('{"type":"subscribe","channels":["user"],"lastEventId":"5-1"}', 10)
    assert message == Subscribe(("user",), EventId(5, 1))
    with pytest.raises(ApiError) as too_many:
        parse_client_message('{"type":"subscribe","channels":["a","b","c"]}', 2)
    assert too_many.value.code == "SUBSCRIPTION_LIMIT"


def test_event_ids_order_like_redis_stream_ids():
    assert EventId.parse("1700000000000-2") > EventId.parse("1700000000000-1") > EventId.parse("999-9")
    assert str(EventId.parse("5-0")) == "5-0"


def test_text_frames_carry_their_length():
    assert text_frame(b"hi") == b"\x81\x02hi"
    assert text_frame(b"x" * 200)[:4] == b"\x81\x7e\x00\xc8"
    assert text_frame(b"x" * 70_000)[:2] == b"\x81\x7f" and len(text_frame(b"x" * 70_000)) == 70_010


def test_outbox_is_bounded_and_conflates_latest_wins():
    outbox = Outbox(3)
    outbox.put_latest("ticker:BTCUSDT", b"t1")
    assert outbox.put(b"a") and outbox.put(b"b")
    outbox.put_latest("ticker:BTCUSDT", b"t2")  # replaces the frame not sent yet, keeps its place
    assert not outbox.put(b"c") and outbox.overflowed_at is not None
    assert outbox.take(10) == [b"t2", b"a", b"b"]
    assert outbox.overflowed_at is None and len(outbox) == 0


def test_depth_cursor_needs_a_snapshot_then_continuous_diffs():
    client = Subscriber(capacity=2)
    name = "depth:BTCUSDT"
    client.depth[name] = None
    assert client.push_depth_diff(name, 1, 5, b"d") == Delivery.OK and len(client.outbox) == 0  # waits
    assert client.push_depth_snapshot(name, 10, b"s") == Delivery.OK
    assert client.push_depth_diff(name, 5, 10, b"old") == Delivery.OK and len(client.outbox) == 1  # covered
    assert client.push_depth_diff(name, 9, 12, b"d1") == Delivery.OK and client.depth[name] == 12
    assert client.push_depth_diff(name, 14, 15, b"gap") == Delivery.RESYNC and client.depth[name] is None


def test_depth_overflow_asks_for_a_snapshot_but_a_strict_message_cuts():
    client = Subscriber(capacity=1)
    client.depth["depth:X"] = 1
    assert client.push(b"trade") == Delivery.OK
    assert client.push_depth_diff("depth:X", 2, 2, b"d") == Delivery.RESYNC
    assert client.push(b"trade") == Delivery.CUT


def test_user_events_are_held_during_a_replay_and_never_sent_twice():
    client = Subscriber(capacity=10)
    client.user_pending = []
    assert client.push_user_event(EventId(5, 0), b"e5") == Delivery.OK and len(client.outbox) == 0
    client.user_pending, client.user_cursor = None, EventId(5, 0)  # the replay ended at 5-0
    assert client.push_user_event(EventId(5, 0), b"e5") == Delivery.OK and len(client.outbox) == 0
    assert client.push_user_event(EventId(6, 0), b"e6") == Delivery.OK and len(client.outbox) == 1


def test_message_rate_refuses_then_calls_abuse():
    rate = MessageRate(2)
    assert [rate.check(100.1) for _ in range(5)] == [Rate.OK, Rate.OK, Rate.REFUSED, Rate.REFUSED, Rate.ABUSE]
    assert rate.check(101.0) == Rate.OK  # a new second
