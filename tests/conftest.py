"""Fixtures shared by the whole suite: the Redis that `make test` provisioned."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis every process under test shares; `make test` exports REDIS_URL."""
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix unique to this test run; its keys are deleted when the run ends.

    Runs share one Redis (a developer's, or CI's), so nothing may touch keys outside it.
    """
    prefix = f"sgtest:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        # SCAN, not KEYS: KEYS blocks a shared Redis for as long as it walks the keyspace.
        batch = []
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
    finally:
        client.close()
