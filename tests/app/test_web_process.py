"""The web process as operators start it: refusals at start-up, and logs that never carry secrets."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.processes import ROOT, WebProcess, free_port, stop_process


def test_live_mode_refuses_to_start_with_the_dev_jwt_secret(redis_url):
    env = {**os.environ, "SPOTGATE_MODE": "live", "REDIS_URL": redis_url}
    env.pop("JWT_SECRET", None)
    env.pop("JWT_PUBLIC_KEY", None)
    proc = subprocess.Popen([sys.executable, "-m", "sanic", "app:create_app", "--factory", "--port", str(free_port()),
                             "--single-process", "--no-motd"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=30)
    finally:
        stop_process(proc)
    assert proc.returncode != 0
    assert b"JWT_SECRET" in out


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
