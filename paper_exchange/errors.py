"""Binance error replies, with the exact codes and messages of Binance's errors.md.

Every rejection the paper exchange makes is a `BinanceError`: an HTTP status plus Binance's
`{"code", "msg"}` body. The messages are Binance's verbatim because clients (ccxt, python-binance
users) choose their exception by the text.

    BinanceError(http_status, code, msg)
      raised by the matching core (rejections) and by the REST adapter (parameters, security, limits)
"""

from __future__ import annotations


class BinanceError(Exception):
    """A rejection with Binance's HTTP status, error code and message."""

    def __init__(self, code: int, msg: str, http_status: int = 400, retry_after: int | None = None):
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.retry_after = retry_after

    def body(self) -> dict:
        return {"code": self.code, "msg": self.msg}


# -- general --------------------------------------------------------------------------------------


def unknown() -> BinanceError:
    return BinanceError(-1000, "An unknown error occurred while processing the request.", 500)


def disconnected() -> BinanceError:
    return BinanceError(-1001, "Internal error; unable to process your request. Please try again.", 500)


def backend_timeout(http_status: int = 408) -> BinanceError:
    return BinanceError(
        -1007,
        "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
        http_status,
    )


def too_much_weight(limit: int, retry_after: int) -> BinanceError:
    return BinanceError(
        -1003,
        f"Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
        429,
        retry_after,
    )


def ip_banned(until_ms: int, retry_after: int) -> BinanceError:
    return BinanceError(
        -1003,
        f"Way too much request weight used; IP banned until {until_ms}. "
        "Please use WebSocket Streams for live updates to avoid bans.",
        418,
        retry_after,
    )


def too_many_orders(limit: int, interval: str, retry_after: int) -> BinanceError:
    return BinanceError(
        -1015, f"Too many new orders; current limit is {limit} orders per {interval}.", 429, retry_after
    )


def unsupported_operation(http_status: int = 400) -> BinanceError:
    return BinanceError(-1020, "This operation is not supported.", http_status)


def timestamp_outside_window() -> BinanceError:
    return BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")


def timestamp_ahead() -> BinanceError:
    return BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")


def invalid_signature() -> BinanceError:
    return BinanceError(-1022, "Signature for this request is not valid.")


# -- parameters (-11xx) ---------------------------------------------------------------------------


def illegal_chars(name: str, legal: str) -> BinanceError:
    return BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def duplicate_parameter() -> BinanceError:
    return BinanceError(-1101, "Duplicate values for a parameter detected.")


def mandatory_missing(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def one_of_missing(a: str, b: str) -> BinanceError:
    return BinanceError(-1102, f"Param '{a}' or '{b}' must be sent, but both were empty/null!")


def value_too_large(name: str, maximum: int) -> BinanceError:
    return BinanceError(-1102, f"'{name}' contains unexpected value. Cannot be greater than {maximum}.")


def unread_parameters(read: int, sent: int) -> BinanceError:
    return BinanceError(-1104, f"Not all sent parameters were read; read '{read}' parameter(s) but was sent '{sent}'.")


def param_empty(name: str) -> BinanceError:
    return BinanceError(-1105, f"Parameter '{name}' was empty.")


def param_not_required(name: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.")


def param_overflow(name: str) -> BinanceError:
    return BinanceError(-1108, f"Parameter '{name}' overflowed.")


def bad_precision(name: str) -> BinanceError:
    return BinanceError(-1111, f"Parameter '{name}' has too much precision.")


def tif_not_required() -> BinanceError:
    return BinanceError(-1114, "TimeInForce parameter sent when not required.")


def invalid_tif() -> BinanceError:
    return BinanceError(-1115, "Invalid timeInForce.")


def invalid_order_type() -> BinanceError:
    return BinanceError(-1116, "Invalid orderType.")


def invalid_side() -> BinanceError:
    return BinanceError(-1117, "Invalid side.")


def empty_new_client_order_id() -> BinanceError:
    return BinanceError(-1118, "New client order ID was empty.")


def empty_orig_client_order_id() -> BinanceError:
    return BinanceError(-1119, "Original client order ID was empty.")


def bad_interval() -> BinanceError:
    return BinanceError(-1120, "Invalid interval.")


def bad_symbol() -> BinanceError:
    return BinanceError(-1121, "Invalid symbol.")


def invalid_listen_key() -> BinanceError:
    return BinanceError(-1125, "This listenKey does not exist.")


def bad_combo() -> BinanceError:
    return BinanceError(-1128, "Combination of optional parameters invalid.")


def invalid_parameter(name: str) -> BinanceError:
    return BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.")


def invalid_json(name: str) -> BinanceError:
    return BinanceError(-1135, f"JSON sent for parameter '{name}' is not valid")


def duplicate_symbols() -> BinanceError:
    return BinanceError(-1151, "Symbol is present multiple times in the list.")


# -- matching engine (-2010 / -2011 / -2013) and filters (-1013) -----------------------------------


def new_order_rejected(msg: str) -> BinanceError:
    return BinanceError(-2010, msg)


def cancel_rejected(msg: str = "Unknown order sent.") -> BinanceError:
    return BinanceError(-2011, msg)


def no_such_order() -> BinanceError:
    return BinanceError(-2013, "Order does not exist.")


def filter_failure(name: str) -> BinanceError:
    return BinanceError(-1013, f"Filter failure: {name}")


def unsupported_combination() -> BinanceError:
    return BinanceError(-1014, "Unsupported order combination.")


def price_qty_zero() -> BinanceError:
    return BinanceError(-2010, "Price * QTY is zero or less.")


def api_key_format_invalid() -> BinanceError:
    return BinanceError(-2014, "API-key format invalid.", 401)


def rejected_api_key() -> BinanceError:
    return BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)


DUPLICATE_ORDER = "Duplicate order sent."
INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
UNKNOWN_ORDER = "Unknown order sent."
WOULD_TRIGGER = "Order would trigger immediately."
WOULD_TAKE = "Order would immediately match and take."
MARKET_CLOSED = "Market is closed."
NO_LIQUIDITY = "Order book liquidity is less than symbol minimum quantity."
