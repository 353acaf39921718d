"""Answering a waiting web request: the result (or the error, as services.outcomes shapes it) is
pushed to the reply list the web process is blocked on (BLPOP), and expires if nobody reads it."""

from __future__ import annotations

from typing import Callable

import orjson

from binance_client.errors import BinanceError
from services.outcomes import error_from_binance
from workers.resources import resources

REPLY_TTL = 60


def answer(reply_to: str, work: Callable[[], object]) -> None:
    try:
        message = {"ok": True, "data": work()}
    except BinanceError as exc:
        message = {"ok": False, "error": error_from_binance(exc)}
    redis = resources().redis
    pipe = redis.pipeline()
    pipe.lpush(reply_to, orjson.dumps(message))
    pipe.expire(reply_to, REPLY_TTL)
    pipe.execute()
