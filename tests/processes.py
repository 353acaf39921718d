"""Real processes for integration tests, started as a user would start them and stopped with
everything they spawned: the paper exchange, the gateway's web process, Celery workers (with or
without embedded beat), the stream relay, a private redis-server, and any Procfile process type.

Every class here is a `Spawned`: output goes to a log file (`log_text()`), the process runs in its own
process group, and `stop()` (idempotent; also `with ... as p:`) SIGTERMs the group, SIGKILLs what is
left after a grace period, and removes the log. A constructor that fails half-way stops what it
started. The `spawn` fixture (tests/conftest.py) starts any of them for one test and stops them all
after it, also when the test fails.

Waiting (with deadlines, never fixed sleeps) and key-prefix cleanup live in tests/support.py.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlencode

import jwt
import requests

from tests.support import Deadline, new_prefix

ROOT = Path(__file__).resolve().parents[1]
TEST_JWT_SECRET = "test-only-jwt-secret-" + "x" * 24
# Upstream drops in tests are injected on purpose: reconnect in a fraction of a second, not 1-30 s.
FAST_RECONNECT = {"STREAM_RECONNECT_BASE": "0.2", "STREAM_RECONNECT_MAX": "2"}
# The paper exchange's demo HMAC key (the default it accepts) and its default API keys for the RSA
# and Ed25519 public keys (Binance's doc examples).
DEMO_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DEMO_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
RSA_KEY = "CAvIjXy3F44yW6Pou5k8Dy1swsYDWJZLeoK2r8G4cFDnE9nosRppc2eKc1T8TRTQ"
ED25519_KEY = "4yNzx3yWC5bS6YTwEkSRaC0nRmSQIIStAUOh1b6kqaBrTLIhjCpI5lJH8q8R8WNO"
# Binance credentials the web tier and the relay must never hold (unless a test passes them on purpose,
# to see the process drop them).
SECRETS = ("BINANCE_API_KEY", "BINANCE_API_SECRET")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_answers(
    url: str,
    proc: subprocess.Popen,
    timeout: float = 20.0,
    log: str | None = None,
    ok=lambda response: response.status_code < 500,
    request_timeout: float = 1.0,
) -> None:
    """Until GET `url` answers (`ok(response)`); fails at once, with the log's tail, when `proc` exits."""
    deadline = Deadline(timeout)
    while True:
        if proc.poll() is not None:
            out = open(log, errors="replace").read() if log else ""
            raise RuntimeError(f"process exited ({proc.returncode}) before {url} answered:\n{out[-3000:]}")
        try:
            # A read timeout just means "not ready yet" (a port can accept before the app answers).
            if ok(requests.get(url, timeout=request_timeout)):
                return
        except requests.RequestException:
            pass
        if deadline.passed():
            out = open(log, errors="replace").read() if log else ""
            raise RuntimeError(f"{url} did not answer within {timeout} s:\n{out[-3000:]}")
        time.sleep(0.05)


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM one process (not a group), SIGKILL after `timeout`; for processes a test starts itself."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Spawned:
    """One process under test in its own process group, its output in a log file."""

    kind = "process"
    stop_timeout = 10.0

    def _spawn(self, command: list[str], env: dict[str, str], cwd: Path = ROOT) -> None:
        # Output goes to a file, not a pipe: a chatty process must never block on a full pipe.
        self.log_file = tempfile.NamedTemporaryFile(prefix=f"spotgate-{self.kind}-", suffix=".log", delete=False)
        self.env = env
        self.proc = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True
        )  # its own group: stop() ends its children too

    def log_text(self) -> str:
        """The process's output so far; after stop() (which removes the file), what it had written."""
        if getattr(self, "_final_log", None) is not None:
            return self._final_log
        with open(self.log_file.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def running(self) -> bool:
        return self.proc.poll() is None

    def _wait_ready(self, url: str, timeout: float, **options) -> None:
        try:
            wait_until_answers(url, self.proc, timeout=timeout, log=self.log_file.name, **options)
        except BaseException:
            self.stop()  # never leave a half-started process behind a failed fixture
            raise

    def sigterm(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the whole group; the leader's exit code, or None if it still runs after `timeout`."""
        _kill_group(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL the process and every process it started."""
        _kill_group(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def _close(self) -> None:
        """Anything else the process owned (sessions, directories)."""

    def stop(self, graceful: bool = True) -> None:
        """SIGTERM the group (the process shuts down as it would in production), SIGKILL what is left
        after `stop_timeout`; `graceful=False` SIGKILLs at once (`discard()`)."""
        if getattr(self, "_stopped", False):
            return
        self._stopped = True
        try:
            if not hasattr(self, "proc"):
                return
            if graceful and self.proc.poll() is None and self.sigterm(self.stop_timeout) is None:
                pass  # killed below
            # whatever is left of the group (a leader that ignored SIGTERM, children it left behind)
            _kill_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        finally:
            self._close()
            if hasattr(self, "log_file"):
                self.log_file.close()
                try:
                    self._final_log = self.log_text()  # a test may still scan it (secrets, errors)
                    os.unlink(self.log_file.name)
                except FileNotFoundError:
                    pass

    def discard(self) -> None:
        """Stop at once (SIGKILL), for a teardown after which nothing of the process is looked at and
        its key prefix is deleted: a worker's or relay's graceful shutdown takes 1-2 s, and a test that
        is about how a process stops calls `stop()` or `sigterm()` itself."""
        self.stop(graceful=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# -- the paper exchange ---------------------------------------------------------------------------------


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


class PaperProcess(Spawned):
    """`python -m paper_exchange` on a free loopback port, plus a small signed-request client written
    from Binance's docs (deliberately independent of binance_client/, so a shared signing bug cannot
    hide)."""

    kind = "paper"

    def __init__(self, seed: int = 7, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key, self.secret = DEMO_KEY, DEMO_SECRET
        keys = key_files()
        self.http = requests.Session()
        self._spawn(
            [sys.executable, "-m", "paper_exchange", "--port", str(self.port)],
            {
                **os.environ,
                "PAPER_SEED": str(seed),
                "PAPER_HISTORY_MINUTES": "120",
                "PAPER_RSA_PUBLIC_KEY_FILE": str(keys["rsa_public"]),
                "PAPER_ED25519_PUBLIC_KEY_FILE": str(keys["ed25519_public"]),
                **env,
            },
        )
        # The port accepts connections while the exchange still builds its history, so the first
        # answer can take a while.
        self._wait_ready(self.url + "/api/v3/ping", 20.0, ok=lambda r: r.status_code == 200, request_timeout=5)

    def _close(self) -> None:
        self.http.close()

    # -- requests ------------------------------------------------------------------------------

    def get(self, path: str, **params) -> requests.Response:
        return self.http.get(self.url + path, params=params, timeout=10)

    def sign(self, payload: str, secret: str | None = None) -> str:
        """HMAC-SHA256 hex of the exact payload (query string + body, as sent)."""
        return hmac.new((secret or self.secret).encode(), payload.encode(), hashlib.sha256).hexdigest()

    def signed(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        secret: str | None = None,
        in_body: bool = False,
        key_type: str = "hmac",
        **params,
    ) -> requests.Response:
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

    def reset(self) -> None:
        """What one test leaves for the next on a shared exchange: no fault rules, fresh rate-limit
        counters, a running market (balances and orders are the tests' own business)."""
        self.admin("DELETE", "faults")
        self.admin("POST", "limits", {"reset": True})
        self.resume()


# -- the gateway's processes ----------------------------------------------------------------------------


class WebProcess(Spawned):
    """`sanic app:create_app --factory` against a given Binance URL and Redis, with its own key prefix."""

    kind = "web"

    def __init__(self, binance_url: str, redis_url: str, prefix: str | None = None, *, workers: int = 1, **env: str):
        """`workers` > 1: `--workers N` (Sanic's main process and N worker processes, as WEB_CONCURRENCY
        runs it) instead of `--single-process`."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix = prefix or new_prefix()
        self.workers = workers
        self.http = requests.Session()
        # The web tier must never hold Binance credentials: run it without them, unless a test passes
        # them on purpose (to see the process drop them).
        inherited = {k: v for k, v in os.environ.items() if k not in SECRETS}
        self._spawn(
            [
                sys.executable,
                "-m",
                "sanic",
                "app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *(["--workers", str(workers)] if workers > 1 else ["--single-process"]),
                "--no-motd",
                "--no-access-logs",
            ],
            {
                **inherited,
                "SPOTGATE_MODE": "paper",
                "BINANCE_API_URL": binance_url,
                "REDIS_URL": redis_url,
                "REDIS_KEY_PREFIX": self.prefix,
                "JWT_SECRET": TEST_JWT_SECRET,
                "LOG_LEVEL": "WARNING",
                **env,
            },
        )
        # N workers each import the whole app (spawned interpreters): slower on a busy machine
        self._wait_ready(self.url + "/health", 20.0 if workers == 1 else 60.0)

    def token(self, role: str = "viewer", sub: str = "tester", ttl: int = 3600, **claims) -> str:
        now = int(time.time())
        payload = {
            "sub": sub,
            "role": role,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            "typ": "access",
            **claims,
        }
        return jwt.encode(payload, TEST_JWT_SECRET, algorithm="HS256")

    def get(self, path: str, token: str | None = None, role: str = "viewer", **params) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token(role)}"} if token != "" else {}
        return self.http.get(self.url + path, params=params, headers=headers, timeout=30)

    def _close(self) -> None:
        self.http.close()


class WorkerProcess(Spawned):
    """`celery -A workers.celery_app worker` (with embedded beat unless beat=False); `kill()` SIGKILLs
    the whole worker, children included."""

    kind = "worker"
    stop_timeout = 20.0

    def __init__(
        self, binance_url: str, redis_url: str, prefix: str, *, concurrency: int = 2, beat: bool = True, **env: str
    ):
        self.schedule_dir = tempfile.mkdtemp(prefix="spotgate-beat-")
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.celery_app",
            "worker",
            "-Q",
            "orders,default",
            "-c",
            str(concurrency),
            "-l",
            "WARNING",
            "-n",
            f"test-{uuid.uuid4().hex[:8]}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
        if beat:
            command += ["-B", "-s", os.path.join(self.schedule_dir, "beat-schedule")]
        self._spawn(
            command,
            {
                **os.environ,
                "SPOTGATE_MODE": "paper",
                "BINANCE_API_URL": binance_url,
                "REDIS_URL": redis_url,
                "REDIS_KEY_PREFIX": prefix,
                "LOG_LEVEL": "WARNING",
                "BROKER_VISIBILITY_TIMEOUT": "10",
                **env,
            },
        )

    def _close(self) -> None:
        shutil.rmtree(self.schedule_dir, ignore_errors=True)


class RelayProcess(Spawned):
    """`python -m workers.stream` against a paper exchange (anything with `.url` and `.port`), with its
    own key prefix (unless given), without the API secret."""

    kind = "stream"

    def __init__(self, paper, redis_url: str, prefix: str | None = None, **env: str):
        self.prefix = prefix or new_prefix()
        inherited = {k: v for k, v in os.environ.items() if k not in SECRETS}
        self._spawn(
            [sys.executable, "-m", "workers.stream"],
            {
                **inherited,
                "SPOTGATE_MODE": "paper",
                "REDIS_URL": redis_url,
                "REDIS_KEY_PREFIX": self.prefix,
                "BINANCE_API_URL": paper.url,
                "BINANCE_STREAM_URL": f"ws://127.0.0.1:{paper.port}",
                "BINANCE_WS_API_URL": f"ws://127.0.0.1:{paper.port}/ws-api/v3",
                "LOG_LEVEL": "INFO",
                **FAST_RECONNECT,
                **env,
            },
        )


class RedisServer(Spawned):
    """A private `redis-server` on a free loopback port (the suite's shared Redis is never reconfigured).

    With `tls=True` it listens only on a TLS port with a self-signed certificate made here (for
    127.0.0.1 and localhost, as Heroku Redis's is self-signed), and requires `password`. `url` is the
    bare URL a Redis add-on gives (no ssl_cert_reqs); `client()` connects verifying the certificate.
    """

    kind = "redis"

    def __init__(self, *, tls: bool = False, password: str | None = None):
        import redis

        if shutil.which("redis-server") is None:
            import pytest

            pytest.skip("redis-server is not installed")
        self.dir = tempfile.mkdtemp(prefix="spotgate-redis-")
        self.port = free_port()
        self.password = password
        command = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir]
        if password:
            command += ["--requirepass", password]
        self.ca_file: str | None = None
        if tls:
            self.ca_file, key_file = self._self_signed_certificate()
            command += [
                "--port",
                "0",
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                self.ca_file,
                "--tls-key-file",
                key_file,
                "--tls-ca-cert-file",
                self.ca_file,
                "--tls-auth-clients",
                "no",
            ]
        else:
            command += ["--port", str(self.port)]
        auth = f":{password}@" if password else ""
        self.url = f"{'rediss' if tls else 'redis'}://{auth}127.0.0.1:{self.port}/0"
        self._spawn(command, dict(os.environ))
        client = self.client()
        deadline = Deadline(10)
        try:
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if self.proc.poll() is not None or deadline.passed():
                        raise RuntimeError(f"private redis-server did not start:\n{self.log_text()[-2000:]}") from None
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        finally:
            client.close()

    def client_options(self) -> dict:
        return {"ssl_ca_certs": self.ca_file} if self.ca_file else {}

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, **self.client_options())

    def _self_signed_certificate(self) -> tuple[str, str]:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        cert_file, key_file = os.path.join(self.dir, "redis.crt"), os.path.join(self.dir, "redis.key")
        with open(cert_file, "wb") as f:
            f.write(certificate.public_bytes(serialization.Encoding.PEM))
        with open(key_file, "wb") as f:
            f.write(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        return cert_file, key_file

    def _close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def procfile_command(name: str, procfile: str = "Procfile") -> str:
    """The command line of process type `name` in the Procfile, as Heroku or honcho would run it."""
    for line in (ROOT / procfile).read_text().splitlines():
        kind, sep, command = line.partition(":")
        if sep and kind.strip() == name and not line.lstrip().startswith("#"):
            return command.strip()
    raise KeyError(f"no {name!r} process in {procfile}")


class ProcfileProcess(Spawned):
    """One Procfile process type run as Heroku runs it: `bash -c '<command>'` with the project's
    venv first on PATH, in its own process group (a dyno: SIGTERM reaches every process in it)."""

    stop_timeout = 20.0

    def __init__(
        self, name: str, env: dict[str, str], *, replace: dict[str, str] | None = None, procfile: str = "Procfile"
    ):
        self.name = self.kind = name
        command = procfile_command(name, procfile)
        for old, new in (replace or {}).items():
            command = command.replace(old, new)
        self.command = command
        self._spawn(
            ["/bin/bash", "-c", command],
            {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", **env},
        )
