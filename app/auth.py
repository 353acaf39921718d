"""Who may call what: JWT access and refresh tokens, roles, revocation, and the /api/v1/auth routes.

    Authorization: Bearer <JWT>
      └─ TokenCodec.decode     one algorithm (HS256 with JWT_SECRET, or RS256 with JWT_PUBLIC_KEY),
         │                     signature, expiry, claims sub/role/exp/iat/jti/typ
         └─ Revocations        in Redis: the token (jti), its session (fid: every token one login
            │                  led to), or every token of its subject issued up to a time
            └─ Principal       on request.ctx.principal; protect(bp, role) checks the role

Logins go through LoginLimiter first: per user name and per client address, failures lock the door
for a time that doubles with each further failure (429 + Retry-After), in Redis so every web
process sees the same counts, and a locked door costs no password hash.

`protect(blueprint, role)` applies this to every route of a blueprint, where it is mounted; handlers
never check tokens themselves. `authenticate_token(app, token)` is the same check for the WebSocket hub.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import time
import uuid

import orjson
from redis.exceptions import RedisError
from sanic import Blueprint, Request, Sanic

from config.settings import MAX_TOKEN_TTL, ROLES, Settings, parse_duration
from services.filters import json_integer

from . import schemas as S
from .clients import client_ip
from .envelope import ok
from .errors import ApiError, BadRequest, Forbidden, TooManyRequests, Unauthorized, invalid
from .openapi import operation
from .params import Query, Text
from .passwords import UNKNOWN_USER_HASH, verify_password
from .token_codec import (  # noqa: F401  (Role, TokenCodec, ... are imported from here too)
    CLAIMS,
    DEFAULT_ISSUED_TTL,
    FID_RE,
    JTI_RE,
    LEEWAY_SECONDS,
    MAX_TOKEN_LENGTH,
    SUBJECT_RE,
    IssuedToken,
    Principal,
    Role,
    TokenCodec,
    TokenType,
    _invalid,
)

log = logging.getLogger("spotgate.auth")

REALM = "spotgate"
MAX_PASSWORD_LENGTH = 1024
# scrypt takes 32 MiB a hash; bound how many logins hash at once in one process.
CONCURRENT_HASHES = 4
VERIFIED_CACHE_SIZE = 10_000
REVOCATION_RECHECK = 1.0  # seconds a "not revoked" answer is trusted in one process


def key_part(text: str) -> str:
    """A Redis key part made from outside input: hex, so no ':' or length in it can collide."""
    return text.encode().hex()


class Revocations:
    """What is revoked, in Redis, each mark kept until the tokens it stops would have expired anyway:
    one token (by jti), one session (by fid: every access and refresh token one login led to), and
    every token of a subject issued up to a time (`auth:subject:<sub>` = that time in epoch seconds)."""

    def __init__(self, key_prefix: str):
        self.key_prefix = key_prefix

    def key(self, jti: str) -> str:
        return f"{self.key_prefix}auth:revoked:{jti}"

    def family_key(self, fid: str) -> str:
        return f"{self.key_prefix}auth:family:{fid}"

    def subject_key(self, sub: str) -> str:
        return f"{self.key_prefix}auth:subject:{key_part(sub)}"

    async def revoke(self, redis, jti: str, exp: int | None = None) -> bool:
        """Mark `jti` revoked; False when it already was. Without `exp` (a token we never saw),
        the mark outlives any token: none is issued for longer than MAX_TOKEN_TTL."""
        ttl = MAX_TOKEN_TTL if exp is None else exp - int(time.time()) + LEEWAY_SECONDS
        return bool(await redis.set(self.key(jti), b"1", ex=max(1, ttl), nx=True))

    async def revoke_family(self, redis, fid: str, refresh_ttl: int) -> None:
        # No token of a revoked session is issued afterwards, so the mark need outlive only the
        # longest-lived token issued before: a refresh token.
        await redis.set(self.family_key(fid), b"1", ex=refresh_ttl + LEEWAY_SECONDS)

    async def revoke_subject(self, redis, sub: str, now: int) -> None:
        await redis.set(self.subject_key(sub), str(now).encode(), ex=MAX_TOKEN_TTL + LEEWAY_SECONDS)

    def keys(self, principal: Principal) -> list[str]:
        """The keys to MGET for `is_revoked_by` (one round trip whatever the token)."""
        keys = [self.key(principal.jti), self.subject_key(principal.sub)]
        if principal.fid is not None:
            keys.append(self.family_key(principal.fid))
        return keys

    @staticmethod
    def is_revoked_by(principal: Principal, values: list) -> bool:
        jti_mark, subject_mark, *family = values
        return (
            jti_mark is not None
            or (family and family[0] is not None)
            or (subject_mark is not None and principal.iat <= int(subject_mark))
        )

    async def is_revoked(self, redis, principal: Principal) -> bool:
        return self.is_revoked_by(principal, await redis.mget(self.keys(principal)))


# Logins per user name and per client address: count an attempt before hashing, so concurrent
# guesses cannot all slip in before the first failure is counted; at the limit, lock first (the
# attempt that reached it still runs), each further failure doubling the lock up to the maximum.
LOGIN_BEGIN = """
for _, lock in ipairs({KEYS[2], KEYS[4]}) do
  local left = redis.call('PTTL', lock)
  if left > 0 then return left end
end
local base, cap, memory = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[5])
local function count(fails, lock, limit)
  local n = redis.call('INCR', fails)
  redis.call('PEXPIRE', fails, memory)
  if n >= limit then
    redis.call('SET', lock, '1', 'PX', math.floor(math.min(cap, base * 2 ^ math.min(n - limit, 40))))
  end
end
count(KEYS[1], KEYS[2], tonumber(ARGV[3]))
count(KEYS[3], KEYS[4], tonumber(ARGV[4]))
return 0
"""
# A success forgets the user's failures and takes back its own count from the address.
LOGIN_SUCCEEDED = """
redis.call('DEL', KEYS[1], KEYS[2])
local n = redis.call('DECR', KEYS[3])
if n <= 0 then redis.call('DEL', KEYS[3]) end
if n < tonumber(ARGV[1]) then redis.call('DEL', KEYS[4]) end
return n
"""


class LoginLimiter:
    """Failed-login counts and lockouts per user name and per client address, shared in Redis."""

    def __init__(self, settings: Settings, redis_of):
        self.prefix = f"{settings.redis_key_prefix}auth:login:"
        self.user_limit = settings.login_max_failures
        self.ip_limit = settings.login_ip_max_failures
        self.base_ms = int(settings.login_lockout * 1000)
        self.cap_ms = int(max(settings.login_lockout, settings.login_lockout_max) * 1000)
        self.memory_ms = 2 * self.cap_ms  # failures are forgotten after this long without one
        self._redis_of = redis_of
        self._scripts: dict = {}

    def _keys(self, username: str, ip: str) -> list[str]:
        # The user name is hashed: any text a client sends becomes a short, fixed-shape key part.
        user = hashlib.sha256(username.encode()).hexdigest()[:32]
        return [
            f"{self.prefix}user:{user}",
            f"{self.prefix}user:{user}:lock",
            f"{self.prefix}ip:{key_part(ip)}",
            f"{self.prefix}ip:{key_part(ip)}:lock",
        ]

    def _script(self, source: str):
        redis = self._redis_of()
        script = self._scripts.get(source)
        if script is None or script.registered_client is not redis:
            script = self._scripts[source] = redis.register_script(source)
        return script

    async def begin(self, username: str, ip: str) -> None:
        """Count an attempt, or raise 429 LOGIN_LOCKED (Retry-After) while the user or address is locked."""
        left_ms = await _redis(
            self._script(LOGIN_BEGIN)(
                keys=self._keys(username, ip),
                args=[self.base_ms, self.cap_ms, self.user_limit, self.ip_limit, self.memory_ms],
            )
        )
        if left_ms:
            seconds = max(1, math.ceil(int(left_ms) / 1000))
            raise TooManyRequests(
                f"Too many failed logins for this user or address; try again in {seconds} s",
                code="LOGIN_LOCKED",
                retry_after=seconds,
            )

    async def succeeded(self, username: str, ip: str) -> None:
        await _redis(self._script(LOGIN_SUCCEEDED)(keys=self._keys(username, ip), args=[self.ip_limit]))


class Auth:
    """The service behind authentication and the /api/v1/auth routes (on `app.ctx.auth`)."""

    def __init__(self, settings: Settings, app_ctx):
        self.codec = TokenCodec.from_settings(settings)
        self.users = {user.name: user for user in settings.auth_users}
        self.access_ttl = settings.access_token_ttl
        self.refresh_ttl = settings.refresh_token_ttl
        self.revocations = Revocations(settings.redis_key_prefix)
        self._app_ctx = app_ctx  # app.ctx.redis is opened at server start, after wiring
        self.limiter = LoginLimiter(settings, lambda: self.redis)
        self._hashing = asyncio.Semaphore(CONCURRENT_HASHES)
        # Hot-path caches: a token string's verified claims (its signature cannot change), and
        # "not revoked as of t" per jti for REVOCATION_RECHECK seconds, so a request costs no Redis
        # round trip; a revocation made elsewhere takes effect here within that interval.
        self._verified: dict[str, Principal] = {}
        self._cleared_until: dict[str, float] = {}

    @property
    def redis(self):
        return self._app_ctx.redis

    async def authenticate(self, token: str, typ: TokenType = TokenType.ACCESS) -> Principal:
        principal = self._verified.get(token) if typ == TokenType.ACCESS else None
        if principal is None or principal.exp + LEEWAY_SECONDS <= time.time():
            self._verified.pop(token, None)
            principal = self.codec.decode(token, typ)  # raises TOKEN_EXPIRED once it has expired
            if typ == TokenType.ACCESS:
                if len(self._verified) >= VERIFIED_CACHE_SIZE:
                    self._verified.clear()
                    self._cleared_until.clear()
                self._verified[token] = principal
        now = time.monotonic()
        if self._cleared_until.get(principal.jti, 0.0) <= now:
            if await _redis(self.revocations.is_revoked(self.redis, principal)):
                raise Unauthorized("Token has been revoked", code="TOKEN_REVOKED")
            self._cleared_until[principal.jti] = now + REVOCATION_RECHECK
        return principal

    def _forget(self, jti: str | None = None) -> None:
        """A revocation made here takes effect here at once (a session's or subject's: every token)."""
        if jti is None:
            self._cleared_until.clear()
        else:
            self._cleared_until.pop(jti, None)

    async def login(self, username: str, password: str, ip: str) -> dict:
        user = self.users.get(username)
        await self.limiter.begin(username, ip)  # 429 while locked: no hash is spent on a locked door
        async with self._hashing:
            # An unknown user costs one hash too, so timing does not tell which names exist.
            matches = await asyncio.to_thread(
                verify_password, password, user.password_hash if user else UNKNOWN_USER_HASH
            )
        if user is None or not matches:
            log.info("login failed ip=%s", ip)
            raise Unauthorized("Invalid username or password", code="INVALID_CREDENTIALS")
        await self.limiter.succeeded(username, ip)
        log.info("login sub=%s role=%s", user.name, user.role)
        return self._pair(user.name, Role.parse(user.role), uuid.uuid4().hex)

    async def refresh(self, refresh_token: str) -> dict:
        """A new access token and a new refresh token of the same session; the old refresh token is
        revoked (rotation). Presenting a rotated refresh token again means it was copied: the whole
        session is revoked, for the thief and the owner alike (the owner logs in again)."""
        old = self.codec.decode(refresh_token, TokenType.REFRESH)
        rotated, *others = await _redis(self.redis.mget(self.revocations.keys(old)))
        if self.revocations.is_revoked_by(old, [None, *others]):  # its session or subject is revoked
            raise Unauthorized("Token has been revoked", code="TOKEN_REVOKED")
        user = self.users.get(old.sub)
        if user is None:
            raise _invalid("The token's user no longer exists")
        self._forget(old.jti)
        # SET NX: of two concurrent refreshes with one token, only one wins; the other is a reuse.
        if rotated is not None or not await _redis(self.revocations.revoke(self.redis, old.jti, old.exp)):
            if old.fid is not None:
                await _redis(self.revocations.revoke_family(self.redis, old.fid, self.refresh_ttl))
                self._forget()
            log.warning("refresh token reused sub=%s fid=%s: session revoked", old.sub, old.fid)
            raise Unauthorized(
                "This refresh token was already used; the session is revoked, log in again", code="TOKEN_REUSED"
            )
        # The role as configured now; a token from before sessions had ids starts one.
        return self._pair(user.name, Role.parse(user.role), old.fid or uuid.uuid4().hex)

    async def logout(self, principal: Principal, refresh_token: str | None) -> list[str]:
        """End the session: this token, every token of its session (fid) and the refresh token given."""
        targets = [(principal.jti, principal.exp)]
        if refresh_token is not None:
            try:
                paired = self.codec.decode(refresh_token, TokenType.REFRESH)
            except Unauthorized as exc:
                if exc.code != "TOKEN_EXPIRED":  # an expired one has nothing left to revoke
                    raise invalid("refreshToken", exc.message) from None
            else:
                if paired.sub != principal.sub:
                    raise invalid("refreshToken", "The refresh token belongs to another user")
                targets.append((paired.jti, paired.exp))
                if paired.fid is not None and paired.fid != principal.fid:
                    await _redis(self.revocations.revoke_family(self.redis, paired.fid, self.refresh_ttl))
        for jti, exp in targets:
            self._forget(jti)
            await _redis(self.revocations.revoke(self.redis, jti, exp))
        if principal.fid is not None:
            await _redis(self.revocations.revoke_family(self.redis, principal.fid, self.refresh_ttl))
            self._forget()
        log.info("logout sub=%s jti=%s fid=%s", principal.sub, ",".join(jti for jti, _ in targets), principal.fid)
        return [jti for jti, _ in targets]

    def mint(self, sub: str, role: Role, ttl: int, *, by: str) -> IssuedToken:
        issued = self.codec.issue(sub, role, ttl)
        log.info("token issued sub=%s role=%s jti=%s ttl=%s by=%s", sub, role, issued.jti, ttl, by)
        return issued

    async def revoke(self, jti: str, *, by: str) -> None:
        self._forget(jti)
        await _redis(self.revocations.revoke(self.redis, jti))
        log.info("token revoked jti=%s by=%s", jti, by)

    async def revoke_subject(self, sub: str, *, by: str) -> int:
        """Revoke every token of `sub` issued up to now (this second included); returns that time."""
        now = int(time.time())
        await _redis(self.revocations.revoke_subject(self.redis, sub, now))
        self._forget()
        log.info("tokens of subject revoked sub=%s before=%s by=%s", sub, now, by)
        return now

    def _pair(self, sub: str, role: Role, fid: str) -> dict:
        access = self.codec.issue(sub, role, self.access_ttl, TokenType.ACCESS, fid=fid)
        refresh = self.codec.issue(sub, role, self.refresh_ttl, TokenType.REFRESH, fid=fid)
        return {
            "accessToken": access.token,
            "refreshToken": refresh.token,
            "tokenType": "Bearer",
            "expiresIn": access.lifetime,
            "refreshExpiresIn": refresh.lifetime,
        }


async def _redis(awaitable):
    # Without the revocation list we cannot tell a revoked token from a good one: fail closed.
    try:
        return await awaitable
    except (RedisError, OSError):
        log.warning("revocation list unavailable")
        raise ApiError(
            "Authentication is temporarily unavailable", code="AUTH_UNAVAILABLE", status=503, retry_after=1
        ) from None


# -- for the request path and the WebSocket hub ------------------------------------------------------


async def authenticate_token(app: Sanic, token: str) -> Principal:
    """Verify an access token (signature, algorithm, expiry, revocation); raises Unauthorized."""
    return await app.ctx.auth.authenticate(token)


def require_role(principal: Principal, role: Role) -> None:
    if not principal.has(role):
        raise Forbidden(
            f"This requires the {role} role",
            code="ROLE_REQUIRED",
            details={"requiredRole": str(role), "role": str(principal.role)},
        )


def bearer_token(request: Request) -> str:
    header = request.headers.get("Authorization")
    if header is None:
        raise Unauthorized("Authorization: Bearer <token> is required", code="TOKEN_MISSING")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <token>'", code="TOKEN_MISSING")
    return token.strip()


def protect(blueprint: Blueprint, role: Role) -> None:
    """Require a valid access token carrying at least `role` on every route of `blueprint`.

    Sets `request.ctx.principal`. Idempotent per blueprint, as module-level blueprints are
    mounted again by each app the factory builds.
    """
    current = getattr(blueprint.ctx, "required_role", None)
    if current is not None:
        if current != role:
            raise ValueError(f"blueprint {blueprint.name!r} is already protected with role {current}")
        return
    blueprint.ctx.required_role = role

    async def authenticate(request: Request):
        if request.method == "OPTIONS":  # CORS preflights never carry credentials
            return
        try:
            principal = await request.app.ctx.auth.authenticate(bearer_token(request))
        except Unauthorized as exc:
            missing = exc.code == "TOKEN_MISSING"
            request.ctx.auth_challenge = f'Bearer realm="{REALM}"' + ("" if missing else ', error="invalid_token"')
            raise
        require_role(principal, role)
        request.ctx.principal = principal

    blueprint.middleware(authenticate, "request")


def json_body(request: Request, *, allowed: tuple[str, ...] | None = None) -> dict:
    """The body as a JSON object: 415 unless it comes as application/json, 400 unless it is an object
    (or, with `allowed`, when it carries another field)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(
            "The request body must be JSON, sent with Content-Type: application/json",
            code="UNSUPPORTED_MEDIA_TYPE",
            status=415,
            details={"contentType": media_type[:100]},
        )
    try:
        body = orjson.loads(request.body or b"")
    except orjson.JSONDecodeError:
        raise invalid("body", "The request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise invalid("body", "The request body must be a JSON object")
    if allowed is not None:
        unknown = sorted(set(body) - set(allowed))
        if unknown:
            raise invalid(unknown[0][:64], f"Unknown field '{unknown[0][:64]}': this takes {', '.join(allowed)}")
    return body


def text(body: dict, name: str, *, required: bool = True, max_length: int = MAX_TOKEN_LENGTH) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise invalid(name, f"'{name}' is required and must be a non-empty string")
    if len(value) > max_length:
        raise invalid(name, f"'{name}' is longer than {max_length} characters")
    return value


# -- request and answer schemas -------------------------------------------------------------------------


def _text_schema(max_length: int, pattern: str | None = None) -> dict:
    schema = {"type": "string", "minLength": 1, "maxLength": max_length}
    if pattern:
        schema["pattern"] = pattern
    return schema


DURATION_PATTERN = r"^[1-9][0-9]{0,8}[smhd]?$"
LOGIN_REQUEST = S.obj({"username": _text_schema(64), "password": _text_schema(MAX_PASSWORD_LENGTH)}, closed=True)
REFRESH_REQUEST = S.obj({"refreshToken": _text_schema(MAX_TOKEN_LENGTH)}, closed=True)
LOGOUT_REQUEST = S.obj({}, {"refreshToken": S.nullable(_text_schema(MAX_TOKEN_LENGTH))}, closed=True)
ISSUE_REQUEST = S.obj(
    {"sub": _text_schema(128, SUBJECT_RE.pattern), "role": {"type": "string", "enum": list(ROLES)}},
    {
        "ttl": {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "integer", "minimum": 1, "maximum": MAX_TOKEN_TTL},
            ]
        }
    },
    closed=True,
)
TOKEN_PAIR = S.obj(
    {
        "accessToken": S.STR,
        "refreshToken": S.STR,
        "tokenType": {"type": "string", "enum": ["Bearer"]},
        "expiresIn": S.INT,
        "refreshExpiresIn": S.INT,
    }
)
ISSUED = S.obj(
    {
        "accessToken": S.STR,
        "tokenType": {"type": "string", "enum": ["Bearer"]},
        "expiresIn": S.INT,
        "jti": S.STR,
        "sub": S.STR,
        "role": S.STR,
        "exp": S.INT,
    }
)
ME = S.obj({"sub": S.STR, "role": S.STR, "exp": S.INT, "iat": S.INT, "jti": S.STR}, {"fid": S.STR})
REVOKED = S.obj({"revoked": S.array(S.STR)})
SUBJECT_REVOKED = S.obj({"sub": S.STR, "revokedBefore": S.INT})
JTI = Text("jti", "The token's id (its jti claim)", location="path", pattern=JTI_RE.pattern.strip("^$"))
SUBJECT = Text("sub", "The subject (the token's sub claim)", location="path", pattern=SUBJECT_RE.pattern.strip("^$"))
ISSUING = (501,)  # a verify-only gateway (RS256 without JWT_PRIVATE_KEY) cannot issue tokens

# -- routes ---------------------------------------------------------------------------------------------

public = Blueprint("auth_public", url_prefix="/api/v1/auth")  # login, refresh
session = Blueprint("auth_session", url_prefix="/api/v1/auth")  # any valid access token
admin = Blueprint("auth_admin", url_prefix="/api/v1/auth")  # token management


def service(request: Request) -> Auth:
    return request.app.ctx.auth


@public.post("/login")
@operation(
    "Log in with a configured user (AUTH_USERS)",
    tag="auth",
    body=LOGIN_REQUEST,
    data=TOKEN_PAIR,
    errors=(401, 429, 503, *ISSUING),
    description="Failed logins lock the user name (LOGIN_MAX_FAILURES) and the client address "
    "(LOGIN_IP_MAX_FAILURES) for LOGIN_LOCKOUT seconds, doubling with each further failure: "
    "429 LOGIN_LOCKED with Retry-After.",
)
async def login(request: Request):
    body = json_body(request, allowed=("username", "password"))
    username = text(body, "username", max_length=64)
    password = text(body, "password", max_length=MAX_PASSWORD_LENGTH)
    return ok(request, await service(request).login(username, password, client_ip(request)))


@public.post("/refresh")
@operation(
    "Exchange a refresh token for a new pair (the refresh token is rotated)",
    tag="auth",
    body=REFRESH_REQUEST,
    data=TOKEN_PAIR,
    errors=(401, 503, *ISSUING),
    description="A refresh token used a second time revokes its whole session (401 TOKEN_REUSED).",
)
async def refresh(request: Request):
    body = json_body(request, allowed=("refreshToken",))
    return ok(request, await service(request).refresh(text(body, "refreshToken")))


@session.post("/logout")
@operation(
    "End this session: this token, every token its login led to, and the refresh token if given",
    tag="auth",
    body=LOGOUT_REQUEST,
    data=REVOKED,
)
async def logout(request: Request):
    body = json_body(request, allowed=("refreshToken",)) if request.body else {}
    refresh_token = text(body, "refreshToken", required=False)
    return ok(request, {"revoked": await service(request).logout(request.ctx.principal, refresh_token)})


@session.get("/me")
@operation("Who this token speaks for (exp and iat in epoch seconds)", tag="auth", data=ME)
async def me(request: Request):
    p: Principal = request.ctx.principal
    me = {"sub": p.sub, "role": str(p.role), "exp": p.exp, "iat": p.iat, "jti": p.jti}
    return ok(request, me if p.fid is None else {**me, "fid": p.fid})


@admin.post("/tokens")
@operation(
    "Issue an access token for any subject and role (admin)",
    tag="auth",
    body=ISSUE_REQUEST,
    data=ISSUED,
    status=201,
    errors=ISSUING,
    description="`ttl` (default 1d) beyond 365 days is a 400 TTL_OUT_OF_RANGE.",
)
async def issue_token(request: Request):
    body = json_body(request, allowed=("sub", "role", "ttl"))
    sub = text(body, "sub", max_length=128)
    if not SUBJECT_RE.match(sub):
        raise invalid("sub", "'sub' must be 1-128 of A-Z a-z 0-9 . _ @ : -")
    try:
        role = Role.parse(body.get("role"))
    except ValueError as exc:
        raise invalid("role", f"'role' {exc}") from None
    ttl_raw = body.get("ttl", DEFAULT_ISSUED_TTL)
    if json_integer(ttl_raw) is not None:
        ttl_raw = json_integer(ttl_raw)
    try:
        if isinstance(ttl_raw, bool) or not isinstance(ttl_raw, str | int):
            raise ValueError("'ttl' must be a duration like 15m, 12h, 30d or a number of seconds")
        if isinstance(ttl_raw, str) and not re.match(DURATION_PATTERN, ttl_raw):
            raise ValueError("'ttl' must be a duration like 90s, 15m, 12h or 30d")
    except ValueError as exc:
        raise invalid("ttl", f"'ttl': {exc}") from None
    try:
        ttl = parse_duration(str(ttl_raw))
    except ValueError as exc:  # well formed, but beyond 365 days (mixed units: not a pattern)
        raise BadRequest(f"'ttl': {exc}", code="TTL_OUT_OF_RANGE", details={"field": "ttl"}) from None
    issued = service(request).mint(sub, role, ttl, by=request.ctx.principal.sub)
    return ok(
        request,
        {
            "accessToken": issued.token,
            "tokenType": "Bearer",
            "expiresIn": issued.lifetime,
            "jti": issued.jti,
            "sub": sub,
            "role": str(role),
            "exp": issued.exp,
        },
        status=201,
    )


@admin.delete("/tokens/<jti:str>")
@operation("Revoke any token by its jti (admin)", tag="auth", path=Query(JTI), data=REVOKED)
async def revoke_token(request: Request, jti: str):
    await service(request).revoke(jti, by=request.ctx.principal.sub)
    return ok(request, {"revoked": [jti]})


@admin.delete("/subjects/<sub:str>/tokens")
@operation(
    "Revoke every token of one subject issued up to now: access, refresh, minted (admin)",
    tag="auth",
    path=Query(SUBJECT),
    data=SUBJECT_REVOKED,
    description="Tokens issued afterwards (a new login, a new minted token) work; those issued in the "
    "same second as the revocation are revoked too.",
)
async def revoke_subject(request: Request, sub: str):
    before = await service(request).revoke_subject(sub, by=request.ctx.principal.sub)
    return ok(request, {"sub": sub, "revokedBefore": before})


def setup_auth(app: Sanic) -> None:
    """Token verification on `app.ctx.auth` and the /api/v1/auth routes. Raises ValueError for an
    unreadable JWT key, so a misconfigured web process refuses to start."""
    app.ctx.auth = Auth(app.ctx.settings, app.ctx)
    protect(session, Role.VIEWER)
    protect(admin, Role.ADMIN)

    @app.on_response
    async def challenge(request: Request, response):
        # RFC 6750: a 401 for a bearer-protected resource says how to authenticate.
        header = getattr(request.ctx, "auth_challenge", None)
        if header and response is not None and response.status == 401:
            response.headers["WWW-Authenticate"] = header

    app.blueprint(public)
    app.blueprint(session)
    app.blueprint(admin)
