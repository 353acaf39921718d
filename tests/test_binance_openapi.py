"""Self-tests for tests/binance_openapi.py, the Binance OpenAPI response validator.

Valid bodies are Binance's documented examples (binance-spot-api-docs,
rest-api.md); the negative tests prove the validator can actually fail, since
a validator that accepts everything would make every exchange test vacuous.
"""

import copy
import textwrap

import jsonschema
import pytest

try:
    from binance_openapi import SpecQuirkChanged, load_spec
except ImportError:  # tests/ imported as a package (tests/__init__.py or importlib mode)
    from tests.binance_openapi import SpecQuirkChanged, load_spec


@pytest.fixture(scope="module")
def spec():
    return load_spec()


# --------------------------------------------------------------------------
# Documented examples (rest-api.md)

DEPTH = {
    "lastUpdateId": 1027024,
    "bids": [["4.00000000", "431.00000000"]],
    "asks": [["4.00000200", "12.00000000"]],
}

KLINES = [
    [
        1499040000000,
        "0.01634790",
        "0.80000000",
        "0.01575800",
        "0.01577100",
        "148976.11427815",
        1499644799999,
        "2434.19055334",
        308,
        "1756.87402397",
        "28.46694368",
        "0",
    ],
]

AGG_TRADES = [
    {
        "a": 26129,
        "p": "0.01633102",
        "q": "4.70443515",
        "f": 27781,
        "l": 27781,
        "T": 1498793709153,
        "m": True,
        "M": True,
    },
]

TICKER_24HR = {
    "symbol": "BNBBTC",
    "priceChange": "-94.99999800",
    "priceChangePercent": "-95.960",
    "weightedAvgPrice": "0.29628482",
    "prevClosePrice": "0.10002000",
    "lastPrice": "4.00000200",
    "lastQty": "200.00000000",
    "bidPrice": "4.00000000",
    "bidQty": "100.00000000",
    "askPrice": "4.00000200",
    "askQty": "100.00000000",
    "openPrice": "99.00000000",
    "highPrice": "100.00000000",
    "lowPrice": "0.10000000",
    "volume": "8913.30000000",
    "quoteVolume": "15.30000000",
    "openTime": 1499783499040,
    "closeTime": 1499869899040,
    "firstId": 28385,
    "lastId": 28460,
    "count": 76,
}

PRICE_TICKER = {"symbol": "LTCBTC", "price": "4.00000200"}
PRICE_TICKERS = [PRICE_TICKER, {"symbol": "ETHBTC", "price": "0.07946600"}]

ORDER_DETAILS = {
    "symbol": "LTCBTC",
    "orderId": 1,
    "orderListId": -1,
    "clientOrderId": "myOrder1",
    "price": "0.1",
    "origQty": "1.0",
    "executedQty": "0.0",
    "cummulativeQuoteQty": "0.0",
    "status": "NEW",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
    "stopPrice": "0.0",
    "icebergQty": "0.0",
    "time": 1499827319559,
    "updateTime": 1499827319559,
    "isWorking": True,
    "workingTime": 1499827319559,
    "origQuoteOrderQty": "0.000000",
    "selfTradePreventionMode": "NONE",
}

ORDER_ACK = {
    "symbol": "BTCUSDT",
    "orderId": 28,
    "orderListId": -1,
    "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP",
    "transactTime": 1507725176595,
}

ORDER_RESULT = {
    **ORDER_ACK,
    "price": "0.00000000",
    "origQty": "10.00000000",
    "executedQty": "10.00000000",
    "origQuoteOrderQty": "0.000000",
    "cummulativeQuoteQty": "10.00000000",
    "status": "FILLED",
    "timeInForce": "GTC",
    "type": "MARKET",
    "side": "SELL",
    "workingTime": 1507725176595,
    "selfTradePreventionMode": "NONE",
}

ORDER_FULL = {
    **ORDER_RESULT,
    "fills": [
        {
            "price": "4000.00000000",
            "qty": "1.00000000",
            "commission": "4.00000000",
            "commissionAsset": "USDT",
            "tradeId": 56,
        },
        {
            "price": "3999.00000000",
            "qty": "5.00000000",
            "commission": "19.99500000",
            "commissionAsset": "USDT",
            "tradeId": 57,
        },
        {
            "price": "3998.00000000",
            "qty": "2.00000000",
            "commission": "7.99600000",
            "commissionAsset": "USDT",
            "tradeId": 58,
        },
        {
            "price": "3997.00000000",
            "qty": "1.00000000",
            "commission": "3.99700000",
            "commissionAsset": "USDT",
            "tradeId": 59,
        },
        {
            "price": "3995.00000000",
            "qty": "1.00000000",
            "commission": "3.99500000",
            "commissionAsset": "USDT",
            "tradeId": 60,
        },
    ],
}

CANCELED_ORDER = {
    "symbol": "LTCBTC",
    "origClientOrderId": "myOrder1",
    "orderId": 4,
    "orderListId": -1,
    "clientOrderId": "cancelMyOrder1",
    "transactTime": 1684804350068,
    "price": "2.00000000",
    "origQty": "1.00000000",
    "executedQty": "0.00000000",
    "cummulativeQuoteQty": "0.00000000",
    "status": "CANCELED",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
    "selfTradePreventionMode": "NONE",
}

ACCOUNT = {
    "makerCommission": 15,
    "takerCommission": 15,
    "buyerCommission": 0,
    "sellerCommission": 0,
    "commissionRates": {"maker": "0.00150000", "taker": "0.00150000", "buyer": "0.00000000", "seller": "0.00000000"},
    "canTrade": True,
    "canWithdraw": True,
    "canDeposit": True,
    "brokered": False,
    "requireSelfTradePrevention": False,
    "preventSor": False,
    "updateTime": 123456789,
    "accountType": "SPOT",
    "balances": [
        {"asset": "BTC", "free": "4723846.89208129", "locked": "0.00000000"},
        {"asset": "LTC", "free": "4763368.68006011", "locked": "0.00000000"},
    ],
    "permissions": ["SPOT"],
    "uid": 354937868,
}

MY_TRADE = {
    "symbol": "BNBBTC",
    "id": 28457,
    "orderId": 100234,
    "orderListId": -1,
    "price": "4.00000100",
    "qty": "12.00000000",
    "quoteQty": "48.000012",
    "commission": "10.10000000",
    "commissionAsset": "BNB",
    "time": 1499865549590,
    "isBuyer": True,
    "isMaker": False,
    "isBestMatch": True,
}

ERROR = {"code": -1121, "msg": "Invalid symbol."}

DOCUMENTED_RESPONSES = [
    ("GET", "/api/v3/depth", 200, DEPTH),
    ("GET", "/api/v3/klines", 200, KLINES),
    ("GET", "/api/v3/uiKlines", 200, KLINES),
    ("GET", "/api/v3/aggTrades", 200, AGG_TRADES),
    ("GET", "/api/v3/ticker/24hr", 200, TICKER_24HR),
    ("GET", "/api/v3/ticker/24hr", 200, [TICKER_24HR]),
    ("GET", "/api/v3/ticker/price", 200, PRICE_TICKER),
    ("GET", "/api/v3/ticker/price", 200, PRICE_TICKERS),
    ("GET", "/api/v3/account", 200, ACCOUNT),
    ("GET", "/api/v3/myTrades", 200, [MY_TRADE]),
    ("GET", "/api/v3/myTrades", 200, []),
    ("GET", "/api/v3/order", 200, ORDER_DETAILS),
    ("POST", "/api/v3/order", 200, ORDER_ACK),
    ("POST", "/api/v3/order", 200, ORDER_RESULT),
    ("POST", "/api/v3/order", 200, ORDER_FULL),
    ("DELETE", "/api/v3/order", 200, CANCELED_ORDER),
    ("GET", "/api/v3/openOrders", 200, [ORDER_DETAILS]),
    ("DELETE", "/api/v3/openOrders", 200, [CANCELED_ORDER]),
    ("GET", "/api/v3/allOrders", 200, [ORDER_DETAILS]),
    (
        "POST",
        "/api/v3/userDataStream",
        200,
        {"listenKey": "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"},
    ),
    ("PUT", "/api/v3/userDataStream", 200, {}),
    ("DELETE", "/api/v3/userDataStream", 200, {}),
    ("GET", "/api/v3/depth", 400, ERROR),
    ("POST", "/api/v3/order", 400, {"code": -2010, "msg": "Account has insufficient balance for requested action."}),
    ("GET", "/api/v3/account", 401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}),
]


@pytest.mark.parametrize(
    "method, path, status, body",
    DOCUMENTED_RESPONSES,
    ids=[f"{m} {p} {s} #{i}" for i, (m, p, s, _) in enumerate(DOCUMENTED_RESPONSES)],
)
def test_documented_example_is_valid(spec, method, path, status, body):
    assert spec.validate(method, path, status, body) is None


@pytest.mark.parametrize(
    "name, body",
    [
        ("orderResponseAck", ORDER_ACK),
        ("orderResponseResult", ORDER_RESULT),
        ("orderResponseFull", ORDER_FULL),
        ("orderDetails", ORDER_DETAILS),
        ("order", CANCELED_ORDER),
        ("error", ERROR),
    ],
)
def test_documented_example_matches_its_component(spec, name, body):
    spec.validate_component(name, body)


# --------------------------------------------------------------------------
# The validator must be able to fail


def _violations(spec, method, path, status, body):
    with pytest.raises(AssertionError) as excinfo:
        spec.validate(method, path, status, body)
    return str(excinfo.value)


def without(body, field):
    body = copy.deepcopy(body)
    del body[field]
    return body


def test_float_price_in_depth_fails_with_exact_message(spec):
    body = copy.deepcopy(DEPTH)
    body["bids"][0][0] = 1.5
    assert _violations(spec, "GET", "/api/v3/depth", 200, body) == (
        "GET /api/v3/depth 200: $.bids[0][0]: 1.5 is not of type 'string'"
    )


def test_every_violation_is_listed_one_per_line(spec):
    body = copy.deepcopy(DEPTH)
    body["bids"][0][0] = 1.5
    body["asks"][0][1] = 12
    del body["lastUpdateId"]
    assert _violations(spec, "GET", "/api/v3/depth", 200, body).splitlines() == [
        "GET /api/v3/depth 200: $: 'lastUpdateId' is a required property",
        "GET /api/v3/depth 200: $.asks[0][1]: 12 is not of type 'string'",
        "GET /api/v3/depth 200: $.bids[0][0]: 1.5 is not of type 'string'",
    ]


@pytest.mark.parametrize("method, path", [("GET", "/api/v3/order"), ("DELETE", "/api/v3/order")])
def test_order_without_status_fails_naming_the_field(spec, method, path):
    body = ORDER_DETAILS if method == "GET" else CANCELED_ORDER
    message = _violations(spec, method, path, 200, without(body, "status"))
    assert message == f"{method} {path} 200: $: 'status' is a required property"


def test_order_list_item_violation_has_index_in_path(spec):
    message = _violations(spec, "GET", "/api/v3/openOrders", 200, [ORDER_DETAILS, without(ORDER_DETAILS, "status")])
    assert message == "GET /api/v3/openOrders 200: $[1]: 'status' is a required property"


@pytest.mark.parametrize(
    "method, path, status, body, expected",
    [
        ("GET", "/api/v3/account", 200, {**ACCOUNT, "canTrade": "true"}, "$.canTrade: 'true' is not of type 'boolean'"),
        (
            "GET",
            "/api/v3/account",
            200,
            {**ACCOUNT, "balances": [{"asset": "BTC", "free": 1.0, "locked": "0.00000000"}]},
            "$.balances[0].free: 1.0 is not of type 'string'",
        ),
        (
            "GET",
            "/api/v3/myTrades",
            200,
            [{**MY_TRADE, "time": "1499865549590"}],
            "$[0].time: '1499865549590' is not of type 'integer'",
        ),
        (
            "GET",
            "/api/v3/depth",
            400,
            {"code": "-1121", "msg": "Invalid symbol."},
            "$.code: '-1121' is not of type 'integer'",
        ),
        ("POST", "/api/v3/userDataStream", 200, {}, "$: 'listenKey' is a required property"),
    ],
)
def test_wrong_type_or_missing_field_fails(spec, method, path, status, body, expected):
    assert _violations(spec, method, path, status, body) == f"{method} {path} {status}: {expected}"


def test_integer_fields_reject_json_floats(spec):
    # Draft 7 alone would accept 1.0 as an integer; Binance clients would not.
    message = _violations(spec, "GET", "/api/v3/order", 200, {**ORDER_DETAILS, "orderId": 1.0})
    assert message.endswith("$.orderId: 1.0 is not of type 'integer'")
    message = _violations(spec, "GET", "/api/v3/order", 200, {**ORDER_DETAILS, "orderId": True})
    assert message.endswith("$.orderId: True is not of type 'integer'")


def test_one_or_list_reports_the_failing_alternative_only(spec):
    message = _violations(spec, "GET", "/api/v3/ticker/24hr", 200, [without(TICKER_24HR, "count")])
    # The single-ticker alternative fails only on "not an object": noise, hidden.
    assert message.splitlines() == [
        "GET /api/v3/ticker/24hr 200: $: matches none of the alternatives:",
        "  [tickerList]",
        "    $[0]: 'count' is a required property",
    ]


def test_price_ticker_must_be_object_or_list(spec):
    message = _violations(spec, "GET", "/api/v3/ticker/price", 200, "4.00000200")
    assert "[priceTicker]" in message and "[priceTickerList]" in message


# --------------------------------------------------------------------------
# oneOf -> anyOf, and pinning a POST /api/v3/order variant


def test_real_oneof_would_reject_documented_full_response(spec):
    # Why the converter turns oneOf into anyOf: FULL satisfies all three.
    schema = spec.response_schema("POST", "/api/v3/order", 200)
    schema["oneOf"] = schema.pop("anyOf")
    with pytest.raises(jsonschema.ValidationError, match="valid under each of"):
        jsonschema.validate(ORDER_FULL, schema)


def test_post_order_without_any_variant_fails(spec):
    message = _violations(spec, "POST", "/api/v3/order", 200, without(ORDER_ACK, "orderId"))
    assert message.splitlines()[0] == "POST /api/v3/order 200: $: matches none of the alternatives:"
    assert "[orderResponseAck]" in message and "'orderId' is a required property" in message


def test_validate_component_pins_the_response_type(spec):
    # A RESULT body is a valid POST /order response, but not a FULL one.
    spec.validate("POST", "/api/v3/order", 200, ORDER_RESULT)
    with pytest.raises(AssertionError) as excinfo:
        spec.validate_component("orderResponseFull", ORDER_RESULT)
    assert str(excinfo.value) == "#/components/schemas/orderResponseFull: $: 'fills' is a required property"


# --------------------------------------------------------------------------
# Per-operation overrides for spec mistakes


@pytest.mark.parametrize(
    "row, expected",
    [
        (KLINES[0][:11], "$[0]: " + repr(KLINES[0][:11]) + " is too short"),
        (KLINES[0] + ["extra"], "$[0]: " + repr(KLINES[0] + ["extra"]) + " is too long"),
        (["1499040000000"] + KLINES[0][1:], "$[0][0]: '1499040000000' is not of type 'integer'"),
        (KLINES[0][:8] + ["308"] + KLINES[0][9:], "$[0][8]: '308' is not of type 'integer'"),
        (KLINES[0][:1] + [0.0163479] + KLINES[0][2:], "$[0][1]: 0.0163479 is not of type 'string'"),
    ],
)
def test_kline_row_length_and_positions_are_enforced(spec, row, expected):
    assert _violations(spec, "GET", "/api/v3/klines", 200, [row]) == f"GET /api/v3/klines 200: {expected}"


def test_raw_spec_would_not_catch_short_kline_rows(spec):
    # Documents the spec bug the klines override fixes.
    raw = spec.response_schema("GET", "/api/v3/klines", 200, overrides=False)
    jsonschema.validate([KLINES[0][:3]], raw)


def test_depth_level_must_be_a_pair(spec):
    body = {**DEPTH, "asks": [["4.00000200", "12.00000000", "1"]]}
    assert _violations(spec, "GET", "/api/v3/depth", 200, body) == (
        "GET /api/v3/depth 200: $.asks[0]: ['4.00000200', '12.00000000', '1'] is too long"
    )


def test_agg_trade_time_is_an_integer_not_the_declared_boolean(spec):
    raw = spec.response_schema("GET", "/api/v3/aggTrades", 200, overrides=False)
    with pytest.raises(jsonschema.ValidationError, match="is not of type 'boolean'"):
        jsonschema.validate(AGG_TRADES, raw)
    message = _violations(spec, "GET", "/api/v3/aggTrades", 200, [{**AGG_TRADES[0], "T": True}])
    assert message == "GET /api/v3/aggTrades 200: $[0].T: True is not of type 'integer'"


def test_overrides_fail_loudly_once_the_spec_is_fixed(tmp_path):
    fixed = tmp_path / "spec.yaml"
    fixed.write_text(
        textwrap.dedent("""\
        openapi: '3.0.2'
        paths:
          /api/v3/aggTrades:
            get:
              responses:
                '200':
                  content:
                    application/json:
                      schema:
                        type: array
                        items:
                          type: object
                          properties:
                            T: {type: integer, format: int64}
        """)
    )
    with pytest.raises(SpecQuirkChanged, match="aggTrade T"):
        load_spec(fixed).response_schema("GET", "/api/v3/aggTrades", 200)


# --------------------------------------------------------------------------
# Conversion mechanics and lookup errors


def test_every_response_schema_builds_and_is_valid_draft7(spec):
    operations = spec.operations()
    assert len(operations) > 300
    for needed in [
        ("GET", "/api/v3/klines"),
        ("POST", "/api/v3/order"),
        ("DELETE", "/api/v3/openOrders"),
        ("PUT", "/api/v3/userDataStream"),
    ]:
        assert needed in operations
    built = 0
    for method, path in operations:
        for status in spec.statuses(method, path):
            schema = spec.response_schema(method, path, status)
            jsonschema.Draft7Validator.check_schema(schema)
            assert "$ref" not in repr(schema), f"{method} {path} {status} kept a $ref"
            built += 1
    assert built > 900


def test_openapi_keywords_are_converted(spec):
    schema = spec.response_schema("POST", "/api/v3/order", 200)
    text = repr(schema)
    assert "oneOf" not in text and "'example'" not in text and "'format'" not in text
    assert [alt["title"] for alt in schema["anyOf"]] == ["orderResponseAck", "orderResponseResult", "orderResponseFull"]
    assert schema["anyOf"][0]["properties"]["orderId"] == {"type": "integer"}


def test_response_schema_returns_a_private_copy(spec):
    spec.response_schema("GET", "/api/v3/depth", 200)["required"].clear()
    with pytest.raises(AssertionError):
        spec.validate("GET", "/api/v3/depth", 200, {})


def test_load_spec_is_cached():
    assert load_spec() is load_spec()


@pytest.mark.parametrize(
    "method, path, status, match",
    [
        ("GET", "/api/v3/nope", 200, "path '/api/v3/nope' is not in"),
        ("PATCH", "/api/v3/order", 200, r"no PATCH /api/v3/order in spec \(declared methods: GET, POST, DELETE\)"),
        ("POST", "/api/v3/userDataStream", 400, r"declares no 400 response \(declared: 200\)"),
        ("GET", "/api/v3/depth", 429, "declares no 429 response"),
    ],
)
def test_unknown_operation_or_status_raises_key_error(spec, method, path, status, match):
    with pytest.raises(KeyError, match=match):
        spec.response_schema(method, path, status)
    with pytest.raises(KeyError, match=match):
        spec.validate(method, path, status, {})


def test_nullable_and_recursive_refs(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(
        textwrap.dedent("""\
        openapi: '3.0.2'
        paths:
          /tree:
            get:
              responses:
                '200':
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/node'}
        components:
          schemas:
            node:
              type: object
              properties:
                name: {type: string, nullable: true, example: leaf}
                side: {type: string, enum: [BUY, SELL], nullable: true}
                children:
                  type: array
                  items: {$ref: '#/components/schemas/node'}
              required: [name]
        """)
    )
    tree_spec = load_spec(path)
    schema = tree_spec.response_schema("GET", "/tree", 200)
    assert schema["properties"]["children"]["items"] == {"$ref": "#/definitions/node"}
    assert schema["definitions"]["node"]["properties"]["name"] == {"type": ["string", "null"]}

    tree = {"name": None, "side": None, "children": [{"name": "a", "children": [{"name": "b", "side": "BUY"}]}]}
    tree_spec.validate("GET", "/tree", 200, tree)
    bad = {"name": "root", "children": [{"children": [{"name": 3, "side": "HOLD"}]}]}
    with pytest.raises(AssertionError) as excinfo:
        tree_spec.validate("GET", "/tree", 200, bad)
    assert str(excinfo.value).splitlines() == [
        "GET /tree 200: $.children[0]: 'name' is a required property",
        "GET /tree 200: $.children[0].children[0].name: 3 is not of type 'string', 'null'",
        "GET /tree 200: $.children[0].children[0].side: 'HOLD' is not one of ['BUY', 'SELL', None]",
    ]
