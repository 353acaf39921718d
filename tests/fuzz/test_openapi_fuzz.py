"""A bounded schemathesis pass against the running gateway (web process, Celery worker, paper exchange,
Redis): every phase, every check, a fixed seed, with an admin token and without one. It holds the
OpenAPI document to what the server does: no 5xx, no answer outside its schema, no undocumented
status, no schema-valid request refused as malformed (hooks.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import System

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
SEED = "20261202"
PHASES = "examples,coverage,fuzzing,stateful"
# The fuzzer's own session must survive its run: logout would end it. Its subject has a space, which
# no schema-valid DELETE /api/v1/auth/subjects/{sub}/tokens can name, so it cannot revoke itself either.
FUZZER_SUBJECT = "schema fuzzer"

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def system(redis_url):
    s = System(redis_url, seed=17, paper_env={"PAPER_BALANCES": "USDT:1000000,BTC:100,ETH:1000,BNB:1000"})
    yield s
    s.stop()


def fuzz(system: System, *extra: str) -> subprocess.CompletedProcess:
    st = Path(sys.executable).with_name("st")
    reports = HERE / ".reports"
    command = [
        str(st),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        system.web.url + "/docs/openapi.json",
        "--seed",
        SEED,
        "--phases",
        PHASES,
        "--checks",
        "all",
        "--workers",
        "1",
        "--exclude-operation-id",
        "logout",
        "--no-color",
        # No example database: each run is the seed's alone, never replays of earlier runs.
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-dir",
        str(reports),
        *extra,
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=540)
    reports.mkdir(exist_ok=True)
    (reports / f"{'admin' if extra else 'anonymous'}.txt").write_text(result.stdout + result.stderr)
    return result


def assert_clean(result: subprocess.CompletedProcess) -> None:
    # The whole output is in tests/fuzz/.reports/; the summary is what the assertion shows.
    summary = result.stdout[result.stdout.rfind("SUMMARY") - 200 :] if "SUMMARY" in result.stdout else result.stdout
    failures = [line for line in result.stdout.splitlines() if line.lstrip().startswith(("❌", "- ", "[", "_"))]
    assert result.returncode == 0, "\n".join(failures[:80])[:6000] + "\n" + summary[-3000:] + result.stderr[-2000:]


def test_fuzzing_with_an_admin_token_finds_nothing(system):
    token = system.web.token("admin", sub=FUZZER_SUBJECT, ttl=3600)
    assert_clean(fuzz(system, "--header", f"Authorization: Bearer {token}"))
    # The exchange's books still balance: whatever the fuzzer did, nothing was created or lost.
    assert system.paper.admin("GET", "totals").status_code == 200


def test_fuzzing_without_a_token_finds_nothing(system):
    assert_clean(fuzz(system))
