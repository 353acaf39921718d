"""Password hashes for AUTH_USERS: `scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`, salted, parameters embedded.

Hashes are made by `python -m app.tokens hash-password`; the web tier only verifies them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from config.settings import PASSWORD_HASH_RE

# 32 MiB of memory and ~0.1 s a hash: slow enough to blunt guessing, cheap enough for a login.
N, R, P = 2**15, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
MAX_N = 2**20

# Verified against when the user does not exist, so an unknown name costs as much as a wrong password.
UNKNOWN_USER_HASH = (
    f"scrypt${N}${R}${P}${base64.b64encode(bytes(SALT_BYTES)).decode()}${base64.b64encode(bytes(HASH_BYTES)).decode()}"
)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=128 * n * r * p + 16 * 1024 * 1024
    )


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("the password must not be empty")
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, N, R, P, HASH_BYTES)
    return f"scrypt${N}${R}${P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches; False for a wrong password or a hash we cannot read."""
    match = PASSWORD_HASH_RE.match(encoded)
    if not match:
        return False
    n, r, p = (int(match.group(i)) for i in (1, 2, 3))
    if not (2 <= n <= MAX_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        return False
    salt, expected = base64.b64decode(match.group(4)), base64.b64decode(match.group(5))
    if not expected:
        return False
    actual = _scrypt(password, salt, n, r, p, len(expected))
    return hmac.compare_digest(actual, expected)
