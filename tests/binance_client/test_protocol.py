"""binance_client's pure parts against Binance's own documented examples."""

from __future__ import annotations

import pytest

from binance_client import endpoints
from binance_client.clock import Clock
from binance_client.errors import (
    AuthError,
    ClockSkewError,
    IpBannedError,
    NotFoundError,
    OrderRejectedError,
    RateLimitedError,
    RejectedError,
    UnknownOutcomeError,
    classify,
)
from binance_client.ratelimit import RateLimitInfo
from binance_client.signing import hmac_sha256, signed_query, ws_api_params

DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def test_rest_signature_matches_binance_documented_example():
    # rest-api.md, "SIGNED request example (HMAC)"
    query = signed_query(
        {"symbol": "LTCBTC", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "0.1"},
        DOC_SECRET,
        timestamp=1499827319559,
        recv_window=5000,
    )
    assert query == (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000"
        "&timestamp=1499827319559"
        "&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )


def test_rest_signature_covers_the_percent_encoded_payload():
    # rest-api.md: non-ASCII parameters are percent-encoded before signing
    query = signed_query(
        {
            "symbol": "１２３４５６",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "1",
            "price": "0.1",
        },
        DOC_SECRET,
        timestamp=1499827319559,
        recv_window=5000,
    )
    assert query.endswith("&signature=e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3")


def test_ws_api_signature_matches_binance_documented_example():
    # web-socket-api.md, "SIGNED request example (HMAC)": params sorted by name
    params = ws_api_params(
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01000000",
            "price": "52000.00",
        },
        DOC_KEY,
        DOC_SECRET,
        timestamp=1645423376532,
        recv_window=100,
    )
    assert params["signature"] == "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
    assert params["apiKey"] == DOC_KEY


def test_hmac_is_hex_sha256():
    assert len(hmac_sha256("k", "v")) == 64


def test_rate_limit_headers_are_parsed_case_insensitively():
    info = RateLimitInfo.from_headers(
        {
            "x-mbx-used-weight-1m": "120",
            "X-MBX-ORDER-COUNT-10S": "3",
            "X-MBX-ORDER-COUNT-1D": "40",
            "Retry-After": "7",
            "X-MBX-USED-WEIGHT-1M-X": "z",
        }
    )
    assert info.used_weight_1m == 120
    assert info.order_count == {"10S": 3, "1D": 40}
    assert info.retry_after == 7.0


@pytest.mark.parametrize(
    "status,body,kind",
    [
        (429, {"code": -1003, "msg": "Too much request weight used"}, RateLimitedError),
        (418, {"code": -1003, "msg": "Way too much request weight used; IP banned until 1."}, IpBannedError),
        (503, None, UnknownOutcomeError),
        (500, {"code": -1001, "msg": "Internal error"}, UnknownOutcomeError),
        (408, {"code": -1007, "msg": "Timeout waiting for response from backend server."}, UnknownOutcomeError),
        (400, {"code": -1007, "msg": "Timeout"}, UnknownOutcomeError),
        (401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}, AuthError),
        (400, {"code": -1022, "msg": "Signature for this request is not valid."}, AuthError),
        (400, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}, ClockSkewError),
        (400, {"code": -2013, "msg": "Order does not exist."}, NotFoundError),
        (400, {"code": -2011, "msg": "Unknown order sent."}, NotFoundError),
        (400, {"code": -2010, "msg": "Duplicate order sent."}, OrderRejectedError),
        (400, {"code": -1013, "msg": "Filter failure: LOT_SIZE"}, OrderRejectedError),
        (400, {"code": -1121, "msg": "Invalid symbol."}, OrderRejectedError),
        (400, {"code": -9999, "msg": "something new"}, RejectedError),
    ],
)
def test_answers_are_classified_by_what_a_caller_must_do(status, body, kind):
    error = classify(status, body, RateLimitInfo(retry_after=3))
    assert type(error) is kind
    assert error.http_status == status
    if body:
        assert error.code == body["code"] and error.msg == body["msg"]


def test_unknown_outcome_is_never_a_rejection():
    # a caller that retries only on UnknownOutcomeError must never see a definitive rejection there
    assert not issubclass(UnknownOutcomeError, RejectedError)
    assert not issubclass(OrderRejectedError, UnknownOutcomeError)


@pytest.mark.parametrize("limit,weight", [(5, 5), (100, 5), (101, 25), (500, 25), (1000, 50), (5000, 250)])
def test_depth_weight_follows_binance_tiers(limit, weight):
    assert endpoints.depth("BTCUSDT", limit).weight == weight


def test_request_builders_drop_unset_parameters_and_name_security():
    request = endpoints.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")
    assert request.params == {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "MARKET",
        "quantity": "0.01",
        "newOrderRespType": "FULL",
    }
    assert request.security == "SIGNED" and request.is_order
    assert endpoints.ticker_price().weight == 4 and endpoints.ticker_price("BTCUSDT").weight == 2
    assert endpoints.open_orders().weight == 80 and endpoints.open_orders("BTCUSDT").weight == 6


def test_clock_offset_assumes_the_server_stamped_mid_flight():
    clock = Clock()
    assert clock.update(server_time_ms=1_000_500, sent_at_ms=1_000_000, received_at_ms=1_000_200) == 400
    assert clock.offset_ms == 400
