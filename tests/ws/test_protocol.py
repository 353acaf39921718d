"""The /ws protocol without I/O: channel names, message schemas, frames (per-client state: test_session.py)."""

from __future__ import annotations

import pytest

from app.errors import ApiError
from app.ws_protocol import Auth, EventId, Ping, Subscribe, parse_channel, parse_client_message, text_frame


@pytest.mark.parametrize(
    "raw, name",
    [
        ("ticker:btcusdt", "ticker:BTCUSDT"),
        ("DEPTH:EthUsdt", "depth:ETHUSDT"),
        ("trades:ETHBTC", "trades:ETHBTC"),
        ("kline:bnbusdt:1M", "kline:BNBUSDT:1M"),
        ("kline:bnbusdt:1m", "kline:BNBUSDT:1m"),
        ("user", "user"),
        ("orders", "orders"),
        # UTF-8 symbol names (Binance, 2025-12-15): only ASCII letters fold
        ("ticker:币安人生usdt", "ticker:币安人生USDT"),
    ],
)
def test_channel_names_are_normalised(raw, name):
    assert parse_channel(raw).name == name


@pytest.mark.parametrize(
    "raw, code",
    [
        ("ticker", "INVALID_CHANNEL"),
        ("ticker:BTC:USDT", "INVALID_CHANNEL"),
        ("book:BTCUSDT", "INVALID_CHANNEL"),
        ("kline:BTCUSDT", "INVALID_CHANNEL"),
        ("kline:BTCUSDT:1y", "INVALID_INTERVAL"),
        ("orders:BTCUSDT", "INVALID_CHANNEL"),
        ("ticker:BTC-USDT", "INVALID_SYMBOL"),
        (7, "INVALID_CHANNEL"),
        ("x" * 100, "INVALID_CHANNEL"),
        # not canonical: "K" (U+212A, the Kelvin sign) lower-cases to "k"
        ("tic\u212aer:BTCUSDT", "INVALID_CHANNEL"),
    ],
)
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
