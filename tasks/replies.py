"""Answering a waiting web request: the result (or the error, as services.outcomes shapes it) is
pushed to the reply list the web process is blocked on (BLPOP), and expires if nobody reads it
(the reply format and its expiry: services/contract/replies.py).

A request carries the moment its requester stops waiting (`deadline`, epoch ms). Work taken up after
it is not done at all: the client has been told the outcome is unknown and to look it up, so a cancel
queued behind a busy worker must not happen later behind its back. Work that started in time but
ends late is logged, so that outcome is visible to operators too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from binance_client.errors import BinanceError
from services.contract.replies import Replies, failure, past, success
from services.outcomes import error_from_binance
from workers.resources import resources

log = logging.getLogger("spotgate.replies")


def answer(reply_to: str, work: Callable[[], object], deadline: int | None = None, task: str = "") -> None:
    if past(deadline):
        log.warning("%s: not run — taken up after its requester stopped waiting (reply %s)", task, reply_to)
        return
    try:
        message = success(work())
    except BinanceError as exc:
        message = failure(error_from_binance(exc))
    if past(deadline):
        log.warning("%s: finished after its requester stopped waiting (reply %s, ok=%s)", task, reply_to, message["ok"])
    Replies(resources().redis).send(reply_to, message)
