"""The worker's signing key: BINANCE_PRIVATE_KEY (the PEM) or BINANCE_PRIVATE_KEY_FILE is read at start,
and a worker that cannot use it refuses to start (exit status non-zero, the variable named) instead of
failing every task."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.processes import ROOT, key_files
from tests.support import new_prefix


def start_worker(redis_url: str, **env: str) -> subprocess.CompletedProcess:
    environ = {
        **os.environ,
        "SPOTGATE_MODE": "paper",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": new_prefix(),
        **env,
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.celery_app",
            "worker",
            "-Q",
            "default",
            "-c",
            "1",
            "-l",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "path, why",
    [
        ("/nonexistent/key.pem", "cannot read /nonexistent/key.pem"),
        (None, "not a PEM private key"),  # a public key where the private key belongs
    ],
)
def test_a_worker_without_a_usable_private_key_refuses_to_start(redis_url, path, why):
    done = start_worker(redis_url, BINANCE_PRIVATE_KEY_FILE=path or str(key_files()["ed25519_public"]))
    assert done.returncode != 0
    output = done.stderr + done.stdout
    assert "refuses to start: BINANCE_PRIVATE_KEY_FILE" in output and why in output


def test_a_worker_with_an_unusable_private_key_in_its_environment_refuses_to_start(redis_url):
    public = key_files()["ed25519_public"].read_text().strip().replace("\n", "\\n")
    done = start_worker(redis_url, BINANCE_PRIVATE_KEY=public)  # a public key where the private key belongs
    assert done.returncode != 0
    output = done.stderr + done.stdout
    assert "refuses to start: BINANCE_PRIVATE_KEY:" in output and "not a PEM private key" in output
    assert "BEGIN PUBLIC KEY" not in output  # the key itself is never printed
