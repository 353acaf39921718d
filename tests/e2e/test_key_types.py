"""The order round trip through the whole stack once per API key type: the worker signs with an HMAC
secret, an RSA or an Ed25519 private key (type read from the PEM: the RSA key given as the PEM itself
in BINANCE_PRIVATE_KEY, one line with `\\n`s as a Heroku config var holds it; the Ed25519 key as
BINANCE_PRIVATE_KEY_FILE); a LIMIT
order is placed, queried and canceled over REST and both changes come back on `/ws/user`. With the
Ed25519 key the relay's user stream is a `session.logon` session (signed by a worker) that
`userDataStream.subscribe`s, logged on again after a dropped connection; with the others it is
`userDataStream.subscribe.signature`. A UTF-8 symbol makes the same round trip."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from paper_exchange.symbols import UNICODE_SYMBOL
from services.contract.keys import Keys
from tests.processes import ED25519_KEY, RSA_KEY, key_files
from tests.support import eventually

from .conftest import System
from .test_user import execution_report

pytestmark = pytest.mark.integration


def worker_env(kind: str) -> dict:
    if kind == "hmac":
        return {}  # the paper exchange's demo pair, the default in paper mode
    path = key_files()[f"{kind}_private"]
    if kind == "rsa":
        return {"BINANCE_API_KEY": RSA_KEY, "BINANCE_PRIVATE_KEY": path.read_text().strip().replace("\n", "\\n")}
    return {"BINANCE_API_KEY": ED25519_KEY, "BINANCE_PRIVATE_KEY_FILE": str(path)}


@pytest.fixture(scope="module", params=("hmac", "rsa", "ed25519"))
def keyed(request, redis_url):
    system = System(redis_url, seed=90, worker_env=worker_env(request.param))
    try:
        system.start_relay(USER_STREAM_MODE="ws-api", STREAM_SYMBOLS="none")
        eventually(system.user_stream_ready, 30, what="the user stream subscribed")
        yield request.param, system
    finally:
        system.stop()


def relay_auth(system) -> str:
    return orjson.loads(system.redis.get(Keys(system.prefix).stream_status))["user"]["auth"]


def logged_on_api_connections(system) -> list[dict]:
    connections = system.paper.admin("GET", "streams").json()["connections"]
    return [c for c in connections if c["kind"] == "api" and c["loggedOn"] == ED25519_KEY]


def round_trip(system, symbol: str, price: Decimal, quantity: str) -> None:
    trader = {"Authorization": f"Bearer {system.web.token('trader')}"}
    with system.connect("/ws/user", additional_headers={"Authorization": f"Bearer {system.web.token()}"}) as user:
        user.next("welcome")
        user.next("subscribed")
        placed = system.web.http.post(
            system.web.url + "/api/v1/order",
            timeout=30,
            headers=trader,
            json={"symbol": symbol, "side": "BUY", "type": "LIMIT", "quantity": quantity, "price": str(price)},
        )
        assert placed.status_code == 201, placed.text
        order = placed.json()["data"]
        assert order["symbol"] == symbol and order["status"] == "NEW"
        new = user.until(execution_report(order["clientOrderId"], "NEW"), 10, "the NEW executionReport")
        assert (new["data"]["s"], new["data"]["i"]) == (symbol, order["orderId"])

        queried = system.web.get("/api/v1/order", symbol=symbol, orderId=order["orderId"])
        assert queried.status_code == 200 and queried.json()["data"]["status"] == "NEW"

        canceled = system.web.http.delete(
            system.web.url + "/api/v1/order",
            timeout=30,
            headers=trader,
            params={"symbol": symbol, "orderId": order["orderId"]},
        )
        assert canceled.status_code == 200 and canceled.json()["data"]["status"] == "CANCELED"
        user.until(execution_report(order["clientOrderId"], "CANCELED"), 10, "the CANCELED executionReport")


def below_market(system, symbol: str, tick: str) -> Decimal:
    bid = Decimal(system.paper.get("/api/v3/ticker/bookTicker", symbol=symbol).json()["bidPrice"])
    return (bid * Decimal("0.8")).quantize(Decimal(tick))


def test_the_order_round_trip_with_each_key_type(keyed):
    kind, system = keyed
    expected = "session.logon" if kind == "ed25519" else "userDataStream.subscribe.signature"
    assert relay_auth(system) == expected
    assert bool(logged_on_api_connections(system)) == (kind == "ed25519")
    round_trip(system, "BTCUSDT", below_market(system, "BTCUSDT", "0.01"), "0.001")


@pytest.mark.parametrize("keyed", ["ed25519"], indirect=True)
def test_the_ed25519_session_logs_on_again_after_a_dropped_connection(keyed):
    _, system = keyed
    before = {c["id"] for c in logged_on_api_connections(system)}
    system.fault(kind="drop", target="ws-api")
    # as the exchange sees it: a new connection, logged on with the key, its subscription active
    eventually(
        lambda: [c for c in logged_on_api_connections(system) if c["id"] not in before and c["subscriptions"]],
        20,
        what="a new connection logged on with the Ed25519 key and subscribed",
    )
    round_trip(system, "ETHUSDT", below_market(system, "ETHUSDT", "0.01"), "0.01")


@pytest.mark.parametrize("keyed", ["ed25519"], indirect=True)
def test_a_utf8_symbol_makes_the_round_trip(keyed):
    _, system = keyed
    assert system.web.get("/api/v1/ticker/price", symbol=UNICODE_SYMBOL).json()["data"]["symbol"] == UNICODE_SYMBOL
    round_trip(system, UNICODE_SYMBOL, below_market(system, UNICODE_SYMBOL, "0.0001"), "100")
