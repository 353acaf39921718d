"""The web process as operators start it: refusals at start-up, and logs that never carry secrets."""

from __future__ import annotations

import os
import subprocess
import sys

from services.contract.keys import Keys
from tests.processes import ROOT, RedisServer, RelayProcess, WebProcess, free_port, stop_process
from tests.support import delete_prefix, wait_until

SIGNING = {
    "BINANCE_API_SECRET": "not-for-the-web-tier-5ecret",
    "BINANCE_PRIVATE_KEY_FILE": "/secret/key.pem",
    "BINANCE_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\\nnot-for-the-web-tier\\n-----END PRIVATE KEY-----",
    "BINANCE_PRIVATE_KEY_PASSPHRASE": "not-for-the-web-tier-pa55",
}


def initial_environment(pid: int) -> dict[str, str]:
    """What the kernel keeps of a process's environment (/proc/<pid>/environ), as anything running as
    the same user can read it."""
    with open(f"/proc/{pid}/environ", "rb") as f:
        entries = f.read().split(b"\0")
    return dict(e.decode(errors="replace").partition("=")[::2] for e in entries if e)


def test_the_web_process_holds_no_binance_credential_in_its_environment(upstream, redis_url):
    # One config for every process type (Heroku): the web process is started with the worker's secrets.
    web = WebProcess(upstream.url, redis_url, BINANCE_API_KEY="the-api-key-value", **SIGNING)
    try:
        assert web.get("/api/v1/ticker/price", symbol="BTCUSDT").status_code == 200
        environ = initial_environment(web.proc.pid)
        cmdline = open(f"/proc/{web.proc.pid}/cmdline", "rb").read().split(b"\0")
    finally:
        web.stop()
    for name in ("BINANCE_API_KEY", *SIGNING):
        assert name not in environ, name
    assert environ["REDIS_URL"] == redis_url  # the rest of the configuration is still there
    assert b"app:create_app" in cmdline and b"--port" in cmdline


def test_the_stream_process_holds_no_signing_secret_in_its_environment(upstream, redis_url):
    import redis as redis_client

    relay = RelayProcess(
        upstream, redis_url, BINANCE_API_KEY="the-api-key-value", USER_STREAM_MODE="listen-key", **SIGNING
    )
    client = redis_client.Redis.from_url(redis_url)
    try:
        # the relay is up and reporting
        wait_until(
            lambda: client.get(Keys(relay.prefix).stream_status) is not None or not relay.running(),
            20,
            "the relay's status report",
            detail=lambda: relay.log_text()[-2000:],
        )
        assert relay.running(), relay.log_text()[-2000:]
        environ = initial_environment(relay.proc.pid)
    finally:
        relay.stop()
        delete_prefix(client, relay.prefix)
        client.close()
    for name in SIGNING:
        assert name not in environ, name
    assert environ["BINANCE_API_KEY"] == "the-api-key-value"  # the key alone signs nothing


def test_live_mode_refuses_to_start_with_the_dev_jwt_secret(redis_url):
    env = {**os.environ, "SPOTGATE_MODE": "live", "REDIS_URL": redis_url}
    env.pop("JWT_SECRET", None)
    env.pop("JWT_PUBLIC_KEY", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sanic",
            "app:create_app",
            "--factory",
            "--port",
            str(free_port()),
            "--single-process",
            "--no-motd",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        out, _ = proc.communicate(timeout=30)
    finally:
        stop_process(proc)
    assert proc.returncode != 0
    assert b"JWT_SECRET" in out


def test_paper_mode_web_process_refuses_the_dev_jwt_secret_against_binance(redis_url):
    # An operator who sets a real Binance URL but forgets SPOTGATE_MODE=live.
    env = {**os.environ, "REDIS_URL": redis_url, "BINANCE_API_URL": "https://api.binance.com"}
    for name in ("SPOTGATE_MODE", "JWT_SECRET", "JWT_PUBLIC_KEY"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sanic",
            "app:create_app",
            "--factory",
            "--port",
            str(free_port()),
            "--single-process",
            "--no-motd",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        out, _ = proc.communicate(timeout=30)
    finally:
        stop_process(proc)
    assert proc.returncode != 0
    assert b"dev-only default is refused unless the upstream is the loopback paper exchange" in out


def test_access_log_has_request_lines_but_never_the_token(upstream, redis_url):
    web = WebProcess(upstream.url, redis_url, LOG_LEVEL="INFO")
    token = web.token("viewer")
    try:
        assert web.get("/api/v1/ticker/price", token=token, symbol="BTCUSDT").status_code == 200
        assert web.get("/api/v1/ticker/price", token=token, symbol="NOPE").status_code == 400
        log = web.log_text()
    finally:
        web.stop()
    assert "route=/api/v1/ticker/price" in log and "status=200" in log and "status=400" in log
    assert token not in log and token.split(".")[2] not in log


def test_redis_refusing_writes_is_a_503_and_changes_nothing(upstream):
    """A Redis that fails mid-request (here: out of memory, so reads work and writes are refused) is
    answered 503 REDIS_UNAVAILABLE with Retry-After, never a 500; what was asked for did not happen.
    A private redis-server: the suite's shared one must never be reconfigured."""
    server = RedisServer()
    client = server.client()
    web = None
    try:
        web = WebProcess(upstream.url, server.url)
        admin = {"Authorization": f"Bearer {web.token('admin')}"}
        limits = {"allowedSymbols": ["BTCUSDT"]}
        assert web.http.put(web.url + "/api/v1/risk/limits", json=limits, headers=admin, timeout=10).status_code == 200

        client.config_set("maxmemory", 1)  # noeviction: every write is refused with OOM from now on
        for method, path, body in (
            ("PUT", "/api/v1/risk/limits", {"allowedSymbols": ["ETHUSDT"]}),
            ("POST", "/api/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}),
        ):
            answer = web.http.request(
                method, web.url + path, json=body, headers={**admin, "Prefer": "respond-async"}, timeout=10
            )
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "REDIS_UNAVAILABLE" and answer.headers["Retry-After"] == "1"
        client.config_set("maxmemory", 0)
        assert web.get("/api/v1/risk/limits", role="admin").json()["data"]["allowedSymbols"] == ["BTCUSDT"]
        assert not [k for k in client.scan_iter(match=f"{web.prefix}job:*")]  # no order was queued
    finally:
        if web is not None:
            web.stop()
        client.close()
        server.stop()
