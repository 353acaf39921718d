"""The user data stream without I/O: account events from the core's order events, and the
WebSocket API requests that manage user data subscriptions (web-socket-api.md, user-data-stream.md).

    execution_report(event, ...)     an engine OrderEvent -> executionReport (every field Binance lists)
    BalanceWatch                     which assets of an account changed since the last outboundAccountPosition
    parse_request(text)              a WS-API request frame -> Request, or raises RequestError
    verify_signed_request            apiKey/timestamp/signature checks of userDataStream.subscribe.signature
                                     and session.logon (HMAC, RSA or Ed25519 keys: keys.py)
    session_status                   session.logon / session.status / session.logout's result
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from . import errors
from .engine import LIMIT_TYPES, OPEN_STATUSES, STOP_TYPES, Account, OrderEvent
from .errors import BinanceError
from .money import ZERO, floor8, fmt
from .params import valid_request_id

MAX_RECV_WINDOW = 60_000
MAX_ACTIVE_SUBSCRIPTIONS = 1_000
MAX_SUBSCRIPTION_IDS = 65_535
WEIGHTS = {
    "ping": 1,
    "time": 1,
    "userDataStream.subscribe.signature": 2,
    "userDataStream.unsubscribe": 2,
    "session.subscriptions": 2,
    "session.logon": 2,
    "session.status": 2,
    "session.logout": 2,
    "userDataStream.subscribe": 2,
}
CONNECT_WEIGHT = 2
_ID_RE = re.compile(r"^[a-zA-Z0-9\-_]{1,36}$")
_ID_MSG = "Invalid 'id' in JSON request; expected an integer, a string matching '^[a-zA-Z0-9-_]{1,36}$', or null."


# -- events -----------------------------------------------------------------------------------------


def execution_report(event: OrderEvent, execution_id: int, now: int) -> dict:
    """The executionReport of one order state change, rendered at the moment it happened (the order
    object keeps changing). A cancel's c/C are completed by `complete_cancel` once the engine has
    assigned the cancel's client order id."""
    order, fill = event.order, event.fill
    on_book = (
        order.status in OPEN_STATUSES
        and order.is_working
        and order.type in LIMIT_TYPES
        and order.time_in_force in (None, "GTC")
    )
    report = {
        "e": "executionReport",
        "E": now,
        "s": order.symbol,
        "c": order.client_order_id,
        "S": order.side,
        "o": order.type,
        "f": order.time_in_force or "GTC",
        "q": fmt(order.orig_qty),
        "p": fmt(order.price),
        "P": fmt(order.stop_price),
        "F": fmt(ZERO),
        "g": -1,
        "C": "",
        "x": event.execution,
        "X": order.status,
        "r": event.reject_reason,
        "i": order.order_id,
        "l": fmt(fill.qty if fill else ZERO),
        "z": fmt(order.executed_qty),
        "L": fmt(fill.price if fill else ZERO),
        "n": fmt(fill.commission) if fill else "0",
        "N": fill.commission_asset if fill else None,
        "T": event.time,
        "t": fill.trade_id if fill else -1,
        "I": execution_id,
        "w": on_book,
        "m": event.is_maker if fill else False,
        "M": False,
        "O": order.time,
        "Z": fmt(order.cum_quote),
        "Y": fmt(floor8(fill.price * fill.qty) if fill else ZERO),
        "Q": fmt(order.orig_quote_qty),
    }
    untriggered_stop = order.type in STOP_TYPES and not order.is_working and event.execution == "NEW"
    if order.working_time >= 0 and not untriggered_stop:
        report["W"] = order.working_time
    report["V"] = "NONE"
    if event.execution == "EXPIRED" and order.expiry_reason is not None:
        report["eR"] = order.expiry_reason  # since 2026-03-26
    return report


def complete_cancel(report: dict, order) -> None:
    """CANCELED: `c` is the cancel request's client order id, `C` the canceled order's own."""
    if order.cancel_client_order_id is not None:
        report["c"] = order.cancel_client_order_id
        report["C"] = order.orig_client_order_id or order.client_order_id


def account_position(account: Account, assets: list[str], now: int) -> dict:
    return {
        "e": "outboundAccountPosition",
        "E": now,
        "u": account.update_time,
        "B": [{"a": a, "f": fmt(account.balance(a).free), "l": fmt(account.balance(a).locked)} for a in assets],
    }


def balance_update(asset: str, delta: Decimal, now: int) -> dict:
    return {"e": "balanceUpdate", "E": now, "a": asset, "d": fmt(delta), "T": now}


def listen_key_expired(key: str, now: int) -> dict:
    return {"e": "listenKeyExpired", "E": now, "listenKey": key}


def event_stream_terminated(now: int) -> dict:
    return {"e": "eventStreamTerminated", "E": now}


def server_shutdown(now: int) -> dict:
    return {"e": "serverShutdown", "E": now}


class BalanceWatch:
    """Balances last reported per watched account, so outboundAccountPosition lists exactly the
    assets whose free or locked amount changed."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, tuple[Decimal, Decimal]]] = {}

    def watch(self, account: Account) -> None:
        if account.name not in self.seen:
            self.seen[account.name] = self._now(account)

    def forget(self, name: str) -> None:
        self.seen.pop(name, None)

    def changed(self, account: Account) -> list[str]:
        before = self.seen.get(account.name, {})
        now = self._now(account)
        self.seen[account.name] = now
        return sorted(a for a, v in now.items() if before.get(a, (ZERO, ZERO)) != v)

    @staticmethod
    def _now(account: Account) -> dict[str, tuple[Decimal, Decimal]]:
        return {a: (b.free, b.locked) for a, b in account.balances.items()}


# -- WebSocket API requests -------------------------------------------------------------------------


class RequestError(Exception):
    def __init__(self, request_id, error: BinanceError):
        super().__init__(error.msg)
        self.request_id, self.error = request_id, error


@dataclass(frozen=True)
class Request:
    id: int | str | None
    method: str
    params: dict


def _valid_id(value) -> bool:
    return valid_request_id(value, _ID_RE)


def parse_request(text: str | bytes) -> Request:
    """`{"id", "method", "params"}` as web-socket-api.md's "Request format" describes it."""
    try:
        message = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestError(None, BinanceError(-1135, "Invalid JSON Request")) from None
    if not isinstance(message, dict):
        raise RequestError(None, BinanceError(-1135, "Invalid JSON Request"))
    if "id" not in message or not _valid_id(message["id"]):
        raise RequestError(None, BinanceError(-1135, _ID_MSG))
    request_id = message["id"]
    method = message.get("method")
    if not isinstance(method, str) or not method:
        raise RequestError(request_id, errors.mandatory_missing("method"))
    if method.startswith("v3/"):
        method = method[3:]
    params = message.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RequestError(request_id, BinanceError(-1135, "JSON sent for parameter 'params' is not valid"))
    return Request(request_id, method, params)


def unknown_method() -> BinanceError:
    return errors.unsupported_operation()


def check_unread(params: dict, read: set[str]) -> None:
    """Binance refuses parameters a method does not take (-1104)."""
    used = len(set(params) & read)
    if used != len(params):
        raise errors.unread_parameters(used, len(params))


def signature_payload(params: dict) -> str:
    """Every parameter but `signature`, sorted by name, as name=value joined by & (the docs'
    "SIGNED request example (HMAC)"); values as the client sent them."""
    return "&".join(f"{name}={_text(params[name])}" for name in sorted(params) if name != "signature")


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value).removesuffix(".0") if value.is_integer() else repr(value)
    return str(value)


def _millis(name: str, value) -> Decimal:
    if isinstance(value, bool) or value is None or value == "":
        raise errors.mandatory_missing(name)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise errors.invalid_parameter(name) from None
    if not number.is_finite():
        raise errors.invalid_parameter(name)
    return number


def verify_signed_request(params: dict, api_keys: dict, now: int):
    """The apiKey/timestamp/signature checks of a SIGNED WebSocket API request (parameters apiKey,
    timestamp, signature, recvWindow): returns the `keys.ApiKey` the signature proves, or raises
    Binance's error (-1102 missing/oversized, -2014/-2015 key, -1022 signature, -1021 time).
    The signature covers `signature_payload(params)` in UTF-8 (not percent-encoded, as
    web-socket-api.md says), verified by the key's kind."""
    for name in ("apiKey", "timestamp", "signature"):
        if params.get(name) in (None, ""):
            raise errors.mandatory_missing(name)
    check_unread(params, {"apiKey", "timestamp", "signature", "recvWindow", "returnRateLimits"})
    timestamp = _millis("timestamp", params["timestamp"])
    if timestamp != timestamp.to_integral_value() or timestamp < 0:
        raise errors.invalid_parameter("timestamp")
    if timestamp >= 10**14:  # microseconds are accepted too
        timestamp /= 1000
    recv_window = Decimal(5000)
    if params.get("recvWindow") is not None:
        recv_window = _millis("recvWindow", params["recvWindow"])
        if recv_window > MAX_RECV_WINDOW:
            raise BinanceError(
                -1102, f"'recvWindow' contains unexpected value. Cannot be greater than {MAX_RECV_WINDOW}."
            )
        if recv_window <= 0 or recv_window.as_tuple().exponent < -3:  # type: ignore[operator]
            raise errors.invalid_parameter("recvWindow")
    key, signature = params["apiKey"], params["signature"]
    if not isinstance(key, str) or not key.isalnum() or len(key) > 128:
        raise errors.api_key_format_invalid()
    api_key = api_keys.get(key)
    if api_key is None:
        raise errors.rejected_api_key()
    if not api_key.verify(signature_payload(params).encode(), signature):
        raise errors.invalid_signature()
    if timestamp >= now + 1000:
        raise errors.timestamp_ahead()
    if now - timestamp > recv_window:
        raise errors.timestamp_outside_window()
    return api_key


def session_status(
    api_key: str | None,
    authorized_since: int | None,
    connected_since: int,
    return_rate_limits: bool,
    now: int,
    user_data_stream: bool,
) -> dict:
    """The result of session.logon, session.status and session.logout (web-socket-api.md), field for
    field; apiKey and authorizedSince are null on a connection that is not logged on."""
    return {
        "apiKey": api_key,
        "authorizedSince": authorized_since,
        "connectedSince": connected_since,
        "returnRateLimits": return_rate_limits,
        "serverTime": now,
        "userDataStream": user_data_stream,
    }


def response(request_id, result, rate_limits: list | None) -> dict:
    body = {"id": request_id, "status": 200, "result": result}
    if rate_limits is not None:
        body["rateLimits"] = rate_limits
    return body


def error_response(request_id, error: BinanceError, rate_limits: list | None) -> dict:
    body = {"id": request_id, "status": error.http_status, "error": error.body()}
    if rate_limits is not None:
        body["rateLimits"] = rate_limits
    return body


def weight_limits(limit: int, used: int) -> list[dict]:
    return [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": limit, "count": used}]
