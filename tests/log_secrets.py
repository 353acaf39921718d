"""Scanning process logs for secrets: the Binance API secret, private-key PEM bodies, JWTs and the
passwords a test used. Any suite can call `assert_no_secrets(logs, ...)` on the log files it kept."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

# Three base64url parts, the first two JSON objects ("eyJ" is base64 of '{"'): any JWT, ours or not.
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")


def pem_body_lines(pem: bytes | str) -> list[str]:
    """The base64 lines of a PEM's body (its header and footer are not secret; any body line is)."""
    text = pem.decode() if isinstance(pem, bytes) else pem
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith("-----") and len(line.strip()) >= 16
    ]


def default_secrets() -> dict[str, str]:
    """What every suite's processes know and must never print: the demo Binance secret the workers
    sign with, the test JWT secret, and the body lines of this run's RSA and Ed25519 private keys."""
    from tests.paper.conftest import DEMO_SECRET, key_files
    from tests.processes import TEST_JWT_SECRET

    found = {"BINANCE_API_SECRET": DEMO_SECRET, "JWT_SECRET": TEST_JWT_SECRET}
    for kind in ("rsa", "ed25519"):
        for n, line in enumerate(pem_body_lines(key_files()[f"{kind}_private"].read_bytes())):
            found[f"{kind} private key line {n + 1}"] = line
    return found


def find_secrets(logs: Mapping[str, str], secrets: Mapping[str, str]) -> list[str]:
    """Every (log, what) pair where a secret or a JWT shows; empty when the logs are clean."""
    hits = []
    for name, text in logs.items():
        for what, value in secrets.items():
            if value and value in text:
                hits.append(f"{name}: {what}")
        for match in JWT_RE.finditer(text):
            hits.append(f"{name}: a JWT ({match.group()[:12]}…)")
    return hits


def assert_no_secrets(
    logs: Mapping[str, str], extra: Mapping[str, str] | None = None, files: Iterable[str | Path] = ()
) -> None:
    """Fail naming each log and secret found. `logs` maps a process name to its log text; `files`
    adds log files by path; `extra` adds secrets (e.g. a Redis password) to `default_secrets()`."""
    every = dict(logs)
    for path in files:
        every[str(path)] = Path(path).read_text(encoding="utf-8", errors="replace")
    assert every, "no logs to scan"
    hits = find_secrets(every, {**default_secrets(), **(extra or {})})
    assert not hits, "secrets in process logs:\n" + "\n".join(hits)
