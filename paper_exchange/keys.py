"""API keys of the paper exchange and how each kind's signature is verified, as Binance does.

    HMAC      the shared secret; signature = HMAC-SHA256 of the payload, hex (case-insensitive)
    RSA       a registered public key; signature = RSASSA-PKCS1-v1_5 / SHA-256, base64 (case-sensitive)
    ED25519   a registered public key; signature = Ed25519, base64 (case-sensitive)

The payload is whatever the caller hands over: for REST the exact bytes sent (query string + body,
percent-encoded as they travelled), for the WebSocket API the sorted `name=value` string in UTF-8.
This module never rebuilds or decodes a payload, which is what makes the check strict.

Written from Binance's docs with `cryptography`, independently of spotgate's binance_client.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

HMAC, RSA, ED25519 = "HMAC", "RSA", "ED25519"


@dataclass(frozen=True)
class ApiKey:
    key: str
    account: str
    kind: str
    secret: str = field(default="", repr=False)  # HMAC only
    public_key: object = field(default=None, repr=False)  # RSA / Ed25519

    def verify(self, payload: bytes, signature: str) -> bool:
        if not isinstance(signature, str) or not signature:
            return False
        if self.kind == HMAC:
            expected = hmac.new(self.secret.encode(), payload, hashlib.sha256).hexdigest()
            return hmac.compare_digest(expected, signature.lower())
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return False
        try:
            if self.kind == RSA:
                self.public_key.verify(raw, payload, padding.PKCS1v15(), hashes.SHA256())
            else:
                self.public_key.verify(raw, payload)
        except InvalidSignature:
            return False
        return True


def load_public_key(path: str | Path) -> tuple[str, object]:
    """(kind, key) of a PEM public key file: RSA (2048 or 4096 bits, as Binance takes) or Ed25519."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except OSError as exc:
        raise ValueError(f"cannot read the public key {path}: {exc.strerror}") from None
    except ValueError:
        raise ValueError(f"{path} is not a PEM public key") from None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ED25519, key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size not in (2048, 4096):
            raise ValueError(f"{path}: RSA keys must have 2048 or 4096 bits, not {key.key_size}")
        return RSA, key
    raise ValueError(f"{path}: only RSA and Ed25519 public keys can be registered")


def register(key: str, account: str, public_key_file: str | Path, expected_kind: str) -> ApiKey:
    kind, public_key = load_public_key(public_key_file)
    if kind != expected_kind:
        raise ValueError(f"{public_key_file} holds an {kind} key, but it is configured as the {expected_kind} key")
    return ApiKey(key, account, kind, public_key=public_key)
