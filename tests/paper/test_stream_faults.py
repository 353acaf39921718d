"""Stream faults (`/_paper/streams/faults`) as a gateway meets them: dropped connections, a drop
after N messages, stalled and delayed streams, a depth sequence gap, serverShutdown; and a slow
client that never holds up the others."""

from __future__ import annotations

import json
import socket
import time

import pytest
import websocket

from tests.paper.ws_client import (
    api_request,
    closed_by_server,
    connect,
    recv_json,
    reply_to,
    signed_params,
    wait_for,
    ws_url,
)
from tests.processes import PaperProcess


@pytest.fixture(scope="module")
def px():
    process = PaperProcess(seed=51, PAPER_STEP_MS="50", PAPER_WS_SEND_QUEUE="50")
    yield process
    process.stop()


@pytest.fixture
def paper(px):
    yield px
    assert px.admin("DELETE", "streams/faults").status_code == 200


def fault(px, **body) -> dict:
    response = px.admin("POST", "streams/faults", body)
    assert response.status_code == 201, response.text
    return response.json()


def test_drop_cuts_every_connection_and_reconnecting_works(paper):
    px = paper
    stream = connect(px, "/ws/btcusdt@trade")
    api = connect(px, "/ws-api/v3")
    try:
        assert api_request(api, 1, "ping")["status"] == 200
        assert fault(px, kind="drop")["connections"] >= 2
        assert closed_by_server(stream) is None  # no close frame: the TCP connection just ends
        assert closed_by_server(api) is None
    finally:
        stream.close()
        api.close()
    again = connect(px, "/ws/btcusdt@depth@100ms")
    try:
        assert wait_for(again, lambda m: m.get("e") == "depthUpdate", timeout=5)
    finally:
        again.close()


def test_drop_after_n_messages(paper):
    px = paper
    ws = connect(px, "/ws")
    try:
        assert fault(px, kind="drop_after", messages=3, target="streams")["connections"] == 1
        for i in range(4):
            ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        assert [reply_to(ws, i)["id"] for i in range(3)] == [0, 1, 2]
        assert closed_by_server(ws) is None
    finally:
        ws.close()


def test_stall_silences_a_stream_then_it_resumes_with_a_gap(paper):
    px = paper
    ws = connect(px, "/stream?streams=ethusdt@depth@100ms/ethusdt@bookTicker")
    try:
        last = wait_for(ws, lambda m: m["stream"] == "ethusdt@depth@100ms", timeout=5)["data"]
        fault(px, kind="stall", stream="ethusdt@depth@100ms", seconds=1.0)
        stalled_at = time.monotonic()
        other_during_stall = 0
        while True:
            message = recv_json(ws, timeout=5)
            if message["stream"] != "ethusdt@depth@100ms":
                other_during_stall += 1
                continue
            event = message["data"]
            if event["U"] == last["u"] + 1 and time.monotonic() - stalled_at < 0.15:
                last = event  # sent before the stall took effect
                continue
            break
        assert time.monotonic() - stalled_at >= 0.9
        assert event["U"] > last["u"] + 1  # what happened during the stall was never sent
        assert other_during_stall > 0  # only the stalled stream went quiet
    finally:
        ws.close()


def test_delay_holds_every_message_back(paper):
    px = paper
    ws = connect(px, "/ws/bnbusdt@depth@100ms")
    try:
        wait_for(ws, lambda m: True, timeout=5)
        fault(px, kind="delay", ms=400)
        lags = []
        start = time.monotonic()
        while time.monotonic() - start < 2.5:
            event = recv_json(ws)
            lags.append(time.time() * 1000 - event["E"])
        assert max(lags[-5:]) >= 350 and min(lags[-5:]) >= 350
        fault(px, kind="delay", ms=0)
        deadline = time.monotonic() + 5
        while time.time() * 1000 - recv_json(ws)["E"] > 200:
            assert time.monotonic() < deadline, "messages still delayed after the delay was removed"
    finally:
        ws.close()


def test_depth_gap_breaks_the_update_id_sequence_once(paper):
    px = paper
    ws = connect(px, "/stream?streams=btcusdt@depth@100ms/btcusdt@depth")
    try:
        last = {}

        def gap(message) -> bool:
            event = message["data"]
            previous = last.get(message["stream"])
            last[message["stream"]] = event["u"]
            return previous is not None and event["U"] != previous + 1

        def both_seen(message) -> bool:
            gap(message)
            return len(last) == 2

        wait_for(ws, both_seen, timeout=5)
        fault(px, kind="depth_gap", symbol="BTCUSDT")
        seen = set()
        while seen != {"btcusdt@depth@100ms", "btcusdt@depth"}:
            message = wait_for(ws, gap, timeout=5, what="a sequence gap")
            seen.add(message["stream"])
        # afterwards the sequence is contiguous again
        for _ in range(15):
            assert not gap(recv_json(ws))
    finally:
        ws.close()


def test_server_shutdown_reaches_every_kind_of_connection(paper):
    px = paper
    raw = connect(px, "/ws/btcusdt@trade")
    combined = connect(px, "/stream?streams=btcusdt@trade")
    api = connect(px, "/ws-api/v3")
    try:
        assert api_request(api, 1, "userDataStream.subscribe.signature", signed_params(px))["status"] == 200
        assert fault(px, kind="shutdown", disconnect_after=0.5)["connections"] == 3
        event = wait_for(raw, lambda m: m.get("e") == "serverShutdown")
        assert list(event) == ["e", "E"]
        wrapped = wait_for(combined, lambda m: m.get("stream") == "!serverShutdown")
        assert wrapped["data"]["e"] == "serverShutdown"
        notice = wait_for(api, lambda m: "event" in m and m["event"]["e"] == "serverShutdown")
        assert list(notice) == ["event"]
        assert [closed_by_server(ws) for ws in (raw, combined, api)] == [1001, 1001, 1001]
    finally:
        for ws in (raw, combined, api):
            ws.close()


def test_a_slow_client_is_cut_off_without_slowing_the_others(paper):
    px = paper
    names = "/".join(
        f"{s}@depth20@100ms/{s}@depth10@100ms/{s}@depth5@100ms/{s}@depth@100ms"
        for s in ("btcusdt", "ethusdt", "bnbusdt", "ethbtc")
    )
    # A tiny receive window and a reader that never reads: its queue fills up.
    slow = websocket.create_connection(
        ws_url(px, f"/stream?streams={names}"), timeout=5, sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),)
    )
    fast = connect(px, f"/stream?streams={names}")
    try:
        slow_id = max(c["id"] for c in px.admin("GET", "streams").json()["connections"]) - 1
        received, deadline = 0, time.monotonic() + 20
        while any(c["id"] == slow_id for c in px.admin("GET", "streams").json()["connections"]):
            assert time.monotonic() < deadline, "the slow client was never cut off"
            for _ in range(20):
                recv_json(fast, timeout=2)
                received += 1
        for _ in range(40):  # the fast one keeps its stream
            recv_json(fast, timeout=2)
        assert received >= 20
    finally:
        slow.close()
        fast.close()
