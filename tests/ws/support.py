"""Test helpers for the WebSocket API: a stand-in for the stream relay that writes the Redis contract
(docs/streams-protocol.md) by hand, and a small synchronous client (the `websockets` library)."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


class Relay:
    """Publishes what `python -m workers.stream` would, so the web tier is tested on its own."""

    def __init__(self, redis_url: str, prefix: str):
        self.redis = redis.Redis.from_url(redis_url)
        self.prefix = prefix

    def publish(self, channel: str, kind: str, data, **extra) -> int:
        message = {"type": kind, "channel": channel, "data": data, **extra}
        return self.redis.publish(f"{self.prefix}md:{channel}", json.dumps(message))

    def ticker(self, symbol: str, price: str) -> None:
        self.publish(f"ticker:{symbol}", "ticker", {"symbol": symbol, "price": price, "lastPrice": price,
                                                    "updatedAt": int(time.time() * 1000)})

    def trade(self, symbol: str, trade_id: int, padding: int = 0) -> None:
        data = {"id": trade_id, "price": "65000.00", "qty": "0.001", "time": int(time.time() * 1000),
                "isBuyerMaker": False}
        if padding:
            data["padding"] = "x" * padding
        self.publish(f"trades:{symbol}", "trade", data)

    def book(self, symbol: str, last_update_id: int, padding: int = 0) -> dict:
        book = {"lastUpdateId": last_update_id, "bids": [["100.00", "1.0"]], "asks": [["101.00", "2.0"]]}
        if padding:
            book["bids"] = [["100.00", "1.0"]] * padding
        self.redis.set(f"{self.prefix}book:{symbol}", json.dumps({**book, "updatedAt": int(time.time() * 1000)}))
        return book

    def diff(self, symbol: str, first: int, final: int, padding: int = 0) -> None:
        """As the relay does: the book is written with every diff, then the diff is published."""
        self.book(symbol, final)
        bids = [["100.00", str(final)]] * max(1, padding)
        self.publish(f"depth:{symbol}", "depth.diff", {"U": first, "u": final, "bids": bids, "asks": [], "E": 1})

    def user_event(self, n: int, publish: bool = True) -> str:
        """XADD the event to the stream, then publish it (the relay's order); returns its id."""
        event = {"e": "balanceUpdate", "E": int(time.time() * 1000), "a": "USDT", "d": str(n)}
        encoded = json.dumps(event)
        event_id = self.redis.xadd(f"{self.prefix}user:events", {"event": encoded}, maxlen=10000,
                                   approximate=True).decode()
        if publish:
            self.redis.publish(f"{self.prefix}md:user",
                               json.dumps({"type": "user", "channel": "user", "id": event_id, "data": event}))
        return event_id

    def kill_hub_connection(self) -> None:
        """Drop the web process's pub/sub connection, as a network blip or a Redis failover would."""
        name = f"{self.prefix}ws-hub"
        ids = [c["id"] for c in self.redis.client_list() if c.get("name") == name]
        assert len(ids) == 1, ids
        self.redis.client_kill_filter(_id=ids[0])

    def demand(self) -> dict[str, float]:
        return {m.decode(): s for m, s in self.redis.zrange(f"{self.prefix}stream:demand", 0, -1, withscores=True)}

    def subscribers(self, channel: str) -> int:
        return self.redis.pubsub_numsub(f"{self.prefix}md:{channel}")[0][1]

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
