"""The WebSocket fuzzer: malformed, huge and flooding input against a running gateway gets error
frames or a close with a documented code (README, WebSocket API), and never takes the web process
down — after each test it still answers, and a fresh client still gets market data.

Short forms run in `make test`; `make soak` runs the long form (more frames, many floods at once)."""

from __future__ import annotations

import json
import random
import struct
import threading
import time

import pytest
import requests

from tests.paper.conftest import PaperProcess
from tests.processes import WebProcess
from tests.ws.support import Client, Relay

from .raw_ws import BINARY, CLOSE, CONTINUATION, PING, TEXT, Closed, RawClient, frame

MAX_MESSAGE = 64 * 1024  # app/ws.py MAX_MESSAGE_BYTES: README's "64 KB a message"
RATE = 20  # WS_MESSAGE_RATE's default, set explicitly below
# Close codes a client may see for what it sent: protocol error, invalid data (UTF-8), message too big,
# a bad token (an `auth` message with garbage in it), too many messages. 1011 (server error) is not
# among them.
CLIENT_FAULT_CLOSES = {1002, 1003, 1007, 1009, 4401, 4429}
REPLY_TYPES = {"error", "pong", "subscribed", "unsubscribed", "authenticated"}


class Gateway:
    def __init__(self, redis_url: str):
        self.paper = PaperProcess(seed=23)
        try:
            self.web = WebProcess(
                self.paper.url,
                redis_url,
                WS_MESSAGE_RATE=str(RATE),
                WS_MAX_CONNECTIONS_PER_IP="1000",
                WS_RESERVED_AUTHENTICATED="0",
            )
        except BaseException:
            self.paper.stop()
            raise
        self.relay = Relay(redis_url, self.web.prefix)

    def raw(self, path: str = "/ws") -> RawClient:
        client = RawClient("127.0.0.1", self.web.port, path)
        assert client.recv_json()["type"] == "welcome"
        return client

    def still_serves(self) -> None:
        """The process is up, answers HTTP, and a fresh client subscribes and receives a ticker."""
        assert self.web.proc.poll() is None, "the web process exited"
        assert requests.get(self.web.url + "/health", timeout=10).status_code == 200
        with Client(f"ws://127.0.0.1:{self.web.port}/ws/ticker/btcusdt") as client:
            client.open(["ticker:BTCUSDT"])
            price = f"{random.randint(60000, 70000)}.00"
            deadline = time.monotonic() + 10
            while True:  # published until it arrives: the hub's pub/sub subscription may still be starting
                self.relay.ticker("BTCUSDT", price)
                try:
                    message = client.recv(timeout=0.5)
                except TimeoutError:
                    assert time.monotonic() < deadline, "no ticker reached a fresh client"
                    continue
                if message["type"] == "ticker" and message["data"]["price"] == price:
                    return

    def stop(self) -> None:
        try:
            self.web.stop()
            for key in self.relay.redis.scan_iter(match=f"{self.web.prefix}*", count=1000):
                self.relay.redis.unlink(key)
            self.relay.close()
        finally:
            self.paper.stop()


@pytest.fixture(scope="module")
def gateway(redis_url):
    g = Gateway(redis_url)
    yield g
    g.stop()


@pytest.fixture
def served(gateway):
    """Every test ends by showing the gateway still serves."""
    yield gateway
    gateway.still_serves()


def _ping_pong(client: RawClient) -> None:
    client.send_json({"type": "ping"})
    while True:
        message = client.recv_json()
        if message["type"] == "pong":
            return


# -- malformed messages: an error frame each, the connection stays ----------------------------------------

MALFORMED = [
    (TEXT, b"{", "INVALID_JSON"),
    (TEXT, b"not json", "INVALID_JSON"),
    (TEXT, b"", "INVALID_JSON"),
    (TEXT, b"null", "INVALID_JSON"),
    (TEXT, b"42", "INVALID_JSON"),
    (TEXT, b'"subscribe"', "INVALID_JSON"),
    (TEXT, b"[" * 2000 + b"]" * 2000, "INVALID_JSON"),  # deeper than any parser should recurse
    (TEXT, b'{"type": "subscribe", "type": 1}', "UNKNOWN_TYPE"),
    (TEXT, b'{"type": "\\ud800"}', "INVALID_JSON"),  # a lone surrogate escape: not valid Unicode
    (TEXT, json.dumps({"type": 5}).encode(), "UNKNOWN_TYPE"),
    (TEXT, json.dumps({"type": ["subscribe"]}).encode(), "UNKNOWN_TYPE"),
    (TEXT, json.dumps({"type": {"subscribe": 1}}).encode(), "UNKNOWN_TYPE"),
    (TEXT, json.dumps({"type": "SUBSCRIBE "}).encode(), "UNKNOWN_TYPE"),
    (TEXT, json.dumps({"type": "explode", "channels": ["ticker:BTCUSDT"]}).encode(), "UNKNOWN_TYPE"),
    (TEXT, json.dumps({"type": "subscribe"}).encode(), "INVALID_MESSAGE"),
    (TEXT, json.dumps({"type": "subscribe", "channels": []}).encode(), "INVALID_MESSAGE"),
    (TEXT, json.dumps({"type": "subscribe", "channels": {"ticker:BTCUSDT": 1}}).encode(), "INVALID_MESSAGE"),
    (TEXT, json.dumps({"type": "subscribe", "channels": [5]}).encode(), "INVALID_CHANNEL"),
    (TEXT, json.dumps({"type": "subscribe", "channels": [None]}).encode(), "INVALID_CHANNEL"),
    (TEXT, json.dumps({"type": "subscribe", "channels": [{"a": 1}]}).encode(), "INVALID_CHANNEL"),
    (TEXT, json.dumps({"type": "subscribe", "channels": [["ticker:BTCUSDT"]]}).encode(), "INVALID_CHANNEL"),
    (TEXT, json.dumps({"type": "subscribe", "channels": ["ticker:" + "B" * 30000]}).encode(), "INVALID_CHANNEL"),
    (TEXT, json.dumps({"type": "subscribe", "channels": ["ticker:BTCUSDT"] * 201}).encode(), "SUBSCRIPTION_LIMIT"),
    (TEXT, json.dumps({"type": "unsubscribe", "channels": [7, None]}).encode(), "INVALID_CHANNEL"),
    (TEXT, json.dumps({"type": "subscribe", "channels": ["user"], "lastEventId": []}).encode(), "INVALID_EVENT_ID"),
    (TEXT, json.dumps({"type": "auth", "token": 5}).encode(), "INVALID_MESSAGE"),
    (TEXT, json.dumps({"type": "auth", "token": "x" * 20000}).encode(), "INVALID_MESSAGE"),
    (BINARY, b"\xff\xfe\x00garbage", "INVALID_JSON"),
    (BINARY, b"\x80\x81\x82", "INVALID_JSON"),
    (BINARY, b'{"type": "\xc3\x28"}', "INVALID_JSON"),  # invalid UTF-8 inside a binary frame's JSON
]


@pytest.mark.parametrize(
    "opcode, payload, code", MALFORMED, ids=[f"{i}-{p[:24]!r}" for i, (_, p, _) in enumerate(MALFORMED)]
)
def test_a_malformed_message_gets_an_error_frame_and_the_connection_stays(served, opcode, payload, code):
    client = served.raw()
    try:
        client.send_raw(frame(opcode, payload))
        error = client.recv_json()
        assert error["type"] == "error" and error["code"] == code and error["message"], error
        _ping_pong(client)
    finally:
        client.close()


def test_a_json_message_in_a_binary_frame_is_read_like_a_text_frame(served):
    client = served.raw()
    try:
        client.send_raw(frame(BINARY, b'{"type": "ping"}'))
        assert client.recv_json()["type"] == "pong"
    finally:
        client.close()


# -- frames that break the protocol or the size limit: a clear close code ----------------------------------

BROKEN = [
    ("invalid UTF-8 in a text frame", [frame(TEXT, b'{"type": "ping", "x": "\xc3\x28"}')], 1007),
    ("a text frame one byte over the limit", [frame(TEXT, b" " * MAX_MESSAGE + b"1")], 1009),
    ("a 1 MB text frame", [frame(TEXT, b"[" + b"1," * 500_000 + b"1]")], 1009),
    (
        "fragments adding up past the limit",
        [
            frame(TEXT, b"[" + b"1," * 20_000, fin=False),
            frame(CONTINUATION, b"1," * 20_000, fin=False),
            frame(CONTINUATION, b"1]"),
        ],
        1009,
    ),
    ("a frame header announcing 2^62 bytes", [bytes([0x81, 0xFF]) + struct.pack("!Q", 1 << 62) + b"\0" * 4], 1009),
    ("an unmasked client frame", [frame(TEXT, b'{"type": "ping"}', masked=False)], 1002),
    ("a reserved opcode", [frame(0x3, b"x")], 1002),
    ("reserved bits set", [frame(TEXT, b'{"type": "ping"}', rsv=0b100)], 1002),
    ("a continuation with nothing to continue", [frame(CONTINUATION, b"x")], 1002),
    ("a fragmented ping", [frame(PING, b"x", fin=False)], 1002),
    ("a ping over 125 bytes", [frame(PING, b"x" * 126)], 1002),
    ("a close frame with a one-byte payload", [frame(CLOSE, b"\x03")], 1002),
]


@pytest.mark.parametrize("what, frames, code", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_frame_that_breaks_the_protocol_is_closed_with_a_clear_code(served, what, frames, code):
    client = served.raw()
    try:
        for data in frames:
            client.send_raw(data)
        assert client.wait_closed() == code, what
    finally:
        client.sock.close()


# -- floods ---------------------------------------------------------------------------------------------


def _flood(gateway: Gateway, messages: int) -> tuple[int, int | None]:
    """Subscribe/unsubscribe as fast as the socket takes them; (RATE_LIMITED frames seen, close code)."""
    client = gateway.raw()
    limited = 0
    try:
        burst = b"".join(
            frame(
                TEXT,
                json.dumps(
                    {
                        "type": "subscribe" if i % 2 == 0 else "unsubscribe",
                        "channels": ["ticker:BTCUSDT", "trades:ETHUSDT"],
                    }
                ).encode(),
            )
            for i in range(messages)
        )
        client.send_raw(burst)
        try:
            while True:
                message = client.recv_json()
                assert message["type"] in REPLY_TYPES | {"ticker", "trade"}, message
                limited += message["type"] == "error" and message["code"] == "RATE_LIMITED"
        except Closed as closed:
            return limited, closed.code
    finally:
        client.sock.close()


def test_a_subscribe_unsubscribe_flood_is_refused_then_closed_4429(served):
    limited, code = _flood(served, 500)
    assert code == 4429
    assert limited >= 1  # refused with an error frame before the close


def test_messages_under_the_rate_are_all_answered(served):
    client = served.raw()
    try:
        for i in range(RATE // 2):
            client.send_json({"type": "subscribe" if i % 2 == 0 else "unsubscribe", "channels": ["ticker:ETHUSDT"]})
        kinds = []
        while len(kinds) < RATE // 2:
            message = client.recv_json()
            if message["type"] in ("subscribed", "unsubscribed"):
                kinds.append(message["type"])
        assert kinds == ["subscribed", "unsubscribed"] * (RATE // 4)
        _ping_pong(client)
    finally:
        client.close()


# -- random input -----------------------------------------------------------------------------------------

VALID = [
    {"type": "ping"},
    {"type": "subscribe", "channels": ["ticker:BTCUSDT"]},
    {"type": "unsubscribe", "channels": ["ticker:BTCUSDT"]},
    {"type": "auth", "token": "abc.def.ghi"},
    {"type": "subscribe", "channels": ["depth:ETHUSDT", "kline:BTCUSDT:1m"], "lastEventId": "1-0"},
]
ODD_VALUES = [
    None,
    True,
    0,
    -1,
    2**64,
    1e308,
    "",
    "ticker:",
    ":::",
    "\u0000",
    "\ud7ff",
    "é" * 50,
    [],
    {},
    [[[]]],
    "ticker:BTCUSDT" * 50,
    "user",
    "orders",
    "kline:BTCUSDT:1s",
    "depth:btcusdt",
]


def _mutated(rng: random.Random) -> bytes:
    message = json.loads(json.dumps(rng.choice(VALID)))
    for _ in range(rng.randint(1, 3)):
        key = rng.choice([*message, "type", "channels", "token", "lastEventId", "extra"])
        roll = rng.random()
        if roll < 0.4:
            message[key] = rng.choice(ODD_VALUES)
        elif roll < 0.6:
            message.pop(key, None)
        elif roll < 0.8 and isinstance(message.get("channels"), list):
            message["channels"] = [rng.choice(ODD_VALUES) for _ in range(rng.randint(0, 4))]
        else:
            message[key] = {"nested": message.get(key)}
    text = json.dumps(message)
    if rng.random() < 0.2:  # cut short or with a byte flipped
        at = rng.randrange(len(text))
        text = text[:at] if rng.random() < 0.5 else text[:at] + chr(rng.randrange(32, 127)) + text[at + 1 :]
    return text.encode()


def _random_frame(rng: random.Random) -> tuple[int, bytes]:
    roll = rng.random()
    if roll < 0.6:
        return TEXT, _mutated(rng)
    if roll < 0.75:
        return TEXT, "".join(
            chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0xD7FF)])) for _ in range(rng.randint(0, 64))
        ).encode()
    if roll < 0.9:
        return BINARY, rng.randbytes(rng.randint(0, 256))
    if roll < 0.97:
        return TEXT, b'{"type": "' + rng.randbytes(rng.randint(1, 16)) + b'"}'  # mostly invalid UTF-8
    return TEXT, b" " * (MAX_MESSAGE + rng.randint(1, 4096))


def fuzz(gateway: Gateway, frames: int, seed: int) -> dict:
    """Random frames, a few per connection (under the message rate); every frame is answered with a
    reply frame, or the connection is closed with a client-fault code. Returns what was seen."""
    rng = random.Random(seed)
    seen = {"frames": 0, "replies": 0, "closes": {}}
    while seen["frames"] < frames:
        client = gateway.raw()
        try:
            for _ in range(rng.randint(1, RATE // 2)):
                opcode, payload = _random_frame(rng)
                seen["frames"] += 1
                client.send_raw(frame(opcode, payload))
                try:
                    reply = client.recv_json()
                except Closed as closed:
                    assert closed.code in CLIENT_FAULT_CLOSES, (closed.code, payload[:80])
                    seen["closes"][closed.code] = seen["closes"].get(closed.code, 0) + 1
                    break
                assert reply["type"] in REPLY_TYPES | {"ticker", "depth.snapshot"}, (reply, payload[:80])
                assert reply["type"] != "error" or (reply["code"] and reply["message"]), reply
                seen["replies"] += 1
            else:
                try:
                    _ping_pong(client)  # still open after its frames...
                except Closed as closed:  # ...or closed for what the last one said (a bad token: 4401)
                    assert closed.code in CLIENT_FAULT_CLOSES, closed.code
        finally:
            client.sock.close()
    return seen


def test_random_frames_get_replies_or_clear_closes(served):
    seen = fuzz(served, frames=250, seed=15)
    assert seen["replies"] > 150 and seen["closes"], seen


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_soak_fuzz_many_frames_and_concurrent_floods(served):
    seen = fuzz(served, frames=5000, seed=1515)
    assert seen["replies"] > 3000, seen
    results, errors = [], []

    def flood() -> None:
        try:
            results.append(_flood(served, 1000))
        except Exception as exc:  # noqa: BLE001 (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=flood) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 50, errors
    assert all(code == 4429 for _, code in results), results
