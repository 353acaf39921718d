"""Fixtures shared by the whole suite: the Redis that `make test` provisioned, and processes started
for one test (tests/processes.py), stopped after it whatever the outcome."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support import RUN_PREFIX, delete_prefix, new_prefix


def shared_redis_url() -> str:
    """The Redis every process under test shares; `make test` exports REDIS_URL."""
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return shared_redis_url()


@pytest.fixture(scope="session")
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix unique to this test run; its keys are deleted when the run ends.

    Runs share one Redis (a developer's, or CI's), so nothing may touch keys outside it.
    """
    prefix = new_prefix()
    yield prefix
    delete_prefix(redis_url, prefix)


def pytest_sessionfinish(session, exitstatus) -> None:
    """After every fixture's teardown: delete what is left under this run's prefixes (a key a process
    wrote after its test's clean-up, or a test that kept none). A Redis gone by now leaves nothing to do."""
    import redis

    try:
        delete_prefix(shared_redis_url(), RUN_PREFIX)
    except redis.RedisError:
        pass


class Spawner:
    """`spawn(PaperProcess, seed=3)`: start any tests.processes class for this test; `spawn.prefix()`:
    a key prefix deleted after it. Everything is stopped (last started first) and deleted at teardown."""

    def __init__(self, redis_url: str):
        self.redis_url = redis_url
        self.started: list = []
        self.prefixes: list[str] = []

    def __call__(self, kind, *args, **kwargs):
        process = kind(*args, **kwargs)
        self.started.append(process)
        return process

    def prefix(self) -> str:
        prefix = new_prefix()
        self.prefixes.append(prefix)
        return prefix

    def close(self) -> None:
        failures = []
        for process in reversed(self.started):
            try:
                process.discard()  # the test is over: nothing of the process is looked at any more
            except Exception as exc:  # noqa: BLE001 (reported below, after everything is stopped)
                failures.append(exc)
        for prefix in self.prefixes:
            delete_prefix(self.redis_url, prefix)
        if failures:
            raise failures[0]


@pytest.fixture
def spawn(redis_url):
    spawner = Spawner(redis_url)
    yield spawner
    spawner.close()
