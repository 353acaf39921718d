"""Pure signing functions for Binance's SIGNED security type (HMAC-SHA256)."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode


def hmac_sha256(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def signed_query(params: dict, secret: str, timestamp: int, recv_window: int | None = None) -> str:
    """The query string of a SIGNED REST request: params + recvWindow + timestamp + signature.

    The signature covers exactly the bytes sent before it, so it is computed over the encoded string.
    """
    items = [(k, wire(v)) for k, v in params.items() if v is not None]
    if recv_window is not None:
        items.append(("recvWindow", str(recv_window)))
    items.append(("timestamp", str(timestamp)))
    query = urlencode(items)
    return f"{query}&signature={hmac_sha256(secret, query)}"


def ws_api_params(params: dict, api_key: str, secret: str, timestamp: int, recv_window: int | None = None) -> dict:
    """Signed params for a WebSocket API request: HMAC over the params sorted by name (web-socket-api.md)."""
    signed = {k: v for k, v in params.items() if v is not None}
    signed["apiKey"] = api_key
    signed["timestamp"] = timestamp
    if recv_window is not None:
        signed["recvWindow"] = recv_window
    payload = "&".join(f"{k}={wire(signed[k])}" for k in sorted(signed))
    signed["signature"] = hmac_sha256(secret, payload)
    return signed


def wire(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
