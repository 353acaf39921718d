"""Authentication as API users meet it: bearer tokens, roles, login/refresh/logout, admin token
management and the token CLI — in-process app (sanic-testing) against real Redis, no mocks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import subprocess
import sys
import time
import uuid

import jwt
import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sanic_testing.reusable import ReusableClient

from app import create_app
from app.auth import Role, TokenCodec, TokenType
from app.passwords import hash_password, verify_password
from config.settings import DEV_JWT_SECRET, Settings
from tests.processes import ROOT, free_port

SECRET = "auth-test-jwt-secret-" + "k" * 32
PASSWORDS = {"vera": "vera-pass", "alice": "alice-pass", "bob": "bob-pass"}
ROLES_OF = {"vera": "viewer", "alice": "trader", "bob": "admin"}
_names = itertools.count()


@pytest.fixture(scope="module")
def auth_users() -> str:
    return ",".join(f"{name}:{ROLES_OF[name]}:{hash_password(pw)}" for name, pw in PASSWORDS.items())


@pytest.fixture(scope="module")
def env(redis_url, redis_prefix, auth_users) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": redis_prefix,
        # Auth routes never call Binance: a closed port proves it.
        "BINANCE_API_URL": f"http://127.0.0.1:{free_port()}",
        "JWT_SECRET": SECRET,
        "AUTH_USERS": auth_users,
        "LOG_LEVEL": "WARNING",
    }


def serve(environ: dict[str, str]) -> ReusableClient:
    app = create_app(Settings.from_env(environ), name=f"spotgate_auth_{next(_names)}")
    return ReusableClient(app, port=free_port())


@pytest.fixture(scope="module")
def client(env):
    with serve(env) as c:
        yield c


@pytest.fixture(scope="module")
def codec(env) -> TokenCodec:
    return TokenCodec.from_settings(Settings.from_env(env))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_for(
    codec: TokenCodec, role: str = "viewer", sub: str = "tester", ttl: int = 600, typ: TokenType = TokenType.ACCESS
) -> str:
    return codec.issue(sub, Role.parse(role), ttl, typ).token


def call(client, method: str, path: str, token: str | None = None, headers: dict | None = None, **kwargs):
    headers = {**(bearer(token) if token else {}), **(headers or {})}
    _, response = getattr(client, method)(path, headers=headers, **kwargs)
    return response


def error_code(response) -> str:
    return response.json["error"]["code"]


def claims(**overrides) -> dict:
    now = int(time.time())
    base = {"sub": "mallory", "role": "admin", "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex, "typ": "access"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs256_with_key(payload: dict, key: bytes) -> str:
    """An HS256 token built by hand (PyJWT refuses a PEM as an HMAC key: attackers do not)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = json.dumps({"alg": "HS256", "typ": "JWT"}).encode()
    signing_input = f"{b64(header)}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())}"


def tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


# -- bad tokens -------------------------------------------------------------------------------------------


def test_no_token_is_401_with_a_bearer_challenge_on_auth_and_market_routes(client):
    for path in ("/api/v1/auth/me", "/api/v1/ticker/price?symbol=BTCUSDT"):
        response = call(client, "get", path)
        assert response.status == 401, path
        assert error_code(response) == "TOKEN_MISSING"
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="spotgate"'
        assert response.json["requestId"] == response.headers["X-Request-ID"] != "-"


BAD_TOKENS = {
    "basic scheme": (lambda c: None, {"Authorization": "Basic YWxpY2U6cHc="}, "TOKEN_MISSING"),
    "empty bearer": (lambda c: None, {"Authorization": "Bearer"}, "TOKEN_MISSING"),
    "garbled": (lambda c: "not-a-jwt", None, "TOKEN_INVALID"),
    "alg none": (lambda c: jwt.encode(claims(), None, algorithm="none"), None, "TOKEN_INVALID"),
    "wrong secret": (
        lambda c: jwt.encode(claims(), "another-secret-" + "x" * 32, algorithm="HS256"),
        None,
        "TOKEN_INVALID",
    ),
    "wrong algorithm": (lambda c: jwt.encode(claims(), SECRET, algorithm="HS512"), None, "TOKEN_INVALID"),
    "tampered payload": (lambda c: tampered(token_for(c, "viewer")), None, "TOKEN_INVALID"),
    "expired": (
        lambda c: jwt.encode(claims(iat=int(time.time()) - 3600, exp=int(time.time()) - 60), SECRET),
        None,
        "TOKEN_EXPIRED",
    ),
    "missing jti": (lambda c: jwt.encode(claims(jti=None), SECRET), None, "TOKEN_INVALID"),
    "missing typ": (lambda c: jwt.encode(claims(typ=None), SECRET), None, "TOKEN_INVALID"),
    "unknown role": (lambda c: jwt.encode(claims(role="root"), SECRET), None, "TOKEN_INVALID"),
    "refresh as access": (lambda c: token_for(c, "admin", typ=TokenType.REFRESH), None, "TOKEN_WRONG_TYPE"),
}


@pytest.mark.parametrize("kind", BAD_TOKENS)
def test_each_kind_of_bad_token_is_401_with_its_code(client, codec, kind):
    make, headers, code = BAD_TOKENS[kind]
    token = make(codec)
    response = call(client, "get", "/api/v1/auth/me", token=token, headers=headers)

    assert response.status == 401
    assert error_code(response) == code
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="spotgate"')
    if token:
        assert token not in response.body.decode()


def test_a_token_revoked_by_an_admin_is_refused_at_once(client, codec):
    victim = codec.issue("bot-7", Role.TRADER, 3600)
    assert call(client, "get", "/api/v1/auth/me", victim.token).status == 200

    response = call(client, "delete", f"/api/v1/auth/tokens/{victim.jti}", token_for(codec, "admin"))
    assert response.status == 200 and response.json["data"] == {"revoked": [victim.jti]}

    refused = call(client, "get", "/api/v1/auth/me", victim.token)
    assert refused.status == 401 and error_code(refused) == "TOKEN_REVOKED"


# -- roles ------------------------------------------------------------------------------------------------


def test_viewer_and_trader_are_refused_admin_routes_naming_the_role(client, codec):
    for role in ("viewer", "trader"):
        response = call(
            client, "post", "/api/v1/auth/tokens", token_for(codec, role), json={"sub": "x", "role": "viewer"}
        )
        assert response.status == 403
        assert error_code(response) == "ROLE_REQUIRED"
        assert "admin" in response.json["error"]["message"]
        assert response.json["error"]["details"] == {"requiredRole": "admin", "role": role}
        assert call(client, "delete", "/api/v1/auth/tokens/abc", token_for(codec, role)).status == 403


@pytest.mark.parametrize("role", ["viewer", "trader", "admin"])
def test_every_role_may_use_viewer_routes(client, codec, role):
    response = call(client, "get", "/api/v1/auth/me", token_for(codec, role, sub=f"{role}-1"))
    assert response.status == 200
    assert response.json["data"]["sub"] == f"{role}-1" and response.json["data"]["role"] == role


def test_head_cannot_bypass_authentication(client):
    assert call(client, "head", "/api/v1/auth/me").status in (401, 405)
    assert call(client, "head", "/api/v1/status").status in (401, 405)


# -- login, refresh, logout ----------------------------------------------------------------------------------


def login(client, username: str, password: str | None = None):
    return call(
        client, "post", "/api/v1/auth/login", json={"username": username, "password": password or PASSWORDS[username]}
    )


def test_login_gives_tokens_carrying_the_configured_role(client):
    response = login(client, "alice")
    assert response.status == 200
    pair = response.json["data"]
    assert pair["tokenType"] == "Bearer" and pair["expiresIn"] == 15 * 60
    assert pair["refreshExpiresIn"] == 7 * 86400

    me = call(client, "get", "/api/v1/auth/me", pair["accessToken"]).json["data"]
    assert me["sub"] == "alice" and me["role"] == "trader"
    assert abs(me["exp"] - (time.time() + 900)) < 30


def test_wrong_password_and_unknown_user_look_the_same(client):
    wrong = login(client, "alice", "not-her-password")
    unknown = login(client, "mallory", "whatever")
    for response in (wrong, unknown):
        assert response.status == 401 and error_code(response) == "INVALID_CREDENTIALS"
    assert wrong.json["error"]["message"] == unknown.json["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"password": "x"}', "username"),
        (b'{"username": "alice"}', "password"),
        (b'{"username": "alice", "password": 5}', "password"),
    ],
)
def test_bad_login_bodies_are_400_naming_the_field(client, body, field):
    response = call(client, "post", "/api/v1/auth/login", content=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert response.json["error"]["details"]["field"] == field


def test_refresh_rotates_and_an_old_refresh_token_is_refused(client):
    first = login(client, "vera").json["data"]

    refreshed = call(client, "post", "/api/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert refreshed.status == 200
    second = refreshed.json["data"]
    assert second["refreshToken"] != first["refreshToken"]
    assert call(client, "get", "/api/v1/auth/me", second["accessToken"]).json["data"]["sub"] == "vera"

    reused = call(client, "post", "/api/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert reused.status == 401 and error_code(reused) == "TOKEN_REUSED"  # and the session is revoked


def test_refresh_refuses_access_tokens_and_garbage(client):
    pair = login(client, "vera").json["data"]
    access = call(client, "post", "/api/v1/auth/refresh", json={"refreshToken": pair["accessToken"]})
    assert access.status == 401 and error_code(access) == "TOKEN_WRONG_TYPE"
    missing = call(client, "post", "/api/v1/auth/refresh", json={})
    assert missing.status == 400 and missing.json["error"]["details"]["field"] == "refreshToken"


def test_logout_revokes_the_access_and_refresh_tokens(client, redis_url, redis_prefix):
    pair = login(client, "alice").json["data"]

    response = call(
        client, "post", "/api/v1/auth/logout", pair["accessToken"], json={"refreshToken": pair["refreshToken"]}
    )
    assert response.status == 200 and len(response.json["data"]["revoked"]) == 2

    after = call(client, "get", "/api/v1/auth/me", pair["accessToken"])
    assert after.status == 401 and error_code(after) == "TOKEN_REVOKED"
    again = call(client, "post", "/api/v1/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert again.status == 401 and error_code(again) == "TOKEN_REVOKED"

    # Revocations do not pile up in Redis: each lasts as long as its token would have.
    r = redis.Redis.from_url(redis_url)
    try:
        access_jti, refresh_jti = response.json["data"]["revoked"]
        assert 0 < r.ttl(f"{redis_prefix}auth:revoked:{access_jti}") <= 15 * 60 + 10
        assert 15 * 60 < r.ttl(f"{redis_prefix}auth:revoked:{refresh_jti}") <= 7 * 86400 + 10
    finally:
        r.close()


def test_logout_without_a_body_and_without_a_token(client):
    pair = login(client, "bob").json["data"]
    assert call(client, "post", "/api/v1/auth/logout", pair["accessToken"]).status == 200
    assert call(client, "get", "/api/v1/auth/me", pair["accessToken"]).status == 401
    assert error_code(call(client, "post", "/api/v1/auth/logout")) == "TOKEN_MISSING"


def test_logout_refuses_someone_elses_refresh_token(client):
    alice, bob = login(client, "alice").json["data"], login(client, "bob").json["data"]
    response = call(
        client, "post", "/api/v1/auth/logout", alice["accessToken"], json={"refreshToken": bob["refreshToken"]}
    )
    assert response.status == 400 and response.json["error"]["details"]["field"] == "refreshToken"
    assert call(client, "post", "/api/v1/auth/refresh", json={"refreshToken": bob["refreshToken"]}).status == 200


# -- admin token management --------------------------------------------------------------------------------


def test_admin_issues_a_token_that_works_with_its_role_and_lifetime(client, codec):
    response = call(
        client,
        "post",
        "/api/v1/auth/tokens",
        token_for(codec, "admin"),
        json={"sub": "grid-bot", "role": "trader", "ttl": "30d"},
    )
    assert response.status == 201
    issued = response.json["data"]
    assert issued["expiresIn"] == 30 * 86400 and issued["tokenType"] == "Bearer"

    me = call(client, "get", "/api/v1/auth/me", issued["accessToken"]).json["data"]
    assert me == {"sub": "grid-bot", "role": "trader", "exp": issued["exp"], "iat": me["iat"], "jti": issued["jti"]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "viewer"}, "sub"),
        ({"sub": "a b", "role": "viewer"}, "sub"),
        ({"sub": "x", "role": "root"}, "role"),
        ({"sub": "x", "role": "viewer", "ttl": "forever"}, "ttl"),
        ({"sub": "x", "role": "viewer", "ttl": "999d"}, "ttl"),
    ],
)
def test_bad_token_requests_are_400_naming_the_field(client, codec, body, field):
    response = call(client, "post", "/api/v1/auth/tokens", token_for(codec, "admin"), json=body)
    assert response.status == 400 and response.json["error"]["details"]["field"] == field


# -- the CLI ------------------------------------------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "SPOTGATE_", "AUTH_"))}
    return subprocess.run(
        [sys.executable, "-m", "app.tokens", *args],
        cwd=ROOT,
        env={**environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_issues_a_token_the_gateway_accepts(client):
    done = run_cli("issue", "--sub", "cli-bot", "--role", "trader", "--ttl", "2h", env={"JWT_SECRET": SECRET})
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()

    me = call(client, "get", "/api/v1/auth/me", token).json["data"]
    assert me["sub"] == "cli-bot" and me["role"] == "trader" and me["exp"] - me["iat"] == 7200


def test_cli_rejects_unknown_roles_and_bad_lifetimes():
    assert run_cli("issue", "--sub", "x", "--role", "root", env={}).returncode != 0
    bad_ttl = run_cli("issue", "--sub", "x", "--role", "viewer", "--ttl", "3 weeks", env={})
    assert bad_ttl.returncode != 0 and "ttl" in bad_ttl.stderr


def test_cli_password_hash_lets_that_user_log_in(env):
    done = run_cli("hash-password", env={}, stdin="correct horse battery staple\n")
    assert done.returncode == 0, done.stderr
    digest = done.stdout.strip()
    assert digest.startswith("scrypt$") and "correct horse" not in digest

    with serve({**env, "AUTH_USERS": f"carol:admin:{digest}"}) as c:
        assert login(c, "carol", "correct horse battery staple").status == 200
        assert login(c, "carol", "correct horse battery").status == 401


def test_password_hashes_are_salted_and_verify():
    first, second = hash_password("pw"), hash_password("pw")
    assert first != second
    assert verify_password("pw", first) and verify_password("pw", second)
    assert not verify_password("pW", first)
    assert not verify_password("pw", "scrypt$16384$8$1$garbage")


# -- RS256 ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_pems() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return public, private


def test_rs256_login_works_and_hmac_tokens_are_refused(env, rsa_pems):
    public, private = rsa_pems
    with serve({**env, "JWT_PUBLIC_KEY": public, "JWT_PRIVATE_KEY": private}) as c:
        pair = login(c, "alice").json["data"]
        assert jwt.get_unverified_header(pair["accessToken"])["alg"] == "RS256"
        assert call(c, "get", "/api/v1/auth/me", pair["accessToken"]).status == 200

        for forged in (
            jwt.encode(claims(), SECRET, algorithm="HS256"),  # the old shared secret
            hs256_with_key(claims(), public.encode()),
        ):  # the public key as HMAC secret
            response = call(c, "get", "/api/v1/auth/me", forged)
            assert response.status == 401 and error_code(response) == "TOKEN_INVALID"


def test_verify_only_gateway_accepts_tokens_minted_elsewhere_but_cannot_issue(env, rsa_pems):
    public, private = rsa_pems
    done = run_cli(
        "issue", "--sub", "svc", "--role", "viewer", env={"JWT_PUBLIC_KEY": public, "JWT_PRIVATE_KEY": private}
    )
    assert done.returncode == 0, done.stderr

    with serve({**env, "JWT_PUBLIC_KEY": public}) as c:
        assert call(c, "get", "/api/v1/auth/me", done.stdout.strip()).json["data"]["sub"] == "svc"
        response = login(c, "alice")
        assert response.status == 501 and error_code(response) == "TOKEN_ISSUING_DISABLED"


def test_an_unreadable_public_key_stops_the_app_at_start(env):
    with pytest.raises(ValueError, match="JWT_PUBLIC_KEY"):
        create_app(Settings.from_env({**env, "JWT_PUBLIC_KEY": "not a pem"}), name=f"spotgate_auth_{next(_names)}")


# -- start-up and failure modes ------------------------------------------------------------------------------------


def test_live_mode_refuses_to_start_with_the_dev_secret(monkeypatch, env):
    monkeypatch.setenv("SPOTGATE_MODE", "live")
    monkeypatch.delenv("JWT_PUBLIC_KEY", raising=False)
    for secret in (None, DEV_JWT_SECRET, "short"):
        if secret is None:
            monkeypatch.delenv("JWT_SECRET", raising=False)
        else:
            monkeypatch.setenv("JWT_SECRET", secret)
        with pytest.raises(ValueError, match="JWT_SECRET"):
            create_app(name=f"spotgate_auth_{next(_names)}")


def test_without_redis_tokens_are_refused_not_trusted(env, codec):
    with serve({**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}) as c:
        response = call(c, "get", "/api/v1/auth/me", token_for(codec, "admin"))
    assert response.status == 503 and error_code(response) == "AUTH_UNAVAILABLE"
    assert "Retry-After" in response.headers


def test_openapi_documents_auth_routes_and_their_security(env):
    # A fresh app: sanic-ext keeps one process-wide spec builder, rebuilt by each app that starts.
    with serve(env) as c:
        spec = call(c, "get", "/docs/openapi.json").json
    paths = spec["paths"]
    assert "bearer" in spec["components"]["securitySchemes"]
    assert {"bearer": []} in paths["/api/v1/auth/me"]["get"]["security"]
    assert {"bearer": []} in paths["/api/v1/auth/tokens"]["post"]["security"]
    assert {"bearer": []} in paths["/api/v1/auth/tokens/{jti}"]["delete"]["security"]
    assert "security" not in paths["/api/v1/auth/login"]["post"]
    login_doc = paths["/api/v1/auth/login"]["post"]
    assert login_doc["summary"]
    assert set(login_doc["requestBody"]["content"]["application/json"]["schema"]["properties"]) == {
        "username",
        "password",
    }
    assert (
        "accessToken"
        in login_doc["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"]["properties"]
    )


def test_roles_are_ordered_and_match_the_configured_names():
    from config.settings import ROLES

    assert Role.VIEWER < Role.TRADER < Role.ADMIN
    assert tuple(str(role) for role in Role) == ROLES
