"""The suite's own helpers: waits fail when nothing happens, and a stopped process leaves nothing behind."""

from __future__ import annotations

import os
import sys

import pytest

from tests.processes import Spawned
from tests.support import RUN_PREFIX, Deadline, in_one_minute, new_prefix, next_matching, wait_until


def test_wait_until_returns_the_first_truthy_value_and_fails_naming_what_it_waited_for():
    values = iter([0, None, "", "ready"])
    assert wait_until(lambda: next(values), 5, interval=0) == "ready"
    deadline = Deadline(0.2)
    with pytest.raises(AssertionError, match="the thing: not within 0.2 s\nlog tail"):
        wait_until(lambda: False, 0.2, "the thing", interval=0.01, detail=lambda: "log tail")
    assert deadline.passed()


def test_in_one_minute_runs_again_what_straddled_a_minute_and_gives_up_after_its_tries():
    readings = iter([110.0, 120.5, 121.0, 125.0])  # the first attempt ends in the next minute
    attempts = iter(["straddled", "whole"])
    assert in_one_minute(lambda: next(attempts), clock=lambda: next(readings)) == "whole"
    readings = iter([59.0, 60.0, 119.0, 120.0])
    with pytest.raises(AssertionError, match="2 attempts each straddled"):
        in_one_minute(lambda: None, tries=2, clock=lambda: next(readings))


def test_next_matching_hands_every_item_on_and_fails_when_the_source_runs_dry():
    items, seen = iter([1, 2, 3, 4]), []
    assert next_matching(lambda left: next(items, None), lambda n: n % 2 == 0 and n > 2, 5, on_item=seen.append) == 4
    assert seen == [1, 2, 3, 4]
    with pytest.raises(AssertionError, match="no even number within 1 s"):
        next_matching(lambda left: next(items, None), lambda n: n % 2 == 0, 1, "even number")


class Sleepers(Spawned):
    kind = "sleepers"
    stop_timeout = 2.0

    def __init__(self):
        # a parent that ignores SIGTERM and a child of its own: stop() must end both
        self._spawn(
            ["/bin/sh", "-c", f"trap '' TERM; {sys.executable} -c 'import time; time.sleep(60)' & echo child $!; wait"],
            dict(os.environ),
        )


def test_stop_ends_the_whole_process_group_and_removes_the_log():
    sleepers = Sleepers()
    child = int(
        wait_until(lambda: [line for line in sleepers.log_text().split() if line.isdigit()], 5, "the child's pid")[0]
    )
    log = sleepers.log_file.name
    sleepers.stop()
    sleepers.stop()  # idempotent
    assert sleepers.proc.poll() is not None
    assert not os.path.exists(log)
    wait_until(
        lambda: not os.path.exists(f"/proc/{child}") or "Z" in open(f"/proc/{child}/stat").read().split()[2],
        5,
        "the child gone",
    )


def test_every_prefix_of_a_run_is_under_its_run_prefix_which_the_run_end_deletes():
    first, second = new_prefix(), new_prefix()
    assert first != second and first.startswith(RUN_PREFIX) and second.startswith(RUN_PREFIX)
    assert RUN_PREFIX.startswith("sgtest:") and RUN_PREFIX.endswith(":")
