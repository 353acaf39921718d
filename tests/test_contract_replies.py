"""The reply-list RPC (services/contract/replies.py): what a task sends is what a waiting web request
or stream relay reads, within its deadline, and an unread reply does not stay in Redis."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
import redis.asyncio as aioredis

from services.contract.keys import Keys
from services.contract.replies import (
    REPLY_TTL,
    AsyncReplies,
    Replies,
    deadline_after,
    failure,
    new_reply_to,
    past,
    success,
)


@pytest.fixture
def keys(redis_prefix):
    return Keys(f"{redis_prefix}replies:")


@pytest.mark.integration
def test_a_reply_reaches_a_blocking_and_an_asyncio_waiter_and_expires_unread(redis_url, keys):
    client = redis.Redis.from_url(redis_url)
    replies = Replies(client)
    try:
        reply_to = new_reply_to(keys)
        assert reply_to.startswith(keys.prefix + "reply:") and reply_to != new_reply_to(keys)
        replies.send(reply_to, success({"orderId": 7}))
        assert 0 < client.ttl(reply_to) <= REPLY_TTL  # nobody reading it: it goes away
        assert replies.wait(reply_to, timeout=1) == {"ok": True, "data": {"orderId": 7}}

        error = {"code": "BINANCE_REJECTED", "message": "Unknown order sent.", "details": {"binanceCode": -2011}}
        replies.send(reply_to, failure(error))

        async def wait_async():
            waits = aioredis.Redis.from_url(redis_url)
            try:
                return await AsyncReplies(waits).wait(reply_to, timeout=1)
            finally:
                await waits.aclose()

        assert asyncio.run(wait_async()) == {"ok": False, "error": error}
        assert replies.wait(reply_to, timeout=0.1) is None  # nobody answered within the timeout
    finally:
        client.close()


def test_a_deadline_is_epoch_ms_and_passes():
    deadline = deadline_after(0.05)
    assert abs(deadline - (time.time() * 1000 + 50)) < 20
    assert not past(deadline) and not past(None)
    time.sleep(0.06)
    assert past(deadline)
