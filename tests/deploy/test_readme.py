"""The README's examples, run as written against a live stack (paper exchange, worker, stream relay,
web): every block marked `<!-- readme-test: shell|python|node -->`, with only the ports changed to
this stack's. A README example that stops working fails here instead of on a newcomer's machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from tests.e2e.conftest import System
from tests.processes import ROOT, TEST_JWT_SECRET

pytestmark = pytest.mark.integration

BLOCK = re.compile(r"<!-- readme-test: (\w+)(, errors expected)? -->\n```\w+\n(.*?)\n```", re.S)
README = (ROOT / "README.md").read_text()
BLOCKS = [(kind, bool(errors), code) for kind, errors, code in BLOCK.findall(README)]
# The routes a newcomer tries first: each must be in a tested example.
ROUTES = (
    "app.tokens issue",
    "/api/v1/ticker/price",
    "/api/v1/klines",
    "/api/v1/depth",
    '-d \'{"symbol"',
    "/api/v1/order?symbol=BTCUSDT&orderId=$ORDER_ID",
    "-XDELETE",
    "/api/v1/jobs/$JOB_ID",
    "/api/v1/account",
    "/api/v1/positions",
    "ws://127.0.0.1:8000/ws",
)


def test_the_readme_marks_an_example_for_every_route_a_newcomer_tries():
    tested = "\n".join(code for _, _, code in BLOCKS)
    assert {kind for kind, _, _ in BLOCKS} == {"shell", "python", "node"}
    assert [route for route in ROUTES if route not in tested] == []


@pytest.fixture(scope="module")
def system(redis_url):
    s = System(redis_url, seed=103, relay_env={}, web_env={"ORDER_SYNC_WAIT": "10"})
    yield s
    s.stop()


def localize(code: str, system: System) -> str:
    code = code.replace("127.0.0.1:8000", f"127.0.0.1:{system.web.port}")
    return code.replace("127.0.0.1:8900", f"127.0.0.1:{system.paper.port}").replace(
        "localhost:8900", f"localhost:{system.paper.port}"
    )


def environment(system: System) -> dict[str, str]:
    # what a `make run` shell has: the gateway's JWT secret for `app.tokens`, the project's venv
    return {
        **os.environ,
        "JWT_SECRET": TEST_JWT_SECRET,
        "SPOTGATE_MODE": "paper",
        "REDIS_URL": system.redis_url,
        "REDIS_KEY_PREFIX": system.prefix,
    }


def run(kind: str, code: str, system: System) -> subprocess.CompletedProcess:
    env = environment(system)
    if kind == "shell":
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
    suffix = ".py" if kind == "python" else ".mjs"
    with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False) as f:
        f.write(code)
    try:
        if kind == "python":
            command = [str(ROOT / ".venv" / "bin" / "python"), f.name]
        else:
            command = ["node", *node_websocket_flag(), f.name]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(f.name)


def node_websocket_flag() -> list[str]:
    """Node 22+ has a global WebSocket; Node 20 needs --experimental-websocket (as the README says)."""
    probe = subprocess.run(["node", "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"])
    return [] if probe.returncode == 0 else ["--experimental-websocket"]


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(BLOCKS)])
def test_readme_example_runs_as_written(system, index):
    kind, errors_expected, code = BLOCKS[index]
    if kind == "node" and shutil.which("node") is None:
        pytest.skip("node is not installed")
    result = run(kind, localize(code, system), system)
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert result.stdout.strip(), result.stderr[-2000:]
    if kind == "shell":
        assert ('"error":{' in result.stdout) == errors_expected, result.stdout[-3000:]
        printed = sum(1 for line in code.splitlines() if line.startswith("curl "))  # not those in $(...)
        assert result.stdout.count('"requestId":') >= printed, result.stdout[-3000:]
    elif kind == "python":
        assert re.search(r"^ticker:BTCUSDT \d", result.stdout, re.M) and "welcome" in result.stdout, result.stdout
    else:
        assert re.search(r"^\d+ bid \d", result.stdout, re.M) and "closed" in result.stdout, result.stdout
