"""Schemathesis hooks for the gateway's fuzz pass (loaded through SCHEMATHESIS_HOOKS).

`schema_valid_input_is_not_malformed`: a request the schema allows may still be refused for a rule
no schema can carry (the exchange's filters, balances, the clock, risk limits, a cross-field rule),
with a 400 naming that rule. It must never be refused as malformed input: that would mean the
document and the parser disagree. So positive-mode 400s are accepted by positive_data_acceptance
(schemathesis.toml) and checked here against the codes of rules that live outside the schema.
"""

from __future__ import annotations

import schemathesis

# 400 codes for rules outside the schema (README "REST API": how schema-valid input can be refused).
RULES_OUTSIDE_THE_SCHEMA = {
    "FILTER_FAILURE",  # the symbol's filters, status and order types (exchangeInfo, changes)
    "INSUFFICIENT_BALANCE",  # the account's balances
    "ORDER_REJECTED",  # Binance refused the order
    "BINANCE_REJECTED",  # Binance refused the request (e.g. nothing to cancel)
    "EXECUTE_AT_OUT_OF_RANGE",  # executeAt must lie in the next 7 days: depends on the clock
    "INVALID_TIME_RANGE",  # startTime after endTime
    "CONFLICTING_PARAMETERS",  # symbol and symbols together
    "ORDER_REFERENCE_REQUIRED",  # orderId or clientOrderId
    "TTL_OUT_OF_RANGE",  # a token lifetime beyond 365 days, in any unit
    "RISK_SYMBOL_NOT_ALLOWED",
    "RISK_MAX_NOTIONAL",
    "RISK_MAX_OPEN_ORDERS",  # the admin's risk limits
}


@schemathesis.check
def schema_valid_input_is_not_malformed(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    code = response.json()["error"]["code"]
    if code not in RULES_OUTSIDE_THE_SCHEMA:
        raise AssertionError(f"A request the schema allows was refused as {code}: {response.text[:300]}")
    return None
