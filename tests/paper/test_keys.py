"""API key types on the paper exchange, as Binance verifies them: HMAC, RSA and Ed25519 keys of one
demo account, each signature checked over the bytes as sent (percent-encoded) and refused with
-1022 otherwise; and the WebSocket API session (session.logon / status / logout with an Ed25519 key,
userDataStream.subscribe on the logged-on session)."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlencode

import pytest

from paper_exchange.config import PaperConfig
from paper_exchange.keys import HMAC, ApiKey
from paper_exchange.server import PaperExchange
from paper_exchange.symbols import UNICODE_SYMBOL
from tests.paper.ws_client import api_request, connect, user_event, wait_for
from tests.processes import DEMO_KEY, DEMO_SECRET, ED25519_KEY, RSA_KEY, asymmetric_signature, key_files

KINDS = ("hmac", "rsa", "ed25519")
INVALID = {"code": -1022, "msg": "Signature for this request is not valid."}


def sign(px, kind: str, payload: str) -> tuple[str, str]:
    """(API key, signature as it goes into a query string) for `payload`."""
    if kind == "hmac":
        return DEMO_KEY, px.sign(payload)
    return {"rsa": RSA_KEY, "ed25519": ED25519_KEY}[kind], quote(asymmetric_signature(kind, payload.encode()), safe="")


def send(px, method: str, path: str, query: str, key: str):
    return px.http.request(method, f"{px.url}{path}?{query}", headers={"X-MBX-APIKEY": key}, timeout=10)


@pytest.mark.parametrize("kind", KINDS)
def test_every_key_type_signs_for_the_same_account(paper, kind):
    account = paper.signed("GET", "/api/v3/account", key_type=kind)
    assert account.status_code == 200, account.text
    assert account.json()["uid"] == paper.signed("GET", "/api/v3/account").json()["uid"]
    order = paper.signed(
        "POST",
        "/api/v3/order",
        key_type=kind,
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.01",
        price="1000.00",
        newClientOrderId=f"keys-{kind}",
    )
    assert order.status_code == 200, order.text
    seen = paper.signed("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId=f"keys-{kind}")  # by HMAC
    assert seen.json()["orderId"] == order.json()["orderId"]
    canceled = paper.signed(
        "DELETE", "/api/v3/order", key_type=kind, symbol="BTCUSDT", origClientOrderId=f"keys-{kind}"
    )
    assert canceled.json()["status"] == "CANCELED"


@pytest.mark.parametrize("kind", KINDS)
def test_a_signature_over_the_decoded_payload_is_refused(paper, kind):
    """Since 2026-01-15: sign the percent-encoded payload. The UTF-8 symbol travels as
    %E5%B8%81...; a signature of the text before encoding is -1022, whatever the key type."""
    params = [("symbol", UNICODE_SYMBOL), ("timestamp", str(int(time.time() * 1000)))]
    encoded = urlencode(params)
    decoded = "&".join(f"{k}={v}" for k, v in params)
    assert encoded != decoded
    key, bad = sign(paper, kind, decoded)
    refused = send(paper, "GET", "/api/v3/openOrders", f"{encoded}&signature={bad}", key)
    assert (refused.status_code, refused.json()) == (400, INVALID)
    key, good = sign(paper, kind, encoded)
    accepted = send(paper, "GET", "/api/v3/openOrders", f"{encoded}&signature={good}", key)
    assert (accepted.status_code, accepted.json()) == (200, [])


@pytest.mark.parametrize("kind", ("rsa", "ed25519"))
def test_asymmetric_signatures_are_case_sensitive_and_key_bound(paper, kind):
    query = urlencode([("timestamp", str(int(time.time() * 1000)))])
    key, signature = sign(paper, kind, query)
    other = RSA_KEY if kind == "ed25519" else ED25519_KEY
    for wrong_key, wrong_signature in (
        (key, signature.swapcase()),
        (other, signature),
        (key, "not-base64!"),
        (key, px_hmac(query)),
    ):
        answer = send(paper, "GET", "/api/v3/account", f"{query}&signature={wrong_signature}", wrong_key)
        assert (answer.status_code, answer.json()) == (400, INVALID)


def px_hmac(payload: str) -> str:
    return hmac.new(DEMO_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()


def test_binances_documented_hmac_examples_verify():
    """rest-api.md and web-socket-api.md, "SIGNED ... examples (HMAC)": the REST payloads are
    percent-encoded (the second holds １２３４５６), the WebSocket API ones are not."""
    key = ApiKey(DEMO_KEY, "paper-user", HMAC, secret=DEMO_SECRET)
    rest_ascii = (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    )
    rest_unicode = (
        "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT"
        "&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    )
    ws_unicode = (
        f"apiKey={DEMO_KEY}&price=0.10000000&quantity=1.00000000&recvWindow=5000&side=BUY"
        "&symbol=１２３４５６&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
    )
    assert key.verify(rest_ascii.encode(), "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71")
    assert key.verify(rest_unicode.encode(), "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3")
    assert key.verify(ws_unicode.encode(), "b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd")
    assert not key.verify(rest_unicode.encode(), "b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd")


# -- WebSocket API ------------------------------------------------------------------------------------


def ws_signed(kind: str, key: str | None = None, **extra) -> dict:
    """session.logon / userDataStream.subscribe.signature params: signed over the params sorted by
    name, in UTF-8, not percent-encoded (web-socket-api.md)."""
    params = {
        "apiKey": key or {"hmac": DEMO_KEY, "rsa": RSA_KEY, "ed25519": ED25519_KEY}[kind],
        "timestamp": int(time.time() * 1000),
        **extra,
    }
    payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
    params["signature"] = px_hmac(payload) if kind == "hmac" else asymmetric_signature(kind, payload.encode())
    return params


def test_session_logon_status_logout_and_the_logged_on_user_stream(paper):
    ws = connect(paper, "/ws-api/v3?returnRateLimits=false")
    opened = time.time() * 1000
    try:
        status = api_request(ws, "s0", "session.status")
        assert status == {
            "id": "s0",
            "status": 200,
            "result": {
                "apiKey": None,
                "authorizedSince": None,
                "connectedSince": status["result"]["connectedSince"],
                "returnRateLimits": False,
                "serverTime": status["result"]["serverTime"],
                "userDataStream": False,
            },
        }
        assert abs(status["result"]["connectedSince"] - opened) < 5000

        refused = api_request(ws, "u0", "userDataStream.subscribe")
        assert (refused["status"], refused["error"]["code"]) == (401, -1002)

        logon = api_request(ws, "l1", "session.logon", ws_signed("ed25519"))
        result = logon["result"]
        assert logon["status"] == 200 and list(result) == [
            "apiKey",
            "authorizedSince",
            "connectedSince",
            "returnRateLimits",
            "serverTime",
            "userDataStream",
        ]
        assert (result["apiKey"], result["userDataStream"], result["returnRateLimits"]) == (ED25519_KEY, False, False)
        assert result["connectedSince"] == status["result"]["connectedSince"] <= result["authorizedSince"]

        subscribed = api_request(ws, "u1", "userDataStream.subscribe")
        assert subscribed == {"id": "u1", "status": 200, "result": {"subscriptionId": 0}}
        assert api_request(ws, "s1", "session.status")["result"]["userDataStream"] is True
        again = api_request(ws, "u2", "userDataStream.subscribe")
        assert again["error"]["code"] == -2035  # one subscription per account and connection

        placed = paper.signed(
            "POST",
            "/api/v3/order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.01",
            price="1000.00",
            newClientOrderId="logon-1",
        )
        assert placed.status_code == 200, placed.text
        report = user_event(ws, "executionReport", c="logon-1")
        assert report["subscriptionId"] == 0 and report["event"]["X"] == "NEW"
        paper.signed("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="logon-1")

        logout = api_request(ws, "o1", "session.logout")
        assert logout["status"] == 200 and (
            logout["result"]["apiKey"],
            logout["result"]["authorizedSince"],
            logout["result"]["userDataStream"],
        ) == (None, None, False)
        ended = wait_for(ws, lambda m: (m.get("event") or {}).get("e") == "eventStreamTerminated", timeout=5)
        assert ended["subscriptionId"] == 0
        assert api_request(ws, "u3", "userDataStream.subscribe")["status"] == 401
    finally:
        ws.close()


def test_session_logon_takes_only_ed25519_keys_and_checks_them(paper):
    ws = connect(paper, "/ws-api/v3")
    try:
        for kind in ("hmac", "rsa"):
            answer = api_request(ws, f"l-{kind}", "session.logon", ws_signed(kind))
            assert (answer["status"], answer["error"]["code"]) == (401, -1002), kind
        forged = ws_signed("ed25519")
        forged["timestamp"] += 1
        answer = api_request(ws, "l-forged", "session.logon", forged)
        assert answer["error"] == INVALID
        assert api_request(ws, "s", "session.status")["result"]["apiKey"] is None
    finally:
        ws.close()


@pytest.mark.parametrize("kind", KINDS)
def test_signature_subscriptions_take_every_key_type(paper, kind):
    ws = connect(paper, "/ws-api/v3")
    try:
        answer = api_request(ws, 1, "userDataStream.subscribe.signature", ws_signed(kind))
        assert answer["status"] == 200 and answer["result"] == {"subscriptionId": 0}, answer
        # a signed subscription survives session.logout (only the logon's own subscription ends)
        assert api_request(ws, 2, "session.logout")["result"]["userDataStream"] is True
        assert api_request(ws, 3, "session.subscriptions")["result"] == [{"subscriptionId": 0}]
    finally:
        ws.close()


# -- configuration ------------------------------------------------------------------------------------


def test_public_key_files_are_checked_at_start(tmp_path):
    keys = key_files()
    config = PaperConfig.from_env(
        {
            "PAPER_RSA_PUBLIC_KEY_FILE": str(keys["rsa_public"]),
            "PAPER_ED25519_PUBLIC_KEY_FILE": str(keys["ed25519_public"]),
            "PAPER_ED25519_API_KEY": "myEd25519Key",
        }
    )
    px = PaperExchange(config)
    assert {k: v.kind for k, v in px.api_keys.items()} == {DEMO_KEY: "HMAC", RSA_KEY: "RSA", "myEd25519Key": "ED25519"}
    assert len({v.account for v in px.api_keys.values()}) == 1
    with pytest.raises(ValueError, match="PAPER_RSA_PUBLIC_KEY_FILE: no such file"):
        PaperConfig.from_env({"PAPER_RSA_PUBLIC_KEY_FILE": str(tmp_path / "missing.pem")})
    swapped = PaperConfig.from_env({"PAPER_RSA_PUBLIC_KEY_FILE": str(keys["ed25519_public"])})
    with pytest.raises(ValueError, match="holds an ED25519 key"):
        PaperExchange(swapped)
