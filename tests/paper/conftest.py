"""Fixtures for paper exchange tests: a real `python -m paper_exchange` process on a loopback port."""

from __future__ import annotations

import atexit
import base64
import hashlib
import hmac
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
DEMO_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DEMO_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
# the paper exchange's default API keys for its RSA and Ed25519 public keys (Binance's doc examples)
RSA_KEY = "CAvIjXy3F44yW6Pou5k8Dy1swsYDWJZLeoK2r8G4cFDnE9nosRppc2eKc1T8TRTQ"
ED25519_KEY = "4yNzx3yWC5bS6YTwEkSRaC0nRmSQIIStAUOh1b6kqaBrTLIhjCpI5lJH8q8R8WNO"


@lru_cache(maxsize=1)
def key_files() -> dict[str, Path]:
    """RSA and Ed25519 key pairs for this test run (every paper process registers the public ones),
    made the way `make` makes the demo keys, in a directory removed when the run ends."""
    from paper_exchange import demo_keys

    directory = Path(tempfile.mkdtemp(prefix="spotgate-test-keys-"))
    atexit.register(shutil.rmtree, directory, True)
    return demo_keys.ensure(directory)


def private_key(kind: str):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(key_files()[f"{kind}_private"].read_bytes(), password=None)


def asymmetric_signature(kind: str, payload: bytes) -> str:
    """Base64 RSASSA-PKCS1-v1_5/SHA-256 or Ed25519 signature (rest-api.md, "SIGNED Endpoint Examples")."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key = private_key(kind)
    raw = key.sign(payload, padding.PKCS1v15(), hashes.SHA256()) if kind == "rsa" else key.sign(payload)
    return base64.b64encode(raw).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PaperProcess:
    """A paper exchange subprocess plus a small signed-request client written from Binance's docs
    (deliberately independent of binance_client/, so a shared signing bug cannot hide)."""

    def __init__(self, seed: int = 7, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key, self.secret = DEMO_KEY, DEMO_SECRET
        keys = key_files()
        environ = {**os.environ, "PAPER_SEED": str(seed), "PAPER_HISTORY_MINUTES": "120",
                   "PAPER_RSA_PUBLIC_KEY_FILE": str(keys["rsa_public"]),
                   "PAPER_ED25519_PUBLIC_KEY_FILE": str(keys["ed25519_public"]), **env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "paper_exchange", "--port", str(self.port)],
            cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self.http = requests.Session()
        try:
            self._wait_until_ready(deadline=time.monotonic() + 20)
        except BaseException:
            self.stop()  # never leave a half-started exchange running behind a failed fixture
            raise

    def _wait_until_ready(self, deadline: float) -> None:
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"paper exchange exited: {self.proc.stdout.read().decode()[-2000:]}")
            try:
                # The port accepts connections while the exchange still builds its history, so the
                # first answer can take a while: a read timeout here just means "not ready yet".
                if self.http.get(self.url + "/api/v3/ping", timeout=5).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("paper exchange did not answer /api/v3/ping within 20 s")
            time.sleep(0.05)

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    # -- requests ------------------------------------------------------------------------------

    def get(self, path: str, **params) -> requests.Response:
        return self.http.get(self.url + path, params=params, timeout=10)

    def sign(self, payload: str, secret: str | None = None) -> str:
        """HMAC-SHA256 hex of the exact payload (query string + body, as sent)."""
        return hmac.new((secret or self.secret).encode(), payload.encode(), hashlib.sha256).hexdigest()

    def signed(self, method: str, path: str, *, key: str | None = None, secret: str | None = None,
               in_body: bool = False, key_type: str = "hmac", **params) -> requests.Response:
        """A SIGNED request; key_type "rsa" / "ed25519" signs with this run's key pair under the
        exchange's RSA / Ed25519 API key (base64, percent-encoded in the query)."""
        params.setdefault("timestamp", int(time.time() * 1000))
        query = urlencode(params)
        if key_type == "hmac":
            signature = self.sign(query, secret)
        else:
            signature = quote(asymmetric_signature(key_type, query.encode()), safe="")
            key = key or {"rsa": RSA_KEY, "ed25519": ED25519_KEY}[key_type]
        headers = {"X-MBX-APIKEY": key or self.key}
        payload = f"{query}&signature={signature}"
        if in_body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return self.http.request(method, self.url + path, data=payload, headers=headers, timeout=10)
        return self.http.request(method, f"{self.url}{path}?{payload}", headers=headers, timeout=10)

    def admin(self, method: str, path: str, body=None) -> requests.Response:
        return self.http.request(method, self.url + "/_paper/" + path, json=body, timeout=10)

    def balances(self) -> dict[str, tuple[str, str]]:
        account = self.signed("GET", "/api/v3/account").json()
        return {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]}

    def pause(self) -> None:
        assert self.admin("POST", "market", {"running": False}).status_code == 200

    def resume(self) -> None:
        assert self.admin("POST", "market", {"running": True}).status_code == 200


@pytest.fixture(scope="session")
def _paper_session():
    px = PaperProcess(seed=7)
    yield px
    px.stop()


@pytest.fixture
def paper(_paper_session):
    """One paper exchange for the session; tests must not assume balances others left. Fault rules
    a test adds are cleared after it, and so are the rate-limit counters (the whole suite's traffic
    would otherwise share one REQUEST_WEIGHT minute and end in 429s)."""
    yield _paper_session
    _paper_session.admin("DELETE", "faults")
    _paper_session.admin("POST", "limits", {"reset": True})
    _paper_session.resume()


@pytest.fixture
def fresh_paper():
    """A paper exchange of its own, for tests that need known balances or a quiet market."""
    px = PaperProcess(seed=11)
    yield px
    px.stop()


@pytest.fixture
def make_paper():
    """Start paper exchanges with their own PAPER_* settings: `make_paper(PAPER_WEIGHT_LIMIT="30")`.
    Every process started is stopped after the test."""
    started: list[PaperProcess] = []

    def start(seed: int = 13, **env: str) -> PaperProcess:
        px = PaperProcess(seed=seed, **env)
        started.append(px)
        return px

    yield start
    for px in started:
        px.stop()
