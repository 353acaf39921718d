"""What protects the web process: error frames for bad input, per-connection limits, slow clients
cut without stalling others, capacity refused before the upgrade, heartbeats, private market data."""

from __future__ import annotations

import json

import pytest
import websocket
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .conftest import Gateway


@pytest.mark.parametrize(
    "message, code",
    [
        ("not json", "INVALID_JSON"),
        ([1, 2], "INVALID_JSON"),
        ({"type": "hello"}, "UNKNOWN_TYPE"),
        ({"type": "subscribe", "channels": "ticker:BTCUSDT"}, "INVALID_MESSAGE"),
        ({"type": "auth"}, "INVALID_MESSAGE"),
        ({"type": "subscribe", "channels": ["candles:BTCUSDT"]}, "INVALID_CHANNEL"),
        ({"type": "subscribe", "channels": ["ticker:NOTACOIN"]}, "INVALID_SYMBOL"),
        ({"type": "subscribe", "channels": ["kline:BTCUSDT:2m"]}, "INVALID_INTERVAL"),
        ({"type": "subscribe", "channels": ["user:BTCUSDT"]}, "INVALID_CHANNEL"),
        ({"type": "subscribe", "channels": ["user"], "lastEventId": "latest"}, "INVALID_EVENT_ID"),
    ],
)
def test_bad_messages_get_error_frames_and_the_connection_stays(gateway, message, code):
    with gateway.connect() as client:
        client.next("welcome")
        client.send(message if isinstance(message, str) else json.dumps(message))
        error = client.next("error")
        assert error["code"] == code and error["message"]
        client.send({"type": "ping"})
        assert client.next("pong")["timestamp"] > 0


def test_subscriptions_beyond_the_limit_are_refused_one_by_one(gateway):
    with gateway.connect() as client:  # WS_MAX_SUBSCRIPTIONS=6 in these tests
        assert client.next("welcome")["limits"]["subscriptions"] == 6
        symbols = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "ETHBTC"]
        client.send({"type": "subscribe", "channels": [f"ticker:{s}" for s in symbols] + ["trades:BTCUSDT"]})
        assert len(client.next("subscribed")["channels"]) == 5
        client.send({"type": "subscribe", "channels": ["trades:ETHUSDT", "trades:BNBUSDT"]})
        error = client.next("error")
        assert (error["code"], error["channel"]) == ("SUBSCRIPTION_LIMIT", "trades:BNBUSDT")
        assert client.next("subscribed")["channels"] == ["trades:ETHUSDT"]


def test_message_rate_over_the_limit_is_refused_then_the_connection_closed(gateway):
    with gateway.connect() as client:  # WS_MESSAGE_RATE=10 in these tests
        client.next("welcome")
        for _ in range(100):  # well over twice the limit within one second
            client.send({"type": "ping"})
        codes = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                message = client.recv()
                if message["type"] == "error":
                    codes.append(message["code"])
        code, reason = closed.value.rcvd.code, closed.value.rcvd.reason
        assert "RATE_LIMITED" in codes, (codes, code, reason)  # refused with error frames first
        assert code == 4429 and "messages" in reason


def test_a_slow_client_is_cut_without_stalling_the_others(gateway):
    # WS_SEND_QUEUE=16: a trade that does not fit cannot be skipped, so the client is closed (4008).
    relay = gateway.relay
    slow = gateway.connect("/ws", rcvbuf=4096, max_queue=1)
    with gateway.connect("/ws/trades/btcusdt", max_queue=None) as fast, slow:  # fast: reads all the time
        fast.open(["trades:BTCUSDT"])
        slow.next("welcome")
        # ticker:ETHBTC is the slow client's alone: the hub leaves it in Redis when the client is cut.
        slow.send({"type": "subscribe", "channels": ["trades:BTCUSDT", "ticker:ETHBTC"]})
        slow.next("subscribed")
        published = 0
        while relay.subscribers("ticker:ETHBTC"):  # kernel buffers differ: publish until it is cut
            assert published < 2000, "the slow client was never cut"
            for _ in range(20):
                relay.trade("BTCUSDT", published, padding=16_000)
                published += 1
        for trade_id in range(published):
            assert fast.next("trade", timeout=10)["data"]["id"] == trade_id  # every one, in order
        code, reason = slow.close_code()
        assert code == 4008 and "slow" in reason.lower()


def test_a_heartbeat_ping_reaches_idle_sockets(gateway):
    client = websocket.create_connection(gateway.ws_url + "/ws", timeout=5)  # websocket-client shows pings
    try:
        assert json.loads(client.recv())["type"] == "welcome"
        opcode, _ = client.recv_data(control_frame=True)  # WS_HEARTBEAT_INTERVAL=1 in these tests
        assert opcode == websocket.ABNF.OPCODE_PING
    finally:
        client.close()


@pytest.fixture(scope="module")
def small(upstream, redis_url):
    g = Gateway(upstream, redis_url, MAX_WS_CONNECTIONS="3", WS_PUBLIC_MARKET_DATA="false")
    yield g
    g.stop()


def test_the_connection_over_max_ws_connections_gets_503_before_upgrading(small):
    clients = [small.connect() for _ in range(3)]
    try:
        for client in clients:
            client.next("welcome")
        with pytest.raises(InvalidStatus) as refused:
            small.connect()
        response = refused.value.response
        assert response.status_code == 503
        body = json.loads(response.body)
        assert body["error"] == {
            "code": "WS_CAPACITY",
            "message": "Maximum WebSocket connections reached",
            "details": {},
        }
        assert response.headers["Retry-After"]
        clients.pop().close()
        replacement = _connect_when_a_slot_frees(small)
        replacement.next("welcome")
        clients.append(replacement)
    finally:
        for client in clients:
            client.close()


def test_market_data_needs_a_token_when_not_public(small):
    with small.connect("/ws/ticker/btcusdt") as client:
        assert client.next("welcome")["publicMarketData"] is False
        client.send({"type": "subscribe", "channels": ["ticker:ETHUSDT"]})
        assert client.next("error")["code"] == "TOKEN_MISSING"
        client.send({"type": "auth", "token": small.token("viewer")})
        client.next("authenticated")
        assert client.next("subscribed")["channels"] == ["ticker:BTCUSDT"]  # the shortcut's, held until now
        small.relay.ticker("BTCUSDT", "1.23")
        assert client.next("ticker")["data"]["price"] == "1.23"


def _connect_when_a_slot_frees(gateway, attempts: int = 100):
    """The server frees a slot when it sees the close; until then it (rightly) answers 503."""
    import time

    for _ in range(attempts):
        try:
            return gateway.connect()
        except InvalidStatus as exc:
            assert exc.response.status_code == 503
            time.sleep(0.05)
    raise AssertionError("no slot freed after a client left")


def test_depth_channels_are_limited_per_client_across_its_connections(upstream, redis_url):
    """Each new book costs the relay a REST snapshot from the shared weight budget: one client (an IP
    without a token, or a token subject) may follow WS_MAX_DEPTH_CHANNELS books (2 here) at a time."""
    g = Gateway(upstream, redis_url, WS_MAX_DEPTH_CHANNELS="2")
    try:
        with g.connect() as first, g.connect() as second:
            first.next("welcome")
            second.next("welcome")
            first.send({"type": "subscribe", "channels": ["depth:BTCUSDT", "depth:ETHUSDT", "depth:BNBUSDT"]})
            error = first.next("error")
            assert (error["code"], error["channel"]) == ("DEPTH_LIMIT", "depth:BNBUSDT")
            assert first.until(lambda m: m["type"] == "subscribed")["channels"] == ["depth:BTCUSDT", "depth:ETHUSDT"]
            # the same IP on another connection: a book it already follows is free, a new one is not
            second.send({"type": "subscribe", "channels": ["depth:ETHBTC", "depth:BTCUSDT", "ticker:ETHBTC"]})
            error = second.until(lambda m: m["type"] == "error")
            assert (error["code"], error["channel"]) == ("DEPTH_LIMIT", "depth:ETHBTC")
            assert second.until(lambda m: m["type"] == "subscribed")["channels"] == ["depth:BTCUSDT", "ticker:ETHBTC"]
            assert "depth:ETHBTC" not in g.relay.demand() and "depth:BNBUSDT" not in g.relay.demand()
            # a token holder is another client
            with g.connect(f"/ws?token={g.token()}") as holder:
                holder.next("welcome")
                holder.send({"type": "subscribe", "channels": ["depth:ETHBTC"]})
                assert holder.until(lambda m: m["type"] in ("subscribed", "error"))["type"] == "subscribed"
            # a book let go frees its place
            first.send({"type": "unsubscribe", "channels": ["depth:ETHUSDT"]})
            first.until(lambda m: m["type"] == "unsubscribed")
            first.send({"type": "subscribe", "channels": ["depth:BNBUSDT"]})
            assert first.until(lambda m: m["type"] in ("subscribed", "error"))["type"] == "subscribed"
    finally:
        g.stop()


# -- admission per address, and slots kept for authenticated clients -------------------------------------


@pytest.fixture(scope="module")
def guarded(upstream, redis_url):
    # Behind one proxy, so X-Forwarded-For names the client address (as on Heroku).
    g = Gateway(
        upstream,
        redis_url,
        MAX_WS_CONNECTIONS="6",
        WS_RESERVED_AUTHENTICATED="2",
        WS_MAX_CONNECTIONS_PER_IP="3",
        SANIC_PROXIES_COUNT="1",
    )
    yield g
    g.stop()


def _from(gateway, address: str, token: str | None = None, path: str = "/ws"):
    headers = {"X-Forwarded-For": address, **({"Authorization": f"Bearer {token}"} if token else {})}
    client = gateway.connect(path, additional_headers=headers)
    client.next("welcome")
    return client


def _refused(gateway, address: str, token: str | None = None):
    headers = {"X-Forwarded-For": address, **({"Authorization": f"Bearer {token}"} if token else {})}
    with pytest.raises(InvalidStatus) as refused:
        gateway.connect("/ws", additional_headers=headers)
    response = refused.value.response
    return response.status_code, json.loads(response.body)["error"]["code"], response.headers.get("Retry-After")


def test_one_address_cannot_take_every_anonymous_slot(guarded):
    clients = [_from(guarded, "198.51.100.7") for _ in range(3)]
    try:
        assert _refused(guarded, "198.51.100.7") == (429, "WS_ADDRESS_LIMIT", "5")
        clients.append(_from(guarded, "198.51.100.8"))  # another address may
        clients.append(_from(guarded, "198.51.100.7", guarded.token("viewer")))  # so may a token
    finally:
        for client in clients:
            client.close()


def test_the_last_slots_are_kept_for_authenticated_clients(guarded):
    clients = [_from(guarded, f"203.0.113.{n}") for n in range(4)]  # 6 slots, 2 of them reserved
    try:
        assert _refused(guarded, "203.0.113.50") == (503, "WS_CAPACITY", "5")
        assert _refused(guarded, "203.0.113.50", "not-a-valid-token")[:2] == (503, "WS_CAPACITY")
        user = _from(guarded, "203.0.113.50", guarded.token("viewer"), path="/ws/user")
        clients.append(user)
        # An anonymous socket that authenticates by message gives its anonymous slot back.
        clients[0].send({"type": "auth", "token": guarded.token("viewer")})
        clients[0].next("authenticated")
        clients.append(_from(guarded, "203.0.113.51"))
        assert _refused(guarded, "203.0.113.52", guarded.token("viewer"))[:2] == (503, "WS_CAPACITY")  # all 6 taken
    finally:
        for client in clients:
            client.close()
