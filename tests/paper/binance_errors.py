"""Checks that an HTTP response is a Binance error reply, judged by Binance's own errors.md data."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import requests

ERRORS_JSON = Path(__file__).resolve().parents[1] / "data" / "binance" / "errors.json"


@cache
def _catalogue() -> dict:
    return json.loads(ERRORS_JSON.read_text())


def _pattern(message: str) -> re.Pattern:
    # errors.md writes placeholders as %s (and once %d); each matches any text.
    parts = re.split(r"%[sd]", message)
    return re.compile(
        "".join(re.escape(part) + (".*" if i < len(parts) - 1 else "") for i, part in enumerate(parts)) + r"\Z",
        re.DOTALL,
    )


@cache
def messages_for(code: int) -> tuple[str, ...]:
    """Every message Binance documents for `code`: its own list plus the sections that name it
    (-2010/-2011 share the matching engine's messages; -1013 carries the filter failures)."""
    data = _catalogue()
    entry = data["codes"].get(str(code))
    messages = list(entry["messages"]) if entry else []
    for title, rows in data["messages_by_section"].items():
        if str(code) in title or (code == -1013 and title == "Filter failures"):
            messages.extend(row["msg"] for row in rows)
    return tuple(messages)


def is_binance_message(code: int, msg: str) -> bool:
    return any(_pattern(known).match(msg) for known in messages_for(code))


def error_body(resp: requests.Response, server_error: bool = False) -> dict:
    """The `{"code", "msg"}` body of an error reply; fails on HTML, any other shape, and on a 5xx
    unless one was asked for (`server_error=True`, e.g. an injected fault)."""
    assert resp.status_code >= 400, f"not an error: {resp.status_code} {resp.text[:300]}"
    assert server_error or resp.status_code < 500, (
        f"{resp.request.method} {resp.url} crashed: {resp.status_code} {resp.text[:300]}"
    )
    content_type = resp.headers.get("Content-Type", "")
    assert content_type.startswith("application/json"), f"not JSON ({content_type}): {resp.text[:300]}"
    assert "<html" not in resp.text.lower()
    body = resp.json()
    assert isinstance(body, dict) and set(body) == {"code", "msg"}, body
    assert isinstance(body["code"], int) and not isinstance(body["code"], bool), body
    assert isinstance(body["msg"], str), body
    assert is_binance_message(body["code"], body["msg"]), (
        f"{body['msg']!r} is not among Binance's messages for {body['code']}: {messages_for(body['code'])}"
    )
    return body


def assert_error(resp: requests.Response, status: int, code: int, msg: str | None = None) -> dict:
    """`resp` is Binance's error reply with this status and code (and exact msg when given)."""
    body = error_body(resp)
    assert (resp.status_code, body["code"]) == (status, code), (resp.status_code, body)
    if msg is not None:
        assert body["msg"] == msg
    return body
