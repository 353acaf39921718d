"""Signing for Binance's SIGNED security type, with any of its API key types (faqs/api_key_types.md).

    hmac_sha256(secret, payload)       hex; HMAC keys (deprecated by Binance)
    rsa_sha256(private_key, payload)   base64 RSASSA-PKCS1-v1_5 / SHA-256; RSA keys (2048 or 4096 bits)
    ed25519_sign(private_key, payload) base64; Ed25519 keys (Binance's recommendation; the only kind
                                       `session.logon` takes)

The three functions are pure. A `Signer` holds one key and names its type; `load_signer` reads a PEM
private key and detects which type it is. `signed_query` builds a REST query string (percent-encode
the payload, then sign those bytes, then append the percent-encoded signature: rest-api.md, since
2026-01-15 a signature of the decoded text is -1022); `ws_api_params` signs WebSocket API params (sorted
by name, UTF-8, not percent-encoded: web-socket-api.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import quote, urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa


class KeyType(StrEnum):
    HMAC = "HMAC"
    RSA = "RSA"
    ED25519 = "ED25519"


def _bytes(payload: str | bytes) -> bytes:
    return payload.encode() if isinstance(payload, str) else payload


def hmac_sha256(secret: str, payload: str | bytes) -> str:
    return hmac.new(secret.encode(), _bytes(payload), hashlib.sha256).hexdigest()


def rsa_sha256(private_key: rsa.RSAPrivateKey, payload: str | bytes) -> str:
    return base64.b64encode(private_key.sign(_bytes(payload), padding.PKCS1v15(), hashes.SHA256())).decode()


def ed25519_sign(private_key: ed25519.Ed25519PrivateKey, payload: str | bytes) -> str:
    return base64.b64encode(private_key.sign(_bytes(payload))).decode()


@dataclass(frozen=True)
class Signer:
    """One API key's signing half. `sign` returns the signature as Binance takes it (hex for HMAC,
    base64 otherwise), before any percent-encoding."""

    key_type: KeyType
    _key: object = field(repr=False)

    def sign(self, payload: str | bytes) -> str:
        if self.key_type is KeyType.HMAC:
            return hmac_sha256(self._key, payload)  # type: ignore[arg-type]
        if self.key_type is KeyType.RSA:
            return rsa_sha256(self._key, payload)  # type: ignore[arg-type]
        return ed25519_sign(self._key, payload)  # type: ignore[arg-type]

    def __repr__(self) -> str:  # never the key
        return f"Signer({self.key_type})"


def hmac_signer(secret: str) -> Signer:
    if not secret:
        raise ValueError("an HMAC secret must not be empty")
    return Signer(KeyType.HMAC, secret)


def load_signer(pem: bytes | str, passphrase: str | bytes | None = None) -> Signer:
    """A Signer for a PEM private key (PKCS#8 or traditional; encrypted ones need `passphrase`); the
    key type is read from the key. Raises ValueError for anything but RSA (2048/4096) or Ed25519."""
    password = passphrase.encode() if isinstance(passphrase, str) else passphrase
    try:
        key = serialization.load_pem_private_key(_bytes(pem), password=password or None)
    except TypeError as exc:  # encrypted without a passphrase, or a passphrase for a plain key
        raise ValueError(f"cannot read the private key: {exc}") from None
    except ValueError:
        raise ValueError("cannot read the private key: not a PEM private key, or a wrong passphrase") from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Signer(KeyType.ED25519, key)
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size not in (2048, 4096):
            raise ValueError(f"Binance takes RSA keys of 2048 or 4096 bits, not {key.key_size}")
        return Signer(KeyType.RSA, key)
    raise ValueError(f"Binance takes HMAC, RSA and Ed25519 keys, not {type(key).__name__}")


def load_signer_file(path: str, passphrase: str | bytes | None = None) -> Signer:
    with open(path, "rb") as f:
        return load_signer(f.read(), passphrase)


def signed_query(params: dict, signer: Signer | str, timestamp: int, recv_window: int | None = None) -> str:
    """The query string of a SIGNED REST request: params + recvWindow + timestamp + signature.

    The payload is percent-encoded first (UTF-8) and the signature computed over exactly those bytes;
    a base64 signature is percent-encoded in turn (`+`, `/`, `=`), as rest-api.md shows. A plain
    string is taken as an HMAC secret."""
    if isinstance(signer, str):
        signer = hmac_signer(signer)
    items = [(k, wire(v)) for k, v in params.items() if v is not None]
    if recv_window is not None:
        items.append(("recvWindow", str(recv_window)))
    items.append(("timestamp", str(timestamp)))
    query = urlencode(items, encoding="utf-8")
    return f"{query}&signature={quote(signer.sign(query), safe='')}"


def ws_api_payload(params: dict) -> str:
    """Every param but `signature`, sorted by name, as name=value joined by & (not percent-encoded)."""
    return "&".join(f"{k}={wire(params[k])}" for k in sorted(params) if k != "signature")


def ws_api_params(
    params: dict, api_key: str, signer: Signer | str, timestamp: int, recv_window: int | None = None
) -> dict:
    """Signed params for a WebSocket API request (web-socket-api.md): apiKey and timestamp added,
    the signature over the sorted params' UTF-8 bytes. A plain string is taken as an HMAC secret."""
    if isinstance(signer, str):
        signer = hmac_signer(signer)
    signed = {k: v for k, v in params.items() if v is not None}
    signed["apiKey"] = api_key
    signed["timestamp"] = timestamp
    if recv_window is not None:
        signed["recvWindow"] = recv_window
    signed["signature"] = signer.sign(ws_api_payload(signed).encode("utf-8"))
    return signed


def wire(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
