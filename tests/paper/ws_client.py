"""WebSocket helpers for the paper exchange's stream tests, written from Binance's docs (websocket-client)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from decimal import Decimal

import websocket

from tests.processes import PaperProcess
from tests.support import next_matching


def ws_url(px: PaperProcess, path: str) -> str:
    return f"ws://127.0.0.1:{px.port}{path}"


def connect(px: PaperProcess, path: str, timeout: float = 5.0) -> websocket.WebSocket:
    return websocket.create_connection(ws_url(px, path), timeout=timeout)


def recv_json(ws: websocket.WebSocket, timeout: float = 5.0):
    ws.settimeout(timeout)
    return json.loads(ws.recv())


def wait_for(ws: websocket.WebSocket, predicate, timeout: float = 10.0, what: str = "a matching message"):
    """Read messages until one satisfies `predicate`; returns it (and fails after `timeout`)."""

    def next_message(left: float):
        if left <= 0:
            return None
        try:
            return recv_json(ws, left)
        except websocket.WebSocketTimeoutException:
            return None

    return next_matching(next_message, predicate, timeout, what)


def reply_to(ws: websocket.WebSocket, request_id, timeout: float = 5.0):
    """The control/WS-API reply carrying `request_id` (stream data on the way is skipped)."""
    return wait_for(
        ws,
        lambda m: isinstance(m, dict) and "id" in m and m["id"] == request_id and ("result" in m or "error" in m),
        timeout,
        f"reply to id {request_id}",
    )


def closed_by_server(ws: websocket.WebSocket, timeout: float = 10.0) -> int | None:
    """Read until the server closes the connection; returns its close code (None for a cut TCP
    connection). Fails if the connection is still open after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ws.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            opcode, frame = ws.recv_data_frame(control_frame=True)
        except websocket.WebSocketTimeoutException:
            continue
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
            return None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            data = frame.data
            return int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
    raise AssertionError(f"connection still open after {timeout} s")


def api_request(ws: websocket.WebSocket, request_id, method: str, params: dict | None = None, timeout: float = 5.0):
    body = {"id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    ws.send(json.dumps(body))
    return wait_for(ws, lambda m: m.get("id") == request_id and "status" in m, timeout, f"response {request_id}")


def signed_params(px: PaperProcess, key: str | None = None, secret: str | None = None, **extra) -> dict:
    """userDataStream.subscribe.signature params: HMAC over every param but signature, sorted by
    name (web-socket-api.md, "SIGNED request example (HMAC)")."""
    params = {"apiKey": key or px.key, "timestamp": int(time.time() * 1000), **extra}
    payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
    params["signature"] = hmac.new((secret or px.secret).encode(), payload.encode(), hashlib.sha256).hexdigest()
    return params


def user_event(ws: websocket.WebSocket, event_type: str, timeout: float = 10.0, **fields):
    """The next user data event of a type (unwrapping WS-API `event` / combined `data`)."""

    def unwrap(m):
        if isinstance(m, dict) and "event" in m:
            return m["event"]
        if isinstance(m, dict) and "data" in m and "stream" in m:
            return m["data"]
        return m

    found = wait_for(
        ws,
        lambda m: (
            isinstance(unwrap(m), dict)
            and unwrap(m).get("e") == event_type
            and all(unwrap(m).get(k) == v for k, v in fields.items())
        ),
        timeout,
        f"{event_type} {fields}",
    )
    return found


class LocalBook:
    """A local order book kept by Binance's documented procedure ("How to manage a local order
    book correctly", web-socket-streams.md)."""

    def __init__(self, snapshot: dict):
        self.update_id = snapshot["lastUpdateId"]
        self.bids = {Decimal(p): Decimal(q) for p, q in snapshot["bids"]}
        self.asks = {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}
        self.applied = 0

    def apply(self, event: dict) -> bool:
        """Apply one diff event; False means a gap (the book must be rebuilt)."""
        if event["u"] < self.update_id:
            return True
        if event["U"] > self.update_id + 1:
            return False
        for side, levels in ((self.bids, event["b"]), (self.asks, event["a"])):
            for price, qty in levels:
                price, qty = Decimal(price), Decimal(qty)
                if qty == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        self.update_id = event["u"]
        self.applied += 1
        return True

    def as_depth(self) -> dict:
        return {
            "lastUpdateId": self.update_id,
            "bids": sorted(self.bids.items(), key=lambda kv: -kv[0]),
            "asks": sorted(self.asks.items()),
        }


def rest_depth(snapshot: dict) -> dict:
    return {
        "lastUpdateId": snapshot["lastUpdateId"],
        "bids": [(Decimal(p), Decimal(q)) for p, q in snapshot["bids"]],
        "asks": [(Decimal(p), Decimal(q)) for p, q in snapshot["asks"]],
    }
