"""Connection rules of Binance's WebSocket servers on the paper exchange: server pings answered by
pongs keep a connection, an unanswered ping closes it, more than 5 incoming messages a second
disconnects, and every connection ends at its maximum lifetime (seconds here, 24 h on Binance)."""

from __future__ import annotations

import json
import time

import pytest
import websocket

from tests.paper.ws_client import api_request, closed_by_server, connect, reply_to
from tests.processes import PaperProcess

PING, PONG_TIMEOUT, LIFETIME = 0.4, 1.0, 3.0


@pytest.fixture(scope="module")
def px():
    process = PaperProcess(
        seed=41,
        PAPER_WS_PING_SECONDS=str(PING),
        PAPER_WS_PONG_TIMEOUT=str(PONG_TIMEOUT),
        PAPER_WS_MAX_LIFETIME=str(LIFETIME),
    )
    yield process
    process.stop()


def open_connections(px) -> set[int]:
    return {c["id"] for c in px.admin("GET", "streams").json()["connections"]}


def test_server_pings_and_a_client_that_answers_stays_connected(px):
    ws = connect(px, "/ws/btcusdt@trade")
    try:
        pings, deadline = 0, time.monotonic() + 2 * PING + 1
        while pings < 2:
            assert time.monotonic() < deadline, "no server pings"
            ws.settimeout(deadline - time.monotonic())
            opcode, frame = ws.recv_data_frame(control_frame=True)  # answers each ping with a pong
            if opcode == websocket.ABNF.OPCODE_PING:
                pings += 1
        ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
        assert reply_to(ws, 1) == {"result": ["btcusdt@trade"], "id": 1}
    finally:
        ws.close()


def test_a_client_that_never_answers_pings_is_disconnected(px):
    ws = connect(px, "/ws/ethusdt@trade")
    try:
        before = open_connections(px)
        time.sleep(PING + PONG_TIMEOUT + 0.5)  # the silent client under test: it reads (and pongs) nothing
        assert len(open_connections(px)) < len(before)
        assert closed_by_server(ws, timeout=3) in (1011, None)
    finally:
        ws.close()


def test_more_than_five_messages_a_second_disconnect(px):
    ws = connect(px, "/ws")
    try:
        for i in range(6):
            ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        assert closed_by_server(ws, timeout=3) in (1008, None)
    finally:
        ws.close()
    # five a second is allowed
    ws = connect(px, "/ws")
    try:
        for i in range(5):
            ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        assert reply_to(ws, 4) == {"result": [], "id": 4}
    finally:
        ws.close()


def test_connections_end_at_their_maximum_lifetime(px):
    started = time.monotonic()
    stream = connect(px, "/stream?streams=bnbusdt@depth@100ms")
    api = connect(px, "/ws-api/v3")
    try:
        assert api_request(api, 1, "ping")["status"] == 200
        codes: dict[str, int | None] = {}
        deadline = time.monotonic() + LIFETIME + 3
        while len(codes) < 2:  # read both (answering pings) until the server closes them
            assert time.monotonic() < deadline, f"still open after {LIFETIME + 3} s: {codes}"
            for name, ws in (("stream", stream), ("api", api)):
                if name not in codes:
                    try:
                        codes[name] = closed_by_server(ws, timeout=0.1)
                    except AssertionError:
                        pass
        assert codes == {"stream": 1000, "api": 1000}
        assert LIFETIME - 0.5 <= time.monotonic() - started <= LIFETIME + 3
    finally:
        stream.close()
        api.close()
