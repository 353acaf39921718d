"""spotgate's JWTs with no web framework: roles, claims, signing and verifying (TokenCodec).

Kept apart from app.auth (routes, revocation, Redis) so `python -m app.tokens issue` imports only
this, PyJWT and the settings, and answers at once instead of loading the whole web tier.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

import jwt

from config.settings import ROLES, Settings

from .errors import ApiError, Unauthorized

CLAIMS = ("sub", "role", "exp", "iat", "jti", "typ")  # and `fid` (the session) on login tokens
# Tolerated clock difference between the process that issued a token and the one checking it.
LEEWAY_SECONDS = 10
MAX_TOKEN_LENGTH = 8192
DEFAULT_ISSUED_TTL = "1d"  # tokens minted by the CLI or an admin, for bots and services
SUBJECT_RE = re.compile(r"^[A-Za-z0-9._@:-]{1,128}$")
JTI_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
FID_RE = JTI_RE


class Role(IntEnum):
    """Roles in increasing power; each includes what the ones below it may do."""

    VIEWER = 1  # market data, account reads
    TRADER = 2  # + orders
    ADMIN = 3  # + kill switch, risk limits, tokens

    @classmethod
    def parse(cls, name: object) -> Role:
        if isinstance(name, str) and name in ROLES:
            return cls[name.upper()]
        raise ValueError(f"role must be one of {', '.join(ROLES)}")

    def __str__(self) -> str:
        return self.name.lower()


class TokenType(StrEnum):
    ACCESS = "access"  # sent as Bearer on every call
    REFRESH = "refresh"  # only ever sent to POST /api/v1/auth/refresh (and logout)


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    sub: str
    role: Role
    jti: str
    exp: int
    iat: int
    fid: str | None = None  # the session (login) this token belongs to; None for minted tokens

    def has(self, role: Role) -> bool:
        return self.role >= role


@dataclass(frozen=True)
class IssuedToken:
    token: str = field(repr=False)
    sub: str
    role: Role
    typ: TokenType
    jti: str
    iat: int
    exp: int
    fid: str | None = None

    @property
    def lifetime(self) -> int:
        return self.exp - self.iat


class TokenCodec:
    """Signs and verifies spotgate JWTs with exactly one algorithm; no I/O.

    HS256 signs and verifies with JWT_SECRET. RS256 verifies with JWT_PUBLIC_KEY and signs with
    JWT_PRIVATE_KEY, which only the processes that issue tokens need. A token in any other
    algorithm (`none`, HS256 where RS256 is configured, ...) is refused before its signature is looked at.
    """

    def __init__(self, algorithm: str, verify_key, signing_key=None):
        self.algorithm = algorithm
        self._verify_key = verify_key
        self._signing_key = signing_key

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenCodec:
        """Raises ValueError naming the variable when a configured key cannot be read."""
        if settings.jwt_public_key is None:
            return cls("HS256", settings.jwt_secret, settings.jwt_secret)
        public = _load_key("JWT_PUBLIC_KEY", settings.jwt_public_key, private=False)
        private = None
        if settings.jwt_private_key is not None:
            private = _load_key("JWT_PRIVATE_KEY", settings.jwt_private_key, private=True)
        return cls("RS256", public, private)

    @property
    def can_issue(self) -> bool:
        return self._signing_key is not None

    def issue(
        self,
        sub: str,
        role: Role,
        ttl: int,
        typ: TokenType = TokenType.ACCESS,
        now: int | None = None,
        fid: str | None = None,
    ) -> IssuedToken:
        if not self.can_issue:
            raise ApiError(
                "This gateway only verifies tokens: issue them where JWT_PRIVATE_KEY is set",
                code="TOKEN_ISSUING_DISABLED",
                status=501,
            )
        iat = int(time.time()) if now is None else now
        claims = {"sub": sub, "role": str(role), "iat": iat, "exp": iat + ttl, "jti": uuid.uuid4().hex, "typ": str(typ)}
        if fid is not None:
            claims["fid"] = fid
        token = jwt.encode(claims, self._signing_key, algorithm=self.algorithm)
        return IssuedToken(token, sub, role, typ, claims["jti"], iat, claims["exp"], fid)

    def decode(self, token: str, typ: TokenType = TokenType.ACCESS) -> Principal:
        """Verify `token` as a `typ` token; raises Unauthorized with a TOKEN_* code."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise _invalid("Token is malformed")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _invalid("Token is malformed") from None
        if header.get("alg") != self.algorithm:
            raise _invalid(f"Token must be signed with {self.algorithm}")
        try:
            claims = jwt.decode(
                token,
                self._verify_key,
                algorithms=[self.algorithm],
                leeway=LEEWAY_SECONDS,
                options={"require": list(CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("Token has expired", code="TOKEN_EXPIRED") from None
        except jwt.InvalidSignatureError:
            raise _invalid("Token signature is invalid") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _invalid(f"Token lacks the '{exc.claim}' claim") from None
        except jwt.ImmatureSignatureError:
            raise _invalid("Token is issued in the future") from None
        except jwt.InvalidTokenError:
            raise _invalid("Token is malformed") from None
        sub, jti, fid = claims["sub"], claims["jti"], claims.get("fid")
        if not isinstance(sub, str) or not sub or not isinstance(jti, str) or not JTI_RE.match(jti):
            raise _invalid("Token claims are malformed")
        if fid is not None and (not isinstance(fid, str) or not FID_RE.match(fid)):
            raise _invalid("Token claims are malformed")
        if not all(isinstance(claims[name], int) and 0 <= claims[name] <= 2**53 for name in ("exp", "iat")):
            raise _invalid("Token claims are malformed")
        try:
            role = Role.parse(claims["role"])
        except ValueError:
            raise _invalid("Token names an unknown role") from None
        if claims["typ"] != typ:
            if claims["typ"] == TokenType.REFRESH:
                raise Unauthorized(
                    "A refresh token cannot be used as an access token; exchange it at POST /api/v1/auth/refresh",
                    code="TOKEN_WRONG_TYPE",
                )
            raise Unauthorized(f"Expected a {typ} token", code="TOKEN_WRONG_TYPE")
        return Principal(sub, role, jti, claims["exp"], claims["iat"], fid)


def _load_key(name: str, pem: str, *, private: bool):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        if private:
            key = serialization.load_pem_private_key(pem.encode(), password=None)
        else:
            key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        kind = "an unencrypted PEM RSA private key" if private else "a PEM RSA public key"
        raise ValueError(f"{name} must be {kind}") from None
    if not isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        raise ValueError(f"{name} must be an RSA key (RS256)")
    if key.key_size < 2048:
        raise ValueError(f"{name} must be an RSA key of at least 2048 bits")
    return key


def _invalid(message: str) -> Unauthorized:
    return Unauthorized(message, code="TOKEN_INVALID")
