"""Market channels through one web process: shortcuts, the multiplexed socket, demand for the relay."""

from __future__ import annotations

import time


def test_ticker_updates_reach_the_ticker_shortcut(gateway):
    with gateway.connect("/ws/ticker/btcusdt") as client:
        welcome = client.next("welcome")
        assert welcome["authenticated"] is False and welcome["publicMarketData"] is True
        assert client.next("subscribed")["channels"] == ["ticker:BTCUSDT"]  # symbols are case-insensitive
        for price in ("65000.01", "65000.02"):
            gateway.relay.ticker("BTCUSDT", price)
            message = client.next("ticker")
            assert message["channel"] == "ticker:BTCUSDT" and message["data"]["price"] == price
        gateway.relay.publish("ticker:BTCUSDT", "status", {"state": "reconnecting"})
        assert client.next("status")["data"] == {"state": "upstream_reconnecting"}


def test_one_socket_subscribing_three_symbols_gets_all_three(gateway):
    with gateway.connect() as client:
        client.next("welcome")
        client.send({"type": "subscribe", "channels": ["ticker:btcusdt", "ticker:ETHUSDT", "ticker:BnbUsdt"]})
        channels = ["ticker:BTCUSDT", "ticker:ETHUSDT", "ticker:BNBUSDT"]
        assert client.next("subscribed")["channels"] == channels
        for channel in channels:
            gateway.relay.ticker(channel.split(":")[1], "1.00")
        assert {client.next("ticker")["channel"] for _ in channels} == set(channels)


def test_trades_and_klines_shortcuts_and_a_bad_interval(gateway):
    with gateway.connect("/ws/trades/ethbtc") as trades, gateway.connect("/ws/kline/ETHBTC/1M") as month:
        trades.open(["trades:ETHBTC"])
        month.open(["kline:ETHBTC:1M"])  # 1M is a month: intervals keep their case
        gateway.relay.trade("ETHBTC", 7)
        assert trades.next("trade")["data"]["id"] == 7
        gateway.relay.publish("kline:ETHBTC:1M", "kline", {"interval": "1M", "close": "0.05", "closed": False})
        assert month.next("kline")["data"]["interval"] == "1M"
    with gateway.connect("/ws/kline/ethbtc/7m") as bad:
        bad.next("welcome")
        error = bad.next("error")
        assert error["code"] == "INVALID_INTERVAL" and error["channel"] == "kline:ethbtc:7m"
        bad.send({"type": "ping"})
        bad.next("pong")  # the connection stays


def test_unsubscribed_channels_stop_and_others_continue(gateway):
    with gateway.connect() as client:
        client.next("welcome")
        client.send({"type": "subscribe", "channels": ["trades:BNBUSDT", "ticker:BNBUSDT"]})
        client.next("subscribed")
        client.send({"type": "unsubscribe", "channels": ["trades:bnbusdt"]})
        assert client.next("unsubscribed")["channels"] == ["trades:BNBUSDT"]
        # Redis delivers one subscriber's messages in publish order: the ticker published after the
        # trade arrives first only if the trade was not forwarded.
        gateway.relay.trade("BNBUSDT", 1)
        gateway.relay.ticker("BNBUSDT", "600.00")
        assert client.next("ticker")["data"]["price"] == "600.00"


def test_demand_is_registered_refreshed_and_lapses_after_the_last_client(gateway):
    relay = gateway.relay
    announcements = relay.redis.pubsub()
    announcements.subscribe(relay.bus.keys.demand_changed)
    assert announcements.get_message(timeout=5)["type"] == "subscribe"
    try:
        with gateway.connect("/ws/depth/ethbtc") as leaving, gateway.connect("/ws/kline/ethbtc/5m") as staying:
            leaving.open(["depth:ETHBTC"])
            staying.open(["kline:ETHBTC:5m"])
            now = time.time() * 1000
            demand = relay.demand()
            for channel in ("depth:ETHBTC", "kline:ETHBTC:5m"):
                assert now + 20_000 < demand[channel] <= now + 31_000, demand  # expiry about now + 30 s
            announced = {announcements.get_message(timeout=5)["data"].decode() for _ in range(2)}
            assert announced == {"depth:ETHBTC", "kline:ETHBTC:5m"}
            assert relay.subscribers("depth:ETHBTC") == 1
            leaving.close()
            _wait(lambda: relay.subscribers("depth:ETHBTC") == 0, "the hub to unsubscribe depth:ETHBTC")
            left_at = relay.demand()["depth:ETHBTC"]
            kept = relay.demand()["kline:ETHBTC:5m"]
            # The hub re-registers its channels every 10 s: wait for that to happen to the kept one.
            _wait(lambda: relay.demand()["kline:ETHBTC:5m"] > kept, "the 10 s demand refresh", timeout=15)
            assert relay.demand()["depth:ETHBTC"] == left_at  # no longer refreshed: lapses by itself
            assert left_at <= time.time() * 1000 + 30_000
    finally:
        announcements.close()


def _wait(condition, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
