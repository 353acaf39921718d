"""binance_client's signers for every API key type, against Binance's documented examples where the
docs give them (rest-api.md, web-socket-api.md): HMAC signatures exactly; for RSA and Ed25519 the docs
publish no private key, so the payloads and the percent-encoding of the signature are checked against
the documented strings and the signatures against the public key."""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl, unquote

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from binance_client import KeyType, load_signer
from binance_client.signing import hmac_signer, signed_query, ws_api_params, ws_api_payload

DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
ED25519_DOC_KEY = "4yNzx3yWC5bS6YTwEkSRaC0nRmSQIIStAUOh1b6kqaBrTLIhjCpI5lJH8q8R8WNO"
# rest-api.md's RSA and Ed25519 examples: the order and its percent-encoded payload
DOC_ORDER = {
    "symbol": "１２３４５６",
    "side": "SELL",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "1",
    "price": "0.2",
}
# (the docs list timestamp before recvWindow there; signed_query always appends recvWindow, timestamp)
DOC_PAYLOAD = (
    "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=SELL&type=LIMIT&timeInForce=GTC"
    "&quantity=1&price=0.2&recvWindow=5000&timestamp=1668481559918"
)


def pem(key, password: bytes | None = None, fmt=serialization.PrivateFormat.PKCS8) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption)


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ed_key():
    return ed25519.Ed25519PrivateKey.generate()


def rest_query_ordered(signer):
    return signed_query(DOC_ORDER, signer, timestamp=1668481559918, recv_window=5000)


def test_key_type_is_read_from_the_pem(rsa_key, ed_key):
    assert load_signer(pem(rsa_key)).key_type is KeyType.RSA
    assert load_signer(pem(rsa_key, fmt=serialization.PrivateFormat.TraditionalOpenSSL)).key_type is KeyType.RSA
    assert load_signer(pem(ed_key)).key_type is KeyType.ED25519
    assert load_signer(pem(ed_key, b"s3cret"), "s3cret").key_type is KeyType.ED25519
    for bad, passphrase in (
        (pem(ed_key, b"s3cret"), None),
        (pem(ed_key, b"s3cret"), "wrong"),
        (pem(ed_key), "unexpected"),
        (b"not a key", None),
        (pem(ec.generate_private_key(ec.SECP256R1())), None),
        (pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)), None),
    ):
        with pytest.raises(ValueError):
            load_signer(bad, passphrase)
    assert "PRIVATE" not in repr(load_signer(pem(ed_key))) and repr(hmac_signer(DOC_SECRET)) == "Signer(HMAC)"


def test_rest_rsa_signature_covers_the_documented_percent_encoded_payload(rsa_key):
    query = rest_query_ordered(load_signer(pem(rsa_key)))
    payload, _, signature = query.partition("&signature=")
    assert payload == DOC_PAYLOAD
    raw = base64.b64decode(unquote(signature), validate=True)
    rsa_key.public_key().verify(raw, payload.encode(), padding.PKCS1v15(), hashes.SHA256())
    assert "+" not in signature and "/" not in signature and "=" not in signature  # percent-encoded base64


def test_rest_ed25519_signature_covers_the_percent_encoded_payload(ed_key):
    query = rest_query_ordered(load_signer(pem(ed_key)))
    payload, _, signature = query.partition("&signature=")
    ed_key.public_key().verify(base64.b64decode(unquote(signature), validate=True), payload.encode())
    # parsed back as a server does, the value is the base64 signature itself
    assert dict(parse_qsl(query))["signature"] == unquote(signature)
    with pytest.raises(InvalidSignature):  # a signature of the decoded text is a different signature
        ed_key.public_key().verify(base64.b64decode(unquote(signature)), unquote(payload).encode())


def test_the_documented_base64_signature_is_percent_encoded_as_the_docs_show():
    from urllib.parse import quote

    documented = "HaZnek7KOGa/k5+f6Q1nw8lzMUpo36mRVvvLHCMUCXxlmdQQGZge1luAUKnleD/DYeD19YrqzeHbb6xU3MkSIXKhAO1Ma"
    assert quote(documented, safe="") == (
        "HaZnek7KOGa%2Fk5%2Bf6Q1nw8lzMUpo36mRVvvLHCMUCXxlmdQQGZge1luAUKnleD%2FDYeD19YrqzeHbb6xU3MkSIXKhAO1Ma"
    )
    assert quote("AO1MaYq48uGVYb3vJScE=", safe="") == "AO1MaYq48uGVYb3vJScE%3D"


def test_ws_api_payload_is_utf8_and_not_percent_encoded(ed_key):
    # web-socket-api.md, "SIGNED Request Example (Ed25519)", its second (non-ASCII) payload
    params = ws_api_params(
        {
            "symbol": "１２３４５６",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "1.00000000",
            "price": "0.10000000",
        },
        ED25519_DOC_KEY,
        load_signer(pem(ed_key)),
        timestamp=1645423376532,
        recv_window=5000,
    )
    payload = ws_api_payload(params)
    assert payload == (
        f"apiKey={ED25519_DOC_KEY}&price=0.10000000&quantity=1.00000000&recvWindow=5000&side=BUY"
        "&symbol=１２３４５６&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
    )
    ed_key.public_key().verify(base64.b64decode(params["signature"], validate=True), payload.encode("utf-8"))


def test_ws_api_hmac_non_ascii_example():
    # web-socket-api.md, "SIGNED request example (HMAC)", second set
    params = ws_api_params(
        {
            "symbol": "１２３４５６",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "1.00000000",
            "price": "0.10000000",
        },
        DOC_KEY,
        hmac_signer(DOC_SECRET),
        timestamp=1645423376532,
        recv_window=5000,
    )
    assert params["signature"] == "b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd"


def test_session_logon_params_are_signed_like_any_ws_api_request(ed_key):
    params = ws_api_params({}, ED25519_DOC_KEY, load_signer(pem(ed_key)), timestamp=1649729878532)
    assert sorted(params) == ["apiKey", "signature", "timestamp"]
    ed_key.public_key().verify(
        base64.b64decode(params["signature"]), f"apiKey={ED25519_DOC_KEY}&timestamp=1649729878532".encode()
    )
