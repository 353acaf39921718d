"""Upstream trouble: every stream connection cut → `status: reconnecting`, then `restored` and data
again within 5 s (books rebuilt from a new snapshot); serverShutdown and the lifetime limit are met
by rotating to a new connection first, so subscribers never see an interruption."""

from __future__ import annotations

import time

import pytest

from tests.processes import PaperProcess

from .conftest import demand, eventually, paper_streams


@pytest.fixture(scope="module")
def paper():
    px = PaperProcess(seed=71, PAPER_STEP_MS="100")
    yield px
    px.stop()


def fault(paper, **body) -> dict:
    response = paper.admin("POST", "streams/faults", body)
    assert response.status_code == 201, response.text
    return response.json()


def ready(sub, channels, timeout=10.0) -> None:
    """Wait until data has flowed on every channel (depth: its snapshot)."""
    waiting = set(channels)
    deadline = time.monotonic() + timeout
    while waiting:
        item = sub.next(deadline - time.monotonic())
        assert item is not None, f"no data on {sorted(waiting)}"
        waiting.discard(item[1])


def test_a_drop_is_announced_and_everything_flows_again_within_5_s(paper, make_relay, make_subscriber, redis_client):
    relay = make_relay(paper, STREAM_SYMBOLS="BTCUSDT")
    sub = make_subscriber(relay.prefix)
    channels = ("ticker:BTCUSDT", "trades:BTCUSDT", "depth:ETHUSDT")
    for channel in channels[1:]:
        demand(redis_client, relay.prefix, channel)
    ready(sub, channels)

    dropped_at = time.monotonic()
    assert fault(paper, kind="drop", target="streams")["connections"] >= 1
    states: dict[str, list[str]] = {c: [] for c in channels}
    data_after: dict[str, float] = {}
    snapshot_again = False
    while time.monotonic() - dropped_at < 5 and (len(data_after) < len(channels) or not snapshot_again):
        item = sub.next(5 - (time.monotonic() - dropped_at))
        if item is None:
            break
        arrived, channel, message = item
        if channel not in states:
            continue
        if message["type"] == "status":
            states[channel].append(message["data"]["state"])
        elif states[channel] == ["reconnecting", "restored"]:
            data_after.setdefault(channel, arrived - dropped_at)
            snapshot_again = snapshot_again or message["type"] == "depth.snapshot"
    assert all(s == ["reconnecting", "restored"] for s in states.values()), states
    assert set(data_after) == set(channels) and max(data_after.values()) < 5, data_after
    assert snapshot_again  # the book was rebuilt, not continued across the hole
    assert "market-1.1: connected" in relay.log_text()


def test_server_shutdown_rotates_without_an_interruption(paper, make_relay, make_subscriber):
    relay = make_relay(paper, STREAM_SYMBOLS="BTCUSDT,ETHUSDT")
    sub = make_subscriber(relay.prefix)
    ready(sub, ("ticker:BTCUSDT", "ticker:ETHUSDT"))
    before = {c["id"] for c in paper_streams(paper)}

    fault(paper, kind="shutdown", target="streams", disconnect_after=1.5)
    # a new connection takes over before the old one is closed
    replaced = eventually(
        lambda: [
            c
            for c in paper_streams(paper)
            if c["id"] not in before and {"btcusdt@ticker", "ethusdt@bookTicker"} <= set(c["streams"])
        ],
        5,
        what="a successor connection with every stream",
    )
    assert len(replaced) == 1
    eventually(lambda: not ({c["id"] for c in paper_streams(paper)} & before), 5, what="the old connection gone")
    # tickers kept coming throughout and nobody was told of trouble
    deadline = time.monotonic() + 2.5
    tickers = 0
    while time.monotonic() < deadline:
        item = sub.next(deadline - time.monotonic())
        if item is not None:
            assert item[2]["type"] != "status", item
            tickers += item[2]["type"] == "ticker"
    assert tickers >= 3
    assert "rotating the connection (serverShutdown)" in relay.log_text()


def test_connections_are_rotated_before_their_lifetime_ends(paper, make_relay, make_subscriber):
    relay = make_relay(paper, STREAM_SYMBOLS="BTCUSDT", STREAM_ROTATE_AFTER="2")
    sub = make_subscriber(relay.prefix)
    ready(sub, ("ticker:BTCUSDT",))
    first = eventually(lambda: {c["id"] for c in paper_streams(paper) if c["streams"]}, 5, what="a connection")
    eventually(lambda: {c["id"] for c in paper_streams(paper) if c["streams"]} - first, 5, what="a rotated connection")
    started = time.monotonic()
    while time.monotonic() - started < 1.5:
        item = sub.next(1.5 - (time.monotonic() - started))
        assert item is None or item[2]["type"] != "status", item
    assert "rotating the connection (lifetime)" in relay.log_text()
