"""Test helpers for the WebSocket API: the stream relay's publisher driven by hand (what it writes is
docs/streams-protocol.md), and a small synchronous client (the `websockets` library)."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import orjson
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from services.contract.channels import message as envelope
from workers.stream_bus import StreamBus, now_ms


class Relay:
    """The stream relay's own publisher (workers/stream_bus.py) fed by hand, so the web tier is tested
    on its own with exactly what `python -m workers.stream` writes to Redis."""

    def __init__(self, redis_url: str, prefix: str):
        self.redis = redis.Redis.from_url(redis_url)
        self.prefix = prefix
        self.bus = StreamBus(self.redis, prefix)

    def publish(self, channel: str, kind: str, data, **extra) -> None:
        if extra:  # an id, as on user and orders messages
            self.redis.publish(self.bus.channel(channel), orjson.dumps(envelope(kind, channel, data, **extra)))
        else:
            self.bus.publish(channel, kind, data)

    def ticker(self, symbol: str, price: str) -> None:
        self.bus.ticker(symbol, {"symbol": symbol, "price": price, "lastPrice": price, "updatedAt": now_ms()})

    def trade(self, symbol: str, trade_id: int, padding: int = 0) -> None:
        data = {"id": trade_id, "price": "65000.00", "qty": "0.001", "time": now_ms(), "isBuyerMaker": False}
        if padding:
            data["padding"] = "x" * padding
        self.bus.publish(f"trades:{symbol}", "trade", data)

    def book(self, symbol: str, last_update_id: int) -> dict:
        """The relay (re)built its book: `P book:<SYM>` written and a depth.snapshot published."""
        book = {"lastUpdateId": last_update_id, "bids": [["100.00", "1.0"]], "asks": [["101.00", "2.0"]]}
        self.bus.depth_snapshot(symbol, book)
        return book

    def diff(self, symbol: str, first: int, final: int, padding: int = 0) -> None:
        """One applied diff: the book written with it, then the diff published (one transaction)."""
        bids = [["100.00", str(final)]] * max(1, padding)
        top = {"lastUpdateId": final, "bids": [["100.00", "1.0"]], "asks": [["101.00", "2.0"]]}
        self.bus.depth_diff(symbol, {"U": first, "u": final, "bids": bids, "asks": [], "E": 1}, top)

    def user_event(self, n: int) -> str:
        """XADD the event to the stream, then publish it (the relay's order); returns its id."""
        return self.bus.user_event({"e": "balanceUpdate", "E": now_ms(), "a": "USDT", "d": str(n)})

    def kill_hub_connection(self) -> None:
        """Drop the web process's pub/sub connection, as a network blip or a Redis failover would."""
        name = self.bus.keys.hub_client_name
        ids = [c["id"] for c in self.redis.client_list() if c.get("name") == name]
        assert len(ids) == 1, ids
        self.redis.client_kill_filter(_id=ids[0])

    def demand(self) -> dict[str, float]:
        return {m.decode(): s for m, s in self.redis.zrange(self.bus.keys.demand, 0, -1, withscores=True)}

    def subscribers(self, channel: str) -> int:
        return self.redis.pubsub_numsub(self.bus.channel(channel))[0][1]

    def close(self) -> None:
        self.redis.close()


class Client:
    """A `websockets` sync client that reads JSON messages and reports how the server closed."""

    def __init__(self, url: str, *, rcvbuf: int | None = None, **options):
        sock = None
        if rcvbuf is not None:  # a client that reads slowly, with little kernel buffer to hide it
            parts = urlsplit(url)
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.connect((parts.hostname, parts.port))
        self.ws = connect(url, sock=sock, open_timeout=10, close_timeout=2, **options)

    def send(self, message) -> None:
        self.ws.send(message if isinstance(message, str | bytes) else json.dumps(message))

    def recv(self, timeout: float = 5.0) -> dict:
        return json.loads(self.ws.recv(timeout=timeout))

    def next(self, kind: str, timeout: float = 5.0) -> dict:
        """The next message, which must be of this type."""
        message = self.recv(timeout)
        assert message["type"] == kind, message
        return message

    def until(self, predicate, timeout: float = 10.0, what: str = "a matching message") -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout} s")
            try:
                message = self.recv(left)
            except TimeoutError:
                continue
            if predicate(message):
                return message

    def open(self, channels: list[str]) -> None:
        """Read the greeting of a shortcut: welcome, then subscribed to exactly these channels."""
        self.next("welcome")
        assert self.next("subscribed")["channels"] == channels

    def close_code(self, timeout: float = 15.0) -> tuple[int, str]:
        """Read (and drop) messages until the server closes; returns its close code and reason."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.ws.recv(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            except ConnectionClosed as exc:
                assert exc.rcvd is not None, f"closed without a close frame ({exc!r})"
                return exc.rcvd.code, exc.rcvd.reason
        raise AssertionError(f"the server did not close the connection within {timeout} s")

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
