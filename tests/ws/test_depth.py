"""Order books to clients: a snapshot first, then diffs with continuous U/u, or a fresh snapshot."""

from __future__ import annotations

import pytest

from .conftest import Gateway


@pytest.fixture(scope="module")
def gateway(upstream, redis_url):
    # A slow depth client is resynced, not cut, unless it stays stuck: give it time to be read.
    g = Gateway(upstream, redis_url, WS_SLOW_CLIENT_TIMEOUT="30")
    yield g
    g.stop()


def test_depth_client_gets_the_snapshot_then_continuous_diffs(gateway):
    gateway.relay.book("BTCUSDT", 1000)
    with gateway.connect("/ws/depth/btcusdt") as client:
        client.open(["depth:BTCUSDT"])
        snapshot = client.next("depth.snapshot")
        assert snapshot["channel"] == "depth:BTCUSDT"
        assert snapshot["data"] == {"lastUpdateId": 1000, "bids": [["100.00", "1.0"]], "asks": [["101.00", "2.0"]]}
        last = 1000
        for first, final in ((1001, 1003), (1004, 1004), (1005, 1009)):
            gateway.relay.diff("BTCUSDT", first, final)
            diff = client.next("depth.diff")["data"]
            assert diff["U"] == last + 1 and diff["u"] == final
            last = final


def test_a_gap_is_answered_with_a_fresh_snapshot_and_diffs_continue_from_it(gateway):
    gateway.relay.book("ETHUSDT", 500)
    with gateway.connect("/ws/depth/ethusdt") as client:
        client.open(["depth:ETHUSDT"])
        assert client.next("depth.snapshot")["data"]["lastUpdateId"] == 500
        gateway.relay.diff("ETHUSDT", 501, 502)
        assert client.next("depth.diff")["data"]["u"] == 502
        gateway.relay.diff("ETHUSDT", 510, 512)  # 503..509 never arrived
        fresh = client.next("depth.snapshot")  # never the diff that does not continue the book
        assert fresh["data"]["lastUpdateId"] == 512
        gateway.relay.diff("ETHUSDT", 513, 515)
        diff = client.next("depth.diff")["data"]
        assert (diff["U"], diff["u"]) == (513, 515)


def test_a_client_that_falls_behind_gets_fresh_snapshots_never_a_broken_sequence(gateway):
    """Big diffs into a small send queue (16) and a slow reader: whatever it receives, every diff
    continues the snapshot or diff before it, and a fast client on the same channel misses nothing."""
    relay = gateway.relay
    relay.book("BNBUSDT", 10_000)
    slow = gateway.connect("/ws/depth/bnbusdt", rcvbuf=4096, max_queue=1)
    with gateway.connect("/ws/depth/bnbusdt", max_queue=None) as fast, slow:  # reads all the time
        fast.open(["depth:BNBUSDT"])
        slow.open(["depth:BNBUSDT"])
        assert fast.next("depth.snapshot")["data"]["lastUpdateId"] == 10_000
        last_sent = 10_000
        for _ in range(300):  # ~4 MB of diffs: more than the socket buffers and the queue hold
            relay.diff("BNBUSDT", last_sent + 1, last_sent + 1, padding=800)
            last_sent += 1
        for expected in range(10_001, last_sent + 1):
            assert fast.next("depth.diff", timeout=10)["data"]["u"] == expected
        snapshots, diffs, last = 0, 0, None
        while last != last_sent:
            message = slow.recv(timeout=10)
            if message["type"] == "depth.snapshot":
                snapshots += 1
                last = message["data"]["lastUpdateId"]
            else:
                assert message["type"] == "depth.diff"
                data = message["data"]
                assert last is not None and data["U"] <= last + 1 <= data["u"], (last, data)
                diffs += 1
                last = data["u"]
        assert snapshots >= 2, "the slow client should have been resynced at least once"
