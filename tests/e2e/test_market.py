"""Market data end to end: the paper exchange's live market reaches WebSocket clients of the web process
through the stream relay and Redis (one ticker on a shortcut, three on one socket); bad messages get
error frames on a connection that keeps working; a web process at MAX_WS_CONNECTIONS refuses the next
upgrade with 503 and keeps serving the clients it has."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from websockets.exceptions import InvalidStatus

from tests.support import eventually

from .conftest import System

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def system(redis_url):
    # STREAM_SYMBOLS=none: nothing is streamed until a web client asks, so every ticker here also
    # proves the demand path (web → P stream:demand → relay subscribes upstream).
    s = System(redis_url, seed=81, relay_env={"STREAM_SYMBOLS": "none"})
    yield s
    s.stop()


def tickers_of(channel: str):
    return lambda m: m["type"] == "ticker" and m["channel"] == channel


def test_the_ticker_shortcut_follows_the_exchanges_live_market(system):
    paper = system.paper
    with system.connect("/ws/ticker/btcusdt") as client:
        client.open(["ticker:BTCUSDT"])
        first = client.next("ticker", timeout=10)  # after the relay has subscribed upstream for it
        assert first["channel"] == "ticker:BTCUSDT" and first["data"]["symbol"] == "BTCUSDT"
        newer = client.until(
            lambda m: m["type"] == "ticker" and m["data"]["updatedAt"] > first["data"]["updatedAt"], 5, "a newer ticker"
        )
        assert newer["data"]["symbol"] == "BTCUSDT"

        # Move the exchange's market (paused, so it stays put): the client's ticker shows the moved
        # quotes, to the exchange's own numbers.
        paper.pause()
        try:
            target = (Decimal(first["data"]["lastPrice"]) * Decimal("1.02")).quantize(Decimal("1"))
            assert paper.admin("POST", "market", {"symbol": "BTCUSDT", "price": str(target)}).status_code == 200
            quote = paper.get("/api/v3/ticker/bookTicker", symbol="BTCUSDT").json()
            last = paper.get("/api/v3/ticker/24hr", symbol="BTCUSDT").json()["lastPrice"]
            mid = (Decimal(quote["bidPrice"]) + Decimal(quote["askPrice"])) / 2
            assert abs(mid - target) < target * Decimal("0.001")  # the maker re-quoted around it
            moved = client.until(
                lambda m: (
                    m["type"] == "ticker"
                    and m["data"]["bidPrice"] == quote["bidPrice"]
                    and m["data"]["askPrice"] == quote["askPrice"]
                    and m["data"]["lastPrice"] == last
                ),
                5,
                "a ticker with the moved market's quotes",
            )
        finally:
            paper.resume()
        assert moved["data"]["bidQty"] == quote["bidQty"] and moved["data"]["askQty"] == quote["askQty"]


def test_one_socket_gets_tickers_of_three_symbols(system):
    channels = ["ticker:BTCUSDT", "ticker:ETHUSDT", "ticker:BNBUSDT"]
    seen: dict[str, list[dict]] = {channel: [] for channel in channels}

    def collect(message) -> bool:
        if message["type"] == "ticker":
            assert message["channel"] in seen, message
            seen[message["channel"]].append(message["data"])
        return all(len(tickers) >= 3 for tickers in seen.values())

    with system.connect() as client:
        client.next("welcome")
        client.send({"type": "subscribe", "channels": ["ticker:btcusdt", "ticker:ETHUSDT", "ticker:BnbUsdt"]})
        assert client.next("subscribed")["channels"] == channels  # canonical names
        client.until(collect, 10, "three tickers of each symbol")
    for channel, tickers in seen.items():
        symbol = channel.split(":")[1]
        assert {t["symbol"] for t in tickers} == {symbol}
        assert tickers[-1]["updatedAt"] > tickers[0]["updatedAt"]  # updates, not one copy repeated
        assert Decimal(tickers[-1]["bidPrice"]) < Decimal(tickers[-1]["askPrice"])


def test_bad_messages_get_error_frames_and_the_connection_keeps_working(system):
    with system.connect() as client:
        client.next("welcome")
        for message, code, channel in [
            ("{not json", "INVALID_JSON", None),
            ({"type": "hello"}, "UNKNOWN_TYPE", None),
            ({"type": "subscribe", "channels": ["candles:BTCUSDT"]}, "INVALID_CHANNEL", "candles:BTCUSDT"),
            ({"type": "subscribe", "channels": ["ticker:NOTACOIN"]}, "INVALID_SYMBOL", "ticker:NOTACOIN"),
        ]:
            client.send(message)
            error = client.next("error")
            assert error["code"] == code and error["message"] and error.get("channel") == channel, error
            client.send({"type": "ping"})
            assert client.next("pong")["timestamp"] > 0
        # Still a working subscriber: a bad channel next to a good one spoils only itself.
        client.send({"type": "subscribe", "channels": ["ticker:NOTACOIN", "ticker:ETHUSDT"]})
        assert client.next("error")["code"] == "INVALID_SYMBOL"
        assert client.next("subscribed")["channels"] == ["ticker:ETHUSDT"]
        assert client.next("ticker", timeout=10)["data"]["symbol"] == "ETHUSDT"


@pytest.fixture(scope="module")
def small_web(system):
    """A second web process on the same deployment with room for three sockets (stopped with it)."""
    return system.start_web(MAX_WS_CONNECTIONS="3")


def test_the_connection_over_max_ws_connections_gets_503_and_the_others_carry_on(system, small_web):
    path = "/ws/ticker/bnbusdt"

    def connect_if_room():
        try:
            return system.connect(path, web=small_web)
        except InvalidStatus as exc:  # until the server has seen a client leave, it is (rightly) full
            assert exc.response.status_code == 503
            return None

    clients = []
    try:
        for _ in range(3):
            clients.append(system.connect(path, web=small_web))
            clients[-1].open(["ticker:BNBUSDT"])
        with pytest.raises(InvalidStatus) as refused:
            system.connect(path, web=small_web)
        response = refused.value.response
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert json.loads(response.body)["error"] == {
            "code": "WS_CAPACITY",
            "message": "Maximum WebSocket connections reached",
            "details": {},
        }
        for client in clients:  # the refusal disturbed nobody already connected
            assert client.until(tickers_of("ticker:BNBUSDT"), 10, "a BNBUSDT ticker")["data"]["symbol"] == "BNBUSDT"

        clients.pop().close()  # a slot frees when a client leaves
        clients.append(eventually(connect_if_room, 5, what="a connection once a client left"))
        clients[-1].open(["ticker:BNBUSDT"])
        assert clients[-1].next("ticker", timeout=10)["data"]["symbol"] == "BNBUSDT"
    finally:
        for client in clients:
            client.close()
