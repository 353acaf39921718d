"""Account events: `user` and `orders` need a token; `lastEventId` replays from the Redis Stream."""

from __future__ import annotations

import threading

import pytest


def test_user_channel_needs_a_token(gateway):
    with gateway.connect() as anonymous:
        anonymous.next("welcome")
        anonymous.send({"type": "subscribe", "channels": ["user", "orders", "ticker:BTCUSDT"]})
        for channel in ("user", "orders"):
            error = anonymous.next("error")
            assert (error["code"], error["channel"]) == ("TOKEN_MISSING", channel)
        assert anonymous.next("subscribed")["channels"] == ["ticker:BTCUSDT"]  # public market data
        anonymous.send({"type": "auth", "token": gateway.token("viewer")})
        assert anonymous.next("authenticated")["role"] == "viewer"
        anonymous.send({"type": "subscribe", "channels": ["user", "orders"]})
        assert anonymous.next("subscribed")["channels"] == ["user", "orders"]
        gateway.relay.publish("orders", "order", {"symbol": "BTCUSDT", "orderId": 1, "status": "NEW"}, id="1-0")
        assert anonymous.next("order")["data"]["orderId"] == 1


@pytest.mark.parametrize("token, code", [("not-a-jwt", "TOKEN_INVALID"), ("expired", "TOKEN_EXPIRED")])
def test_a_bad_or_expired_token_gets_an_error_frame_then_close_4401(gateway, token, code):
    if token == "expired":
        token = gateway.token("viewer", exp=1_000_000, iat=900_000)
    with gateway.connect(f"/ws/user?token={token}") as client:
        assert client.next("error")["code"] == code
        assert client.close_code()[0] == 4401
    with gateway.connect("/ws") as client:
        client.next("welcome")
        client.send({"type": "auth", "token": token})
        assert client.next("error")["code"] == code
        assert client.close_code()[0] == 4401


def test_user_shortcut_takes_the_header_or_a_first_auth_message(gateway):
    headers = {"Authorization": f"Bearer {gateway.token('viewer')}"}
    with gateway.connect("/ws/user", additional_headers=headers) as by_header:
        assert by_header.next("welcome")["authenticated"] is True
        assert by_header.next("subscribed")["channels"] == ["user"]
    with gateway.connect("/ws/user") as by_message:
        assert by_message.next("welcome")["authenticated"] is False  # no subscription without a token
        by_message.send({"type": "auth", "token": gateway.token("trader")})
        assert by_message.next("authenticated")["role"] == "trader"
        assert by_message.next("subscribed")["channels"] == ["user"]
        event_id = gateway.relay.user_event(1)
        assert by_message.next("user")["id"] == event_id


def test_last_event_id_replays_missed_events_then_live_ones_without_gap_or_duplicate(gateway):
    relay = gateway.relay
    ids = [relay.user_event(n) for n in range(1, 1201)]  # more than one XRANGE page and the send queue
    resume_after = ids[99]
    stop = threading.Event()
    live: list[str] = []

    def keep_publishing():  # events arrive while the replay runs: the seam must hold
        n = 10_000
        while not stop.is_set() and n < 10_300:
            live.append(relay.user_event(n))
            n += 1

    publisher = threading.Thread(target=keep_publishing)
    publisher.start()
    try:
        with gateway.connect(f"/ws/user?lastEventId={resume_after}&token={gateway.token()}") as client:
            client.open(["user"])
            received = [client.next("user")["id"]]
            while len(received) < 400:  # well into the live events
                received.append(client.next("user")["id"])
            stop.set()
            publisher.join()
            last = live[-1]
            while received[-1] != last:
                received.append(client.next("user", timeout=10)["id"])
    finally:
        stop.set()
        publisher.join()
    expected = [entry[0].decode() for entry in relay.redis.xrange(relay.bus.keys.user_events, min=f"({resume_after}")]
    assert received == expected  # every event after lastEventId, in order, once
    assert received[0] == ids[100] and live[0] in received


def test_a_bad_last_event_id_is_an_error_frame(gateway):
    with gateway.connect(f"/ws/user?lastEventId=yesterday&token={gateway.token()}") as client:
        client.next("welcome")
        error = client.next("error")
        assert error["code"] == "INVALID_EVENT_ID"
        client.send({"type": "subscribe", "channels": ["user"], "lastEventId": "0-1"})
        assert client.next("subscribed")["channels"] == ["user"]  # from the start of the stream
        assert client.next("user")["data"]["e"] == "balanceUpdate"


def test_after_losing_redis_the_hub_recovers_user_events_and_books_and_says_so(gateway):
    relay = gateway.relay
    relay.book("ETHBTC", 70)
    with (
        gateway.connect(f"/ws/user?token={gateway.token()}") as user,
        gateway.connect("/ws/depth/ethbtc") as depth,
        gateway.connect("/ws/trades/ethbtc") as trades,
    ):
        user.open(["user"])
        depth.open(["depth:ETHBTC"])
        trades.open(["trades:ETHBTC"])
        assert depth.next("depth.snapshot")["data"]["lastUpdateId"] == 70
        seen = relay.user_event(1)
        assert user.next("user")["id"] == seen
        relay.kill_hub_connection()
        # Published while the hub has no pub/sub connection: lost to it, but in the stream and the book.
        missed = relay.user_event(2)
        relay.diff("ETHBTC", 71, 75)
        assert trades.next("status")["data"]["state"] == "upstream_reconnecting"
        assert trades.next("status", timeout=10)["data"]["state"] == "upstream_restored"
        assert user.next("user", timeout=10)["id"] == missed  # caught up from the stream
        assert depth.until(lambda m: m["type"] == "depth.snapshot")["data"]["lastUpdateId"] == 75
        after = relay.user_event(3)
        assert user.next("user")["id"] == after  # and exactly once


def test_revoking_a_session_or_a_subject_closes_its_open_sockets(gateway):
    import requests

    session = gateway.token("viewer", sub="ws-owner", fid="session-1")
    other_session = gateway.token("viewer", sub="ws-owner", fid="session-2")
    bystander = gateway.token("viewer", sub="ws-bystander")
    with (
        gateway.connect(f"/ws/user?token={session}") as first,
        gateway.connect(f"/ws/user?token={other_session}") as second,
        gateway.connect(f"/ws/user?token={bystander}") as third,
    ):
        for client in (first, second, third):
            client.open(["user"])
        admin = {"Authorization": f"Bearer {gateway.token('admin', sub='ops')}"}
        answer = requests.delete(gateway.web.url + "/api/v1/auth/subjects/ws-owner/tokens", headers=admin, timeout=10)
        assert answer.status_code == 200
        # Connected tokens are re-checked every 10 s (app.hub.TOKEN_RECHECK).
        assert first.close_code(timeout=15)[0] == 4401
        assert second.close_code(timeout=5)[0] == 4401
        third.send({"type": "ping"})
        assert third.next("pong")
