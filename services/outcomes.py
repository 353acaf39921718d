"""How a Binance error reads to our clients: one mapping, used by workers (job errors, replies) and by
the web tier (HTTP errors), so the same Binance answer always means the same status and code."""

from __future__ import annotations

from binance_client import errors as upstream

INSUFFICIENT = "Account has insufficient balance for requested action."


def failure(
    status: int, code: str, message: str, details: dict | None = None, retry_after: float | None = None
) -> dict:
    """An error as stored in jobs and replies: {httpStatus, code, message, details[, retryAfter]}."""
    error = {"httpStatus": status, "code": code, "message": message, "details": details or {}}
    if retry_after is not None:
        error["retryAfter"] = retry_after
    return error


def error_from_binance(exc: upstream.BinanceError) -> dict:
    details = {"binanceCode": exc.code, "binanceMsg": exc.msg} if exc.code is not None else {}
    retry = exc.retry_after
    if isinstance(exc, upstream.BudgetSpentError):
        # the same answers the web tier gives when its own reservation is refused (app/upstream.py)
        if exc.paused_by == 418:
            return failure(
                503, "UPSTREAM_BANNED", "Binance has banned this IP; waiting before calling again", {}, retry or 60
            )
        if exc.paused_by is not None:
            return failure(
                429, "UPSTREAM_RATE_LIMITED", "Binance rate limit reached; waiting before calling again", {}, retry or 1
            )
        return failure(
            429,
            "UPSTREAM_BUDGET_SPENT",
            "Upstream request-weight budget for this minute is spent",
            {"usedWeight": exc.used, "limit": exc.ceiling},
            retry or 1,
        )
    if isinstance(exc, upstream.IpBannedError):
        return failure(
            503, "UPSTREAM_BANNED", "Binance has banned this IP for exceeding its limits", details, retry or 60
        )
    if isinstance(exc, upstream.RateLimitedError):
        return failure(429, "UPSTREAM_RATE_LIMITED", "Binance rate limit reached", details, retry or 1)
    if isinstance(exc, upstream.TimeoutError_):
        return failure(504, "UPSTREAM_TIMEOUT", "Binance did not answer in time", {"retryAfter": 1}, 1)
    if isinstance(exc, upstream.UnavailableError):
        return failure(503, "UPSTREAM_UNAVAILABLE", "Binance is unreachable", {}, 1)
    if isinstance(exc, upstream.UnknownOutcomeError):
        return failure(503, "UPSTREAM_ERROR", "Binance failed to answer", details, 1)
    if isinstance(exc, upstream.AuthError):
        message = "Invalid signature" if exc.code == -1022 else "Invalid API key"
        return failure(401, "UPSTREAM_AUTH_REJECTED", message, details)
    if isinstance(exc, upstream.NotFoundError):
        return failure(404, "ORDER_NOT_FOUND", "Order not found", details)
    if exc.code == -2010 and exc.msg == INSUFFICIENT:
        return failure(400, "INSUFFICIENT_BALANCE", "Insufficient balance", details)
    if exc.code == -1013 or (exc.msg or "").startswith("Filter failure"):
        return failure(400, "FILTER_FAILURE", exc.msg, details)
    if isinstance(exc, upstream.OrderRejectedError):
        return failure(400, "ORDER_REJECTED", exc.msg, details)
    return failure(400, "BINANCE_REJECTED", exc.msg, details)
