"""Validation of JSON response bodies against Binance's own Spot OpenAPI file.

Tests use this to hold a Binance-compatible server (e.g. paper_exchange/) to
the response shapes Binance publishes in tests/data/binance/spot_api.yaml
(OpenAPI 3.0.2)::

    spec = load_spec()
    spec.validate("GET", "/api/v3/depth", 200, body)   # AssertionError on mismatch
    spec.validate_component("orderResponseFull", body)  # pin a POST /order variant

OpenAPI 3.0 schemas are not JSON Schema, so every response schema is rewritten
into a self-contained Draft 7 schema: `$ref`s are inlined (a recursive ref
becomes a local `#/definitions/...` ref), `nullable: true` becomes a "null"
type, OpenAPI-only keywords (`example`, `format`, ...) are dropped, and
`oneOf` becomes `anyOf` (see `_convert`). "integer" is checked strictly: a
JSON float such as 1.0 is rejected, because Binance always writes ids and
timestamps as integer literals and typed clients (Go, Java) fail on 1.0.

Quirks of the spec file, found by reading it (they matter for callers):

* POST /api/v3/order 200 is `oneOf` orderResponseAck / orderResponseResult /
  orderResponseFull. Those schemas overlap (FULL ⊇ RESULT ⊇ ACK and none sets
  additionalProperties: false), so under real `oneOf` semantics *every* RESULT
  or FULL response that Binance sends would be rejected. Hence oneOf -> anyOf,
  which in turn means a body satisfying just ACK passes: use
  `validate_component("orderResponseFull", ...)` when the test knows which
  newOrderRespType it asked for.
* GET /api/v3/klines and GET /api/v3/uiKlines 200: `minItems/maxItems: 12` are
  written on the *element* schema (a no-op there) instead of the row array, and
  elements are only "integer or string", so the spec alone accepts rows of any
  length with any mix. Override: row length 12 plus the positional types
  documented in rest-api.md.
* GET /api/v3/depth 200: `minItems/maxItems: 2` are likewise on the string
  element instead of the [price, qty] level. Override: moved to the level.
* GET /api/v3/aggTrades 200 (components/schemas/aggTrade): `T`, the trade
  time in ms, is declared `type: boolean` (its own example is 1498793709153).
  Override: integer.
* GET /sapi/v1/mining/payment/list 200: `hashTransfer` / `transferAmount` say
  `format: "nullable"` (with `example: null`) instead of `nullable: true`.
  Override: they accept null.
* GET /api/v3/ticker/24hr 200: the `ticker` schema does not declare
  `weightedAvgPrice` or `lastQty` (Binance sends both), so their types are not
  checked; the `type=MINI` response shape is not described at all (it lacks
  required fields such as priceChange and will fail validation).
* Prices and quantities are plain `type: string` with no pattern, so "abc"
  passes as a price; decimal syntax is not checked by the spec.
* Only 200/400/401 are declared (POST /api/v3/userDataStream only 200);
  Binance's 403/418/429 error bodies have no schema here -> KeyError.
* components/schemas/ocoOrder (DELETE /api/v3/openOrders, DELETE
  /api/v3/orderList): every orderReports entry requires `stopPrice` and
  `selfTradePreventionMode`, yet the spec's own example omits stopPrice on the
  LIMIT_MAKER leg and selfTradePreventionMode on the stop leg (POST
  /api/v3/orderList/oco's example also omits stopPrice). Not overridden
  (unverified against live Binance; spotgate places no OCOs), so such real
  responses may fail.
* Examples are sometimes misplaced (e.g. an array's example written under its
  `items`); examples are dropped, never validated.

Spec fixes live in `_OVERRIDES`, keyed per operation and response; nothing is
loosened globally. `response_schema(..., overrides=False)` gives the raw
conversion.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

__all__ = ["DEFAULT_SPEC_PATH", "Spec", "SpecQuirkChanged", "load_spec"]

DEFAULT_SPEC_PATH = Path(__file__).resolve().parent / "data" / "binance" / "spot_api.yaml"

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_JSON_MEDIA_TYPE = "application/json"

# OpenAPI-only schema keywords. `format` goes too: OpenAPI's int32/int64/
# float/double mean nothing to JSON Schema and "date" would start being
# enforced the moment someone passes a format checker.
_OPENAPI_ONLY_KEYWORDS = frozenset(
    {"example", "format", "nullable", "readOnly", "writeOnly", "xml", "externalDocs", "discriminator", "deprecated"}
)
# Keywords whose values are schemas; everything else (enum, required,
# default, ...) is data and must not be walked, or a property named "format"
# or an enum value "example" would be mangled.
_SCHEMA_MAP_KEYWORDS = frozenset({"properties", "patternProperties", "definitions"})
_SCHEMA_LIST_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf"})
_SCHEMA_KEYWORDS = frozenset({"items", "additionalItems", "additionalProperties", "not"})

_MAX_MESSAGE_CHARS = 300


def _is_strict_integer(checker: Any, instance: Any) -> bool:
    # Draft 6+ counts 1.0 as an integer; Binance never sends one (see module doc).
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine("integer", _is_strict_integer),
)


class SpecQuirkChanged(RuntimeError):
    """An override no longer matches the spec text it was written to fix."""


# --------------------------------------------------------------------------
# Loading


def load_spec(path: str | Path | None = None) -> Spec:
    """Return the parsed spec at `path` (default: the vendored Binance file), cached per file."""
    return _load_spec_cached(str(Path(path or DEFAULT_SPEC_PATH).resolve()))


@functools.cache
def _load_spec_cached(resolved_path: str) -> Spec:
    # The C loader parses the ~1 MB file in ~0.4 s; the pure-Python one takes
    # ~2 s, which would be paid by every test session.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(resolved_path, "rb") as stream:
        document = yaml.load(stream, Loader=loader)
    return Spec(document, source=resolved_path)


# --------------------------------------------------------------------------
# OpenAPI -> JSON Schema


class _Converter:
    """Turns one OpenAPI schema into a self-contained Draft 7 schema."""

    def __init__(self, document: dict):
        self._document = document
        self._expanding: list[str] = []  # refs currently being inlined
        self._recursive: dict[str, str] = {}  # ref -> definitions name

    def build(self, schema: dict) -> dict:
        result = self._convert(schema)
        # Inlining a ref that (indirectly) contains itself would never end, so
        # such refs were left as "#/definitions/<name>"; supply those here,
        # looping because a definition can introduce further recursive refs.
        definitions: dict[str, dict] = {}
        while len(definitions) < len(self._recursive):
            for ref, name in list(self._recursive.items()):
                if name not in definitions:
                    definitions[name] = self._inline_ref(ref)
        if definitions:
            result = {**result, "definitions": definitions}
        return result

    def _convert(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node  # boolean schemas / malformed input: let check_schema judge
        if "$ref" in node:
            # OpenAPI 3.0, like Draft 7, ignores keywords next to $ref.
            return self._ref(node["$ref"])
        out: dict[str, Any] = {}
        extra_any_of: list[list] = []  # a oneOf next to an existing anyOf
        for key, value in node.items():
            if key in _OPENAPI_ONLY_KEYWORDS or key.startswith("x-"):
                continue
            if key in _SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
                out[key] = {name: self._convert(sub) for name, sub in value.items()}
            elif key in _SCHEMA_LIST_KEYWORDS and isinstance(value, list):
                converted = [self._convert(sub) for sub in value]
                if key == "oneOf":
                    # Binance's alternatives overlap (ACK/RESULT/FULL: a FULL
                    # body also satisfies RESULT and ACK, since none forbids
                    # extra properties), so oneOf would reject every real
                    # RESULT/FULL response. anyOf keeps "must match one of
                    # these"; see validate_component for pinning a variant.
                    if "anyOf" in node:
                        extra_any_of.append(converted)
                    else:
                        out["anyOf"] = converted
                else:
                    out[key] = converted
            elif key in _SCHEMA_KEYWORDS:
                out[key] = [self._convert(sub) for sub in value] if isinstance(value, list) else self._convert(value)
            else:
                out[key] = copy.deepcopy(value)
        if extra_any_of:
            out["allOf"] = out.get("allOf", []) + [{"anyOf": group} for group in extra_any_of]
        if node.get("nullable") is True:
            out = _allow_null(out)
        return out

    def _ref(self, ref: str) -> dict:
        if ref in self._expanding:
            name = self._recursive.get(ref) or self._definition_name(ref)
            self._recursive[ref] = name
            return {"$ref": f"#/definitions/{name}"}
        return self._inline_ref(ref)

    def _inline_ref(self, ref: str) -> dict:
        self._expanding.append(ref)
        try:
            schema = self._convert(_resolve_pointer(self._document, ref))
        finally:
            self._expanding.pop()
        if isinstance(schema, dict):
            # Names anyOf alternatives in error messages ("orderResponseFull").
            schema.setdefault("title", ref.rsplit("/", 1)[-1])
        return schema

    def _definition_name(self, ref: str) -> str:
        base = ref.rsplit("/", 1)[-1] or "schema"
        taken = set(self._recursive.values())
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        return name


def _resolve_pointer(document: dict, ref: str) -> Any:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported, got {ref!r}")
    node: Any = document
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise ValueError(f"unresolvable $ref {ref!r} (no {token!r})")
    return node


def _allow_null(schema: dict) -> dict:
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema = {**schema, "type": types + ([] if "null" in types else ["null"])}
        if "enum" in schema and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


# --------------------------------------------------------------------------
# Per-operation fixes for spec mistakes (see module docstring). Each checks
# that the spec still has the mistake, so a corrected spec file fails loudly
# instead of being silently re-patched.


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise SpecQuirkChanged(f"override no longer applies: {what}")


# rest-api.md: open time, OHLC, volume, close time, quote volume, trade
# count, taker buy base/quote volume, unused ("0").
_KLINE_ROW_TYPES = (
    "integer",
    "string",
    "string",
    "string",
    "string",
    "string",
    "integer",
    "string",
    "integer",
    "string",
    "string",
    "string",
)


def _fix_kline_rows(schema: dict) -> None:
    row = schema["items"]
    element = row["items"]
    _expect(
        isinstance(element, dict) and element.get("minItems") == 12 and element.get("maxItems") == 12,
        "kline minItems/maxItems on the element",
    )
    row["items"] = [{"type": t} for t in _KLINE_ROW_TYPES]
    row["minItems"] = row["maxItems"] = len(_KLINE_ROW_TYPES)


def _fix_depth_levels(schema: dict) -> None:
    for side in ("bids", "asks"):
        level = schema["properties"][side]["items"]
        price_or_qty = level["items"]
        _expect(
            price_or_qty.get("minItems") == 2 and price_or_qty.get("maxItems") == 2,
            f"depth {side} minItems/maxItems on the string element",
        )
        del price_or_qty["minItems"], price_or_qty["maxItems"]
        level["minItems"] = level["maxItems"] = 2


def _fix_agg_trade_timestamp(schema: dict) -> None:
    trade = schema["items"]["properties"]
    _expect(trade["T"].get("type") == "boolean", "aggTrade T declared boolean")
    trade["T"] = {"type": "integer", "description": trade["T"].get("description", "")}


def _fix_mining_nullable(schema: dict) -> None:
    profit = schema["properties"]["data"]["properties"]["accountProfits"]["items"]["properties"]
    for field in ("hashTransfer", "transferAmount"):
        _expect(profit[field].get("type") in ("integer", "number"), f"mining {field} type")
        profit[field] = _allow_null(profit[field])


_OVERRIDES: dict[tuple[str, str, str], Callable[[dict], None]] = {
    ("GET", "/api/v3/klines", "200"): _fix_kline_rows,
    ("GET", "/api/v3/uiKlines", "200"): _fix_kline_rows,
    ("GET", "/api/v3/depth", "200"): _fix_depth_levels,
    ("GET", "/api/v3/aggTrades", "200"): _fix_agg_trade_timestamp,
    ("GET", "/sapi/v1/mining/payment/list", "200"): _fix_mining_nullable,
}


# --------------------------------------------------------------------------
# Spec


class Spec:
    """A parsed OpenAPI document with JSON Schema access to its responses."""

    def __init__(self, document: dict, source: str = "<memory>"):
        self.document = document
        self.source = source
        self._schemas: dict[tuple, dict] = {}  # response and component schemas
        self._validators: dict[Any, Any] = {}

    def operations(self) -> list[tuple[str, str]]:
        """(METHOD, path) for every operation, in spec order."""
        return [
            (method.upper(), path)
            for path, item in self.document.get("paths", {}).items()
            for method in item
            if method in _HTTP_METHODS
        ]

    def statuses(self, method: str, path: str) -> list[str]:
        """Response status codes the spec declares for an operation."""
        return [str(s) for s in self._operation(method, path).get("responses", {})]

    def response_schema(self, method: str, path: str, status: int | str = 200, *, overrides: bool = True) -> dict:
        """Draft 7 JSON schema of an application/json response (a fresh copy)."""
        return copy.deepcopy(self._response_schema(method, path, status, overrides))

    def component_schema(self, name: str) -> dict:
        """Draft 7 JSON schema of components/schemas/<name> (a fresh copy)."""
        return copy.deepcopy(self._component_schema(name))

    def validate(self, method: str, path: str, status: int | str, body: Any) -> None:
        """Raise AssertionError listing every way `body` (parsed JSON) breaks the spec."""
        key = ("response", method.upper(), path, str(status))
        validator = self._validator(key, lambda: self._response_schema(method, path, status, True))
        _raise_violations(f"{method.upper()} {path} {status}", validator, body)

    def validate_component(self, name: str, body: Any) -> None:
        """Like validate(), against one named schema, e.g. "orderResponseFull"."""
        validator = self._validator(("component", name), lambda: self._component_schema(name))
        _raise_violations(f"#/components/schemas/{name}", validator, body)

    # -- internals

    def _operation(self, method: str, path: str) -> dict:
        item = self.document.get("paths", {}).get(path)
        if item is None:
            raise KeyError(f"path {path!r} is not in {self.source}")
        operation = item.get(method.lower()) if method.lower() in _HTTP_METHODS else None
        if operation is None:
            declared = ", ".join(m.upper() for m in item if m in _HTTP_METHODS)
            raise KeyError(f"no {method.upper()} {path} in spec (declared methods: {declared})")
        return operation

    def _response_schema(self, method: str, path: str, status: int | str, overrides: bool) -> dict:
        method, status = method.upper(), str(status)
        key = (method, path, status, overrides)
        if key not in self._schemas:
            responses = {str(s): r for s, r in self._operation(method, path).get("responses", {}).items()}
            if status not in responses:
                raise KeyError(
                    f"{method} {path} declares no {status} response (declared: {', '.join(responses) or 'none'})"
                )
            response = responses[status]
            if "$ref" in response:
                response = _resolve_pointer(self.document, response["$ref"])
            media = response.get("content", {}).get(_JSON_MEDIA_TYPE)
            if media is None or "schema" not in media:
                raise KeyError(f"{method} {path} {status} has no {_JSON_MEDIA_TYPE} schema")
            schema = _Converter(self.document).build(media["schema"])
            fix = _OVERRIDES.get((method, path, status)) if overrides else None
            if fix is not None:
                fix(schema)
            self._schemas[key] = schema
        return self._schemas[key]

    def _component_schema(self, name: str) -> dict:
        key = ("component", name)
        if key not in self._schemas:
            if name not in self.document.get("components", {}).get("schemas", {}):
                raise KeyError(f"no components/schemas/{name} in {self.source}")
            self._schemas[key] = _Converter(self.document).build(
                {"$ref": f"#/components/schemas/{name.replace('~', '~0').replace('/', '~1')}"}
            )
        return self._schemas[key]

    def _validator(self, key: Any, schema: Callable[[], dict]) -> Any:
        if key not in self._validators:
            self._validators[key] = _Validator(schema())
        return self._validators[key]


# --------------------------------------------------------------------------
# Error reporting


def _raise_violations(label: str, validator: Any, body: Any) -> None:
    # Top-level violations each get the label so any one line can be grepped
    # or read alone; anyOf details follow indented underneath their line.
    lines = [text if depth else f"{label}: {text}" for depth, text in _describe(validator.iter_errors(body), depth=0)]
    if lines:
        raise AssertionError("\n".join(lines))


def _describe(errors: Iterable[jsonschema.ValidationError], depth: int) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    indent = "    " * depth
    for error in sorted(errors, key=lambda e: (_json_path(e.absolute_path), e.message)):
        where = _json_path(error.absolute_path)
        if error.validator in ("anyOf", "oneOf") and error.context:
            # jsonschema's own message is "<whole body> is not valid under any
            # of the given schemas"; say instead why each alternative failed.
            lines.append((depth, f"{indent}{where}: matches none of the alternatives:"))
            for title, branch_errors in _relevant_branches(error):
                lines.append((depth + 1, f"{indent}  [{title}]"))
                lines.extend(_describe(branch_errors, depth + 1))
        else:
            lines.append((depth, f"{indent}{where}: {_shorten(error.message)}"))
    return lines


def _relevant_branches(error: jsonschema.ValidationError) -> list[tuple[str, list]]:
    by_branch: dict[int, list] = {}
    for sub in error.context:
        by_branch.setdefault(sub.schema_path[0], []).append(sub)
    alternatives = error.validator_value
    branches = [
        (
            alternatives[i].get("title", f"alternative {i}")
            if isinstance(alternatives[i], dict)
            else f"alternative {i}",
            errs,
        )
        for i, errs in sorted(by_branch.items())
    ]

    # For "object or list" alternatives (ticker vs tickerList), the branch of
    # the wrong shape only says "not of type 'array'"; hide it when another
    # branch got past the type check and has the real complaint.
    def wrong_shape(errs: list) -> bool:
        return all(e.validator == "type" and not e.relative_path for e in errs)

    informative = [b for b in branches if not wrong_shape(b[1])]
    return informative or branches


def _json_path(path: Iterable[Any]) -> str:
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _shorten(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE_CHARS else message[: _MAX_MESSAGE_CHARS - 3] + "..."
