"""Logins and sessions as an attacker meets them: lockouts per user and per address that hold across
web processes, refresh-token reuse revoking the session, logout without the refresh token, and an
admin revoking every token of a subject (real web processes sharing one Redis prefix, paper exchange)."""

from __future__ import annotations

import time
import uuid

import pytest

from app.auth import Role, TokenCodec, TokenType
from app.passwords import hash_password
from config.settings import Settings
from tests.processes import TEST_JWT_SECRET, WebProcess
from tests.support import new_prefix, wait_until

PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def users() -> str:
    digest = hash_password(PASSWORD)
    return ",".join(
        f"{name}:{role}:{digest}"
        for name, role in (
            ("alice", "trader"),
            ("bob", "viewer"),
            ("carol", "viewer"),
            ("dave", "viewer"),
            ("erin", "admin"),
        )
    )


@pytest.fixture(scope="module")
def pair(upstream, redis_url, users):
    """Two web processes of one deployment (same prefix), as two dynos behind a router."""
    prefix = new_prefix()
    env = {
        "AUTH_USERS": users,
        "LOGIN_MAX_FAILURES": "3",
        "LOGIN_IP_MAX_FAILURES": "6",
        "LOGIN_LOCKOUT": "1",
        "LOGIN_LOCKOUT_MAX": "4",
        # Behind one proxy (as on Heroku): the client address is X-Forwarded-For's last entry.
        "SANIC_PROXIES_COUNT": "1",
    }
    first = WebProcess(upstream.url, redis_url, prefix, **env)
    second = WebProcess(upstream.url, redis_url, prefix, **env)
    yield first, second
    first.stop()
    second.stop()


def login(web: WebProcess, username: str, password: str, ip: str = "198.51.100.1"):
    return web.http.post(
        web.url + "/api/v1/auth/login",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": ip},
        timeout=30,
    )


def post(web: WebProcess, path: str, body: dict | None = None, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return web.http.post(web.url + path, json=body, headers=headers, timeout=30)


def code(response) -> str:
    return response.json()["error"]["code"]


def refused_everywhere(webs, token: str) -> bool:
    """A revocation made on one process reaches the others within REVOCATION_RECHECK (1 s): poll for it."""
    try:
        wait_until(
            lambda: [w.get("/api/v1/auth/me", token=token).status_code for w in webs] == [401] * len(webs),
            5,
            "the revocation on every process",
            interval=0.1,
        )
    except AssertionError:
        return False
    return all(code(w.get("/api/v1/auth/me", token=token)) == "TOKEN_REVOKED" for w in webs)


# -- item 10: login limits ----------------------------------------------------------------------------------


def test_failed_logins_lock_the_user_on_every_web_process_with_a_doubling_backoff(pair):
    first, second = pair
    for _ in range(3):
        assert code(login(first, "alice", "wrong")) == "INVALID_CREDENTIALS"
    locked = login(second, "alice", PASSWORD)  # the right password, on the other process: still locked
    assert locked.status_code == 429 and code(locked) == "LOGIN_LOCKED"
    assert locked.headers["Retry-After"] == "1"
    time.sleep(1.05)  # the lockout itself is what is being waited for
    assert code(login(second, "alice", "wrong")) == "INVALID_CREDENTIALS"  # one more try, then locked longer
    again = login(first, "alice", PASSWORD)
    assert again.status_code == 429 and again.headers["Retry-After"] == "2"
    time.sleep(2.05)  # the doubled lockout is what is being waited for
    assert login(first, "alice", PASSWORD).status_code == 200
    # A success forgets the failures: the count starts again.
    assert code(login(first, "alice", "wrong")) == "INVALID_CREDENTIALS"
    assert login(second, "alice", PASSWORD).status_code == 200


def test_unknown_user_names_are_limited_like_real_ones(pair):
    first, _ = pair
    name = f"nobody-{uuid.uuid4().hex[:8]}"
    answers = [login(first, name, "guess", ip="198.51.100.2").status_code for _ in range(4)]
    assert answers == [401, 401, 401, 429]


def test_failures_from_one_address_lock_it_for_every_user(pair):
    first, second = pair
    # Two failures each for three users (each under its own limit of 3): the address reaches 6.
    address = "203.0.113.9"
    for name in ("bob", "carol", "dave"):
        for _ in range(2):
            assert login(first, name, "wrong", ip=address).status_code == 401
    locked = login(second, "erin", PASSWORD, ip=address)
    assert locked.status_code == 429 and code(locked) == "LOGIN_LOCKED" and "Retry-After" in locked.headers
    assert login(second, "erin", PASSWORD, ip="203.0.113.10").status_code == 200  # another address is not
    time.sleep(1.05)  # the address's lockout is what is being waited for
    assert login(second, "erin", PASSWORD, ip=address).status_code == 200


# -- item 12: sessions ----------------------------------------------------------------------------------


def test_reusing_a_rotated_refresh_token_revokes_the_whole_session(pair):
    first, second = pair
    a = login(first, "erin", PASSWORD).json()["data"]
    b = post(first, "/api/v1/auth/refresh", {"refreshToken": a["refreshToken"]}).json()["data"]
    assert first.get("/api/v1/auth/me", token=b["accessToken"]).status_code == 200
    other = login(first, "erin", PASSWORD).json()["data"]  # another session of the same user

    stolen = post(second, "/api/v1/auth/refresh", {"refreshToken": a["refreshToken"]})
    assert stolen.status_code == 401 and code(stolen) == "TOKEN_REUSED"
    assert code(second.get("/api/v1/auth/me", token=b["accessToken"])) == "TOKEN_REVOKED"  # at once here
    assert refused_everywhere((first, second), b["accessToken"])
    for web in (first, second):
        assert code(post(web, "/api/v1/auth/refresh", {"refreshToken": b["refreshToken"]})) == "TOKEN_REVOKED"
    assert first.get("/api/v1/auth/me", token=other["accessToken"]).status_code == 200


def test_logout_without_the_refresh_token_still_ends_the_session(pair):
    first, second = pair
    session = login(first, "erin", PASSWORD).json()["data"]
    assert post(first, "/api/v1/auth/logout", token=session["accessToken"]).status_code == 200
    refreshed = post(second, "/api/v1/auth/refresh", {"refreshToken": session["refreshToken"]})
    assert refreshed.status_code == 401 and code(refreshed) == "TOKEN_REVOKED"
    assert refused_everywhere((first, second), session["accessToken"])


def test_an_admin_revokes_every_token_of_one_subject(pair):
    first, second = pair
    admin = login(first, "erin", PASSWORD).json()["data"]["accessToken"]
    sessions = [login(first, "bob", PASSWORD).json()["data"] for _ in range(2)]
    minted = post(first, "/api/v1/auth/tokens", {"sub": "bob", "role": "viewer"}, admin).json()["data"]["accessToken"]
    carol = login(first, "carol", PASSWORD).json()["data"]["accessToken"]

    answer = first.http.delete(
        first.url + "/api/v1/auth/subjects/bob/tokens", timeout=30, headers={"Authorization": f"Bearer {admin}"}
    )
    assert answer.status_code == 200 and answer.json()["data"]["sub"] == "bob"
    revoked_before = answer.json()["data"]["revokedBefore"]
    for token in (minted, *(s["accessToken"] for s in sessions)):
        assert refused_everywhere((first, second), token)
    for s in sessions:
        assert code(post(second, "/api/v1/auth/refresh", {"refreshToken": s["refreshToken"]})) == "TOKEN_REVOKED"
    assert second.get("/api/v1/auth/me", token=carol).status_code == 200
    # A token issued after the revocation works.
    codec = TokenCodec.from_settings(Settings.from_env({"JWT_SECRET": TEST_JWT_SECRET}))
    later = codec.issue("bob", Role.VIEWER, 600, TokenType.ACCESS, now=revoked_before + 1).token
    assert second.get("/api/v1/auth/me", token=later).status_code == 200
    # Only an admin may do it.
    refused = second.http.delete(
        second.url + "/api/v1/auth/subjects/carol/tokens", timeout=30, headers={"Authorization": f"Bearer {carol}"}
    )
    assert refused.status_code == 403
