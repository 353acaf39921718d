"""Who may call what: JWT access and refresh tokens, roles, revocation, and the /api/v1/auth routes.

    Authorization: Bearer <JWT>
      └─ TokenCodec.decode     one algorithm (HS256 with JWT_SECRET, or RS256 with JWT_PUBLIC_KEY),
         │                     signature, expiry, claims sub/role/exp/iat/jti/typ
         └─ Revocations        jti marked in Redis until the token would have expired anyway
            └─ Principal       on request.ctx.principal; protect(bp, role) checks the role

`protect(blueprint, role)` applies this to every route of a blueprint, where it is mounted; handlers
never check tokens themselves. `authenticate_token(app, token)` is the same check for the WebSocket hub.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, make_dataclass

import orjson
from redis.exceptions import RedisError
from sanic import Blueprint, Request, Sanic
from sanic_ext import openapi

from config.settings import MAX_TOKEN_TTL, Settings, parse_duration

from .envelope import ok
from .errors import ApiError, Forbidden, Unauthorized, invalid
from .passwords import UNKNOWN_USER_HASH, verify_password
from .token_codec import (  # noqa: F401  (Role, TokenCodec, ... are imported from here too)
    CLAIMS, DEFAULT_ISSUED_TTL, JTI_RE, LEEWAY_SECONDS, MAX_TOKEN_LENGTH, SUBJECT_RE, IssuedToken, Principal, Role,
    TokenCodec, TokenType, _invalid,
)

log = logging.getLogger("spotgate.auth")

REALM = "spotgate"
MAX_PASSWORD_LENGTH = 1024
# scrypt takes 32 MiB a hash; bound how many logins hash at once in one process.
CONCURRENT_HASHES = 4
VERIFIED_CACHE_SIZE = 10_000
REVOCATION_RECHECK = 1.0  # seconds a "not revoked" answer is trusted in one process


class Revocations:
    """Revoked token ids in Redis, each kept until its token would have expired anyway."""

    def __init__(self, key_prefix: str):
        self.key_prefix = key_prefix

    def key(self, jti: str) -> str:
        return f"{self.key_prefix}auth:revoked:{jti}"

    async def revoke(self, redis, jti: str, exp: int | None = None) -> bool:
        """Mark `jti` revoked; False when it already was. Without `exp` (a token we never saw),
        the mark outlives any token: none is issued for longer than MAX_TOKEN_TTL."""
        ttl = MAX_TOKEN_TTL if exp is None else exp - int(time.time()) + LEEWAY_SECONDS
        return bool(await redis.set(self.key(jti), b"1", ex=max(1, ttl), nx=True))

    async def is_revoked(self, redis, jti: str) -> bool:
        return bool(await redis.exists(self.key(jti)))


class Auth:
    """The service behind authentication and the /api/v1/auth routes (on `app.ctx.auth`)."""

    def __init__(self, settings: Settings, app_ctx):
        self.codec = TokenCodec.from_settings(settings)
        self.users = {user.name: user for user in settings.auth_users}
        self.access_ttl = settings.access_token_ttl
        self.refresh_ttl = settings.refresh_token_ttl
        self.revocations = Revocations(settings.redis_key_prefix)
        self._app_ctx = app_ctx  # app.ctx.redis is opened at server start, after wiring
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
            if await _redis(self.revocations.is_revoked(self.redis, principal.jti)):
                raise Unauthorized("Token has been revoked", code="TOKEN_REVOKED")
            self._cleared_until[principal.jti] = now + REVOCATION_RECHECK
        return principal

    def _forget(self, jti: str) -> None:
        """A revocation made here takes effect here at once."""
        self._cleared_until.pop(jti, None)

    async def login(self, username: str, password: str) -> dict:
        user = self.users.get(username)
        async with self._hashing:
            # An unknown user costs one hash too, so timing does not tell which names exist.
            matches = await asyncio.to_thread(verify_password, password,
                                              user.password_hash if user else UNKNOWN_USER_HASH)
        if user is None or not matches:
            raise Unauthorized("Invalid username or password", code="INVALID_CREDENTIALS")
        log.info("login sub=%s role=%s", user.name, user.role)
        return self._pair(user.name, Role.parse(user.role))

    async def refresh(self, refresh_token: str) -> dict:
        """A new access token and a new refresh token; the old refresh token is revoked (rotation)."""
        old = await self.authenticate(refresh_token, TokenType.REFRESH)
        user = self.users.get(old.sub)
        if user is None:
            raise _invalid("The token's user no longer exists")
        # SET NX: of two concurrent refreshes with one token, only one wins.
        self._forget(old.jti)
        if not await _redis(self.revocations.revoke(self.redis, old.jti, old.exp)):
            raise Unauthorized("Token has been revoked", code="TOKEN_REVOKED")
        return self._pair(user.name, Role.parse(user.role))  # the role as configured now

    async def logout(self, principal: Principal, refresh_token: str | None) -> list[str]:
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
        for jti, exp in targets:
            self._forget(jti)
            await _redis(self.revocations.revoke(self.redis, jti, exp))
        log.info("logout sub=%s jti=%s", principal.sub, ",".join(jti for jti, _ in targets))
        return [jti for jti, _ in targets]

    def mint(self, sub: str, role: Role, ttl: int, *, by: str) -> IssuedToken:
        issued = self.codec.issue(sub, role, ttl)
        log.info("token issued sub=%s role=%s jti=%s ttl=%s by=%s", sub, role, issued.jti, ttl, by)
        return issued

    async def revoke(self, jti: str, *, by: str) -> None:
        self._forget(jti)
        await _redis(self.revocations.revoke(self.redis, jti))
        log.info("token revoked jti=%s by=%s", jti, by)

    def _pair(self, sub: str, role: Role) -> dict:
        access = self.codec.issue(sub, role, self.access_ttl, TokenType.ACCESS)
        refresh = self.codec.issue(sub, role, self.refresh_ttl, TokenType.REFRESH)
        return {"accessToken": access.token, "refreshToken": refresh.token, "tokenType": "Bearer",
                "expiresIn": access.lifetime, "refreshExpiresIn": refresh.lifetime}


async def _redis(awaitable):
    # Without the revocation list we cannot tell a revoked token from a good one: fail closed.
    try:
        return await awaitable
    except (RedisError, OSError):
        log.warning("revocation list unavailable")
        raise ApiError("Authentication is temporarily unavailable", code="AUTH_UNAVAILABLE",
                       status=503, retry_after=1) from None


# -- for the request path and the WebSocket hub ------------------------------------------------------


async def authenticate_token(app: Sanic, token: str) -> Principal:
    """Verify an access token (signature, algorithm, expiry, revocation); raises Unauthorized."""
    return await app.ctx.auth.authenticate(token)


def require_role(principal: Principal, role: Role) -> None:
    if not principal.has(role):
        raise Forbidden(f"This requires the {role} role", code="ROLE_REQUIRED",
                        details={"requiredRole": str(role), "role": str(principal.role)})


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


# -- routes ---------------------------------------------------------------------------------------------

public = Blueprint("auth_public", url_prefix="/api/v1/auth")     # login, refresh
session = Blueprint("auth_session", url_prefix="/api/v1/auth")   # any valid access token
admin = Blueprint("auth_admin", url_prefix="/api/v1/auth")       # token management


def service(request: Request) -> Auth:
    return request.app.ctx.auth


def json_body(request: Request) -> dict:
    try:
        body = orjson.loads(request.body or b"")
    except orjson.JSONDecodeError:
        raise invalid("body", "The request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise invalid("body", "The request body must be a JSON object")
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


# Schemas for the OpenAPI docs only; handlers build plain dicts.
@dataclass
class LoginRequest:
    username: str
    password: str


@dataclass
class RefreshRequest:
    refreshToken: str


@dataclass
class LogoutRequest:
    refreshToken: str | None = None


@dataclass
class IssueRequest:
    sub: str
    role: str  # viewer | trader | admin
    ttl: str = DEFAULT_ISSUED_TTL  # 90s, 15m, 12h, 30d or seconds


@dataclass
class TokenPair:
    accessToken: str
    refreshToken: str
    tokenType: str
    expiresIn: int
    refreshExpiresIn: int


@dataclass
class IssuedAccessToken:
    accessToken: str
    tokenType: str
    expiresIn: int
    jti: str
    sub: str
    role: str
    exp: int


@dataclass
class Me:
    sub: str
    role: str
    exp: int
    iat: int
    jti: str


@dataclass
class Revoked:
    revoked: list[str]


@dataclass
class ErrorDetail:
    code: str
    message: str
    details: dict


def _enveloped(schema: type) -> type:
    return make_dataclass(f"{schema.__name__}Response", [("data", schema), ("requestId", str), ("timestamp", int)])


ErrorResponse = make_dataclass("ErrorResponse", [("error", ErrorDetail), ("requestId", str), ("timestamp", int)])


def _errors(*statuses: int):
    descriptions = {400: "Bad input, naming the field", 401: "No, bad, expired or revoked token",
                    403: "Role too low (ROLE_REQUIRED)", 503: "Revocation list unavailable"}
    return [openapi.definitions.Response({"application/json": ErrorResponse}, status=s,
                                         description=descriptions[s]) for s in statuses]


@public.post("/login")
@openapi.definition(
    summary="Log in with a configured user (AUTH_USERS)", tag="auth",
    body={"application/json": LoginRequest},
    response=[openapi.definitions.Response({"application/json": _enveloped(TokenPair)}, status=200),
              *_errors(400, 401)],
)
async def login(request: Request):
    body = json_body(request)
    username = text(body, "username", max_length=64)
    password = text(body, "password", max_length=MAX_PASSWORD_LENGTH)
    return ok(request, await service(request).login(username, password))


@public.post("/refresh")
@openapi.definition(
    summary="Exchange a refresh token for a new access token (the refresh token is rotated)", tag="auth",
    body={"application/json": RefreshRequest},
    response=[openapi.definitions.Response({"application/json": _enveloped(TokenPair)}, status=200),
              *_errors(400, 401)],
)
async def refresh(request: Request):
    return ok(request, await service(request).refresh(text(json_body(request), "refreshToken")))


@session.post("/logout")
@openapi.definition(
    summary="Revoke this access token, and the refresh token if given", tag="auth", secured="bearer",
    body={"application/json": LogoutRequest},
    response=[openapi.definitions.Response({"application/json": _enveloped(Revoked)}, status=200),
              *_errors(400, 401)],
)
async def logout(request: Request):
    body = json_body(request) if request.body else {}
    refresh_token = text(body, "refreshToken", required=False)
    return ok(request, {"revoked": await service(request).logout(request.ctx.principal, refresh_token)})


@session.get("/me")
@openapi.definition(
    summary="Who this token speaks for (exp and iat in epoch seconds)", tag="auth", secured="bearer",
    response=[openapi.definitions.Response({"application/json": _enveloped(Me)}, status=200), *_errors(401)],
)
async def me(request: Request):
    p: Principal = request.ctx.principal
    return ok(request, {"sub": p.sub, "role": str(p.role), "exp": p.exp, "iat": p.iat, "jti": p.jti})


@admin.post("/tokens")
@openapi.definition(
    summary="Issue an access token for any subject and role (admin)", tag="auth", secured="bearer",
    body={"application/json": IssueRequest},
    response=[openapi.definitions.Response({"application/json": _enveloped(IssuedAccessToken)}, status=201),
              *_errors(400, 401, 403)],
)
async def issue_token(request: Request):
    body = json_body(request)
    sub = text(body, "sub", max_length=128)
    if not SUBJECT_RE.match(sub):
        raise invalid("sub", "'sub' must be 1-128 of A-Z a-z 0-9 . _ @ : -")
    try:
        role = Role.parse(body.get("role"))
    except ValueError as exc:
        raise invalid("role", f"'role' {exc}") from None
    ttl_raw = body.get("ttl", DEFAULT_ISSUED_TTL)
    try:
        if isinstance(ttl_raw, bool) or not isinstance(ttl_raw, str | int):
            raise ValueError("'ttl' must be a duration like 15m, 12h, 30d or a number of seconds")
        ttl = parse_duration(str(ttl_raw))
    except ValueError as exc:
        raise invalid("ttl", f"'ttl': {exc}") from None
    issued = service(request).mint(sub, role, ttl, by=request.ctx.principal.sub)
    return ok(request, {"accessToken": issued.token, "tokenType": "Bearer", "expiresIn": issued.lifetime,
                        "jti": issued.jti, "sub": sub, "role": str(role), "exp": issued.exp}, status=201)


@admin.delete("/tokens/<jti:str>")
@openapi.definition(
    summary="Revoke any token by its jti (admin)", tag="auth", secured="bearer",
    response=[openapi.definitions.Response({"application/json": _enveloped(Revoked)}, status=200),
              *_errors(400, 401, 403)],
)
async def revoke_token(request: Request, jti: str):
    if not JTI_RE.match(jti):
        raise invalid("jti", "'jti' must be 1-128 of A-Z a-z 0-9 _ -")
    await service(request).revoke(jti, by=request.ctx.principal.sub)
    return ok(request, {"revoked": [jti]})


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
