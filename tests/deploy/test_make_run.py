"""`make run` as a developer uses it: the ports given move both the gateway and the paper exchange, a
"ready" line with the URLs comes once every process answers, and Ctrl-C ends everything cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile

import pytest
import requests

from tests.processes import ROOT, free_port
from tests.support import eventually, new_prefix

pytestmark = pytest.mark.integration


def test_make_run_moves_both_ports_says_ready_and_stops_cleanly_on_ctrl_c(redis_url):
    web_port, paper_port = free_port(), free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": new_prefix()}
    env.pop("MAKEFLAGS", None)
    out = tempfile.NamedTemporaryFile(prefix="spotgate-make-run-", suffix=".log", delete=False)
    make = subprocess.Popen(
        ["make", "run", f"WEB_PORT={web_port}", f"PAPER_PORT={paper_port}"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def text() -> str:
        with open(out.name, errors="replace") as f:
            return f.read()

    try:
        ready = eventually(
            lambda: (
                re.search(r"spotgate ready in [0-9.]+ s: gateway (\S+) .*paper exchange (\S+)\.", text())
                or make.poll() is not None
            ),
            120,
            interval=0.2,
            what="the ready line",
        )
        assert make.poll() is None, text()[-3000:]
        assert ready.groups() == (f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{paper_port}")
        assert requests.get(f"http://127.0.0.1:{web_port}/health/ready", timeout=5).status_code == 200
        assert requests.get(f"http://127.0.0.1:{paper_port}/api/v3/ping", timeout=5).status_code == 200
        # the gateway's upstream is this paper exchange, not the default port
        status = requests.get(f"http://127.0.0.1:{web_port}/health/ready", timeout=5).json()["data"]
        assert status["checks"]["upstream"]["ok"]
        command = re.search(r"Try: (.+)$", text(), re.M).group(1)
        tried = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
        assert '"symbol":"BTCUSDT"' in tried.stdout, tried.stdout + tried.stderr

        os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C in the terminal does: the whole foreground group
        make.wait(timeout=40)
        log = text()
        assert "make: ***" not in log and "Traceback" not in log, log[-3000:]
        assert "SIGINT received" in log
        for port in (web_port, paper_port):
            with pytest.raises(requests.ConnectionError):
                requests.get(f"http://127.0.0.1:{port}/", timeout=2)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGTERM)
            try:
                make.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(make.pid, signal.SIGKILL)
        try:
            os.killpg(make.pid, signal.SIGKILL)  # anything of the group left behind
        except ProcessLookupError:
            pass
        out.close()
        os.unlink(out.name)
