"""Everything that can go wrong talking to Binance, as one tree.

    BinanceError                    base: http_status, code, msg, rate-limit info of the response
    ├── RejectedError               Binance answered 4xx with a code: the request was refused
    │   ├── AuthError               -2014/-2015 (HTTP 401), -1022: key or signature refused
    │   ├── ClockSkewError          -1021: timestamp outside recvWindow; resync the clock, retry
    │   ├── NotFoundError           -2013 order does not exist / -2011 unknown order on cancel
    │   └── OrderRejectedError      -2010 / -1013 / -11xx on an order: definitive, never retried
    ├── RateLimitedError            429 (-1003 / -1015): wait `retry_after` seconds
    │   └── IpBannedError           418: the IP is banned until `retry_after` has passed
    ├── UnknownOutcomeError         5xx, -1006, -1007, connection lost after sending: the request
    │                               MAY have been executed (look an order up before resending)
    │   └── TimeoutError_           no answer within the timeout
    ├── UnavailableError            could not connect at all: nothing was sent
    └── BudgetSpentError            our own shared weight budget (budget.py) is spent: Binance was
                                    not called; `retry_after` says when the budget has room again

`classify(status, body, headers)` builds the right one from an HTTP answer.
"""

from __future__ import annotations

from .ratelimit import RateLimitInfo

UNKNOWN_OUTCOME_CODES = {-1006, -1007}
AUTH_CODES = {-2014, -2015, -1022, -1002}


class BinanceError(Exception):
    def __init__(
        self,
        msg: str,
        *,
        http_status: int = 0,
        code: int | None = None,
        rate_limits: RateLimitInfo | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(f"{code}: {msg}" if code is not None else msg)
        self.msg = msg
        self.http_status = http_status
        self.code = code
        self.rate_limits = rate_limits or RateLimitInfo()
        self.retry_after = retry_after


class RejectedError(BinanceError):
    pass


class AuthError(RejectedError):
    pass


class ClockSkewError(RejectedError):
    pass


class NotFoundError(RejectedError):
    pass


class OrderRejectedError(RejectedError):
    pass


class RateLimitedError(BinanceError):
    pass


class IpBannedError(RateLimitedError):
    pass


class UnknownOutcomeError(BinanceError):
    pass


class TimeoutError_(UnknownOutcomeError):
    pass


class UnavailableError(BinanceError):
    pass


class BudgetSpentError(BinanceError):
    """`paused_by` is 429 or 418 when Binance itself told every process to wait, else None (our
    own count reached the ceiling of this kind of call)."""

    def __init__(self, retry_after: float, *, used: int = 0, ceiling: int = 0, paused_by: int | None = None):
        super().__init__(
            "Upstream request-weight budget is spent"
            if paused_by is None
            else f"Binance answered {paused_by}: waiting before calling again",
            http_status=429,
            retry_after=retry_after,
        )
        self.used = used
        self.ceiling = ceiling
        self.paused_by = paused_by


def classify(status: int, body, rate_limits: RateLimitInfo) -> BinanceError:
    """The error for a non-2xx answer (`body` is the decoded JSON, or None)."""
    code = body.get("code") if isinstance(body, dict) else None
    text = body.get("msg") if isinstance(body, dict) else None
    msg = text if isinstance(text, str) else f"HTTP {status}"

    def error(kind: type[BinanceError]) -> BinanceError:
        return kind(msg, http_status=status, code=code, rate_limits=rate_limits, retry_after=rate_limits.retry_after)

    if status == 418:
        return error(IpBannedError)
    if status == 429:
        return error(RateLimitedError)
    if status >= 500 or status == 408 or code in UNKNOWN_OUTCOME_CODES:
        return error(UnknownOutcomeError)
    if status == 401 or code in AUTH_CODES:
        return error(AuthError)
    if code == -1021:
        return error(ClockSkewError)
    if code in (-2013, -2011) and msg in ("Order does not exist.", "Unknown order sent."):
        return error(NotFoundError)
    if code in (-2010, -1013, -2011) or (code is not None and -1199 <= code <= -1100):
        return error(OrderRejectedError)
    return error(RejectedError)
