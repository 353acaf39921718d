"""Waiting and cleaning up, once for the whole suite.

Every wait in the tests has a deadline and says what it waited for when it fails; none sleeps a fixed
time to let something happen. Two shapes cover them:

- `wait_until(check, timeout, what)`: poll `check()` until it returns something truthy, and return it.
  For state only visible by asking (a job record, /metrics, the paper exchange's connection list, a
  process's log).
- `next_matching(next_item, predicate, timeout, what)`: take items from a source (`next_item(left)`
  returns an item, or None when `left` seconds pass with none) until one matches. For events a test
  receives (pub/sub messages, WebSocket frames), so a match is seen when it arrives.

`Deadline` is the clock both use, for loops that need their own shape.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from bench import _loadgen

T = TypeVar("T")

FINAL_JOB_STATES = ("succeeded", "failed")


class Deadline:
    """`timeout` seconds from now, on the monotonic clock."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.at = time.monotonic() + timeout

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() >= self.at


def wait_until(
    check: Callable[[], T],
    timeout: float,
    what: str = "the condition",
    interval: float = 0.05,
    detail: Callable[[], str] | None = None,
) -> T:
    """Poll `check()` until it returns something truthy; returns it. Fails after `timeout` seconds,
    naming `what` (and `detail()`, say a process's log tail, when given)."""
    deadline = Deadline(timeout)
    while True:
        value = check()
        if value:
            return value
        if deadline.passed():
            raise AssertionError(f"{what}: not within {timeout} s" + (f"\n{detail()}" if detail else ""))
        time.sleep(min(interval, deadline.left()) or interval)


def eventually(check: Callable[[], T], timeout: float, interval: float = 0.05, what: str = "the condition") -> T:
    """`wait_until` with the argument order older tests use."""
    return wait_until(check, timeout, what, interval)


def next_matching(
    next_item: Callable[[float], Any],
    predicate: Callable[[Any], bool],
    timeout: float,
    what: str = "a matching item",
    on_item: Callable[[Any], None] | None = None,
) -> Any:
    """The first item from `next_item(seconds_left)` (None: nothing arrived in time) that satisfies
    `predicate`; every item taken is handed to `on_item` first. Fails after `timeout` seconds."""
    deadline = Deadline(timeout)
    while True:
        item = next_item(deadline.left())
        if item is None:
            raise AssertionError(f"no {what} within {timeout} s")
        if on_item is not None:
            on_item(item)
        if predicate(item):
            return item


class SteppedClock:
    """A clock the test moves by hand (seconds since the epoch)."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def in_one_minute(attempt: Callable[[], T], tries: int = 3, clock: Callable[[], float] = time.time) -> T:
    """What `attempt()` observed, from a run that began and ended in one calendar minute. Budgets,
    quotas and Binance's weight windows count per minute, in processes whose clocks the test cannot
    set: an attempt that straddles a minute's end is discarded and run again (the next one starts
    just after it), instead of sleeping until a fresh minute before starting."""
    for _ in range(tries):
        minute = clock() // 60
        observed = attempt()
        if clock() // 60 == minute:
            return observed
    raise AssertionError(f"{tries} attempts each straddled a minute's end")


def wait_job(web, job_id: str, timeout: float = 20, token: str | None = None, role: str = "trader") -> dict:
    """GET /api/v1/jobs/<id> until the job is final; the job record. A job still running after
    `timeout` fails the test with its last state."""
    last: dict = {}

    def final() -> dict | None:
        nonlocal last
        last = web.get(f"/api/v1/jobs/{job_id}", token=token, role=role).json()["data"]
        return last if last["status"] in FINAL_JOB_STATES else None

    try:
        return wait_until(final, timeout, f"job {job_id} final")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {last}") from None


# -- Redis key prefixes ----------------------------------------------------------------------------------


RUN_PREFIX = f"sgtest:{uuid.uuid4().hex[:12]}:"
"""Every key prefix this test run hands out starts with it; tests/conftest.py deletes what is left under
it when the run ends (a key written after its test's own clean-up, a test that kept none)."""


def new_prefix() -> str:
    """A key prefix of its own for one deployment under test (deleted with `delete_prefix`)."""
    return f"{RUN_PREFIX}{uuid.uuid4().hex}:"


def delete_prefix(client, prefix: str) -> None:
    """Delete every key under `prefix` (a redis.Redis, or a URL to connect to). SCAN, not KEYS: KEYS
    blocks a shared Redis for as long as it walks the keyspace; UNLINK in batches."""
    own = isinstance(client, str)
    if own:
        import redis

        client = redis.Redis.from_url(client)
    try:
        _loadgen.delete_prefix(client, prefix)  # the benchmarks' own clean-up: one implementation
    finally:
        if own:
            client.close()
