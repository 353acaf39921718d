"""Route parameters declared once: each one parses a request's raw text and describes itself in the
OpenAPI document (app/openapi.py), as FastAPI's `Query(500, ge=1, le=1000)` does.

Only canonical forms are accepted: integers are ASCII digits without sign, spaces, `_` or leading
zeros (Python's int() would take " 12", "+12", "1_2" and "١٢"); symbols fold ASCII a-z only, and
must then be listed in exchangeInfo exactly (app.market.MarketData.symbol). Every integer is bounded,
and no bound exceeds a signed 64-bit integer (what task messages, Binance and orjson can carry).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from sanic import Request

from .errors import invalid

INT64_MAX = 2**63 - 1
# Milliseconds since the epoch: bounded where JSON numbers stay exact everywhere (2**53, year 287396).
MAX_TIME_MS = 2**53
CANONICAL_INT_RE = re.compile(r"^(0|[1-9][0-9]{0,18})$")
# What may reach the symbol lookup at all: no spaces, no control characters, at most 64 characters.
SYMBOL_TEXT_RE = re.compile(r"^[^\s\x00-\x1f\x7f,]{1,64}$")
SYMBOL_PATTERN = r"^[^\s,]{1,64}$"


@dataclass(frozen=True)
class Param(ABC):
    """One query or path parameter: its name, whether it is required, and what it means. Each kind
    (Text, Integer, Symbol, ...) says its own JSON Schema."""

    name: str
    description: str = ""
    required: bool = False
    location: str = "query"

    @abstractmethod
    def schema(self, symbols: list[str] | None) -> dict: ...

    def convert(self, raw: str) -> Any:
        return raw

    def parse(self, raw: str | None) -> Any:
        if raw is None:
            if self.required:
                raise invalid(self.name, f"'{self.name}' is required")
            return self.default_value()
        if raw == "":  # `?limit=` is not a limit: leave the parameter out for the default
            raise invalid(self.name, f"'{self.name}' is empty; leave it out instead")
        return self.convert(raw)

    def default_value(self) -> Any:
        return None

    def document(self, symbols: list[str] | None) -> dict:
        doc = {
            "name": self.name,
            "in": self.location,
            "required": self.required or self.location == "path",
            "schema": self.schema(symbols),
        }
        if self.description:
            doc["description"] = self.description
        return doc


@dataclass(frozen=True)
class Integer(Param):
    """A bounded integer; `ge`/`le` default to 0 and the largest signed 64-bit integer."""

    default: int | None = None
    ge: int = 0
    le: int = INT64_MAX

    def __post_init__(self):
        assert 0 <= self.ge <= self.le <= INT64_MAX, self.name

    def default_value(self) -> int | None:
        return self.default

    def convert(self, raw: str) -> int:
        # The value is echoed as text: a number too large for the error body's encoder cannot break it.
        if not CANONICAL_INT_RE.match(raw):
            raise invalid(
                self.name,
                f"'{self.name}' must be an integer written in digits (no sign, spaces or leading zeros)",
                value=raw[:64],
            )
        value = int(raw)
        if not self.ge <= value <= self.le:
            raise invalid(self.name, f"'{self.name}' must be between {self.ge} and {self.le}", value=raw[:64])
        return value

    def schema(self, symbols: list[str] | None) -> dict:
        schema = {"type": "integer", "format": "int64", "minimum": self.ge, "maximum": self.le}
        if self.default is not None:
            schema["default"] = self.default
        return schema


@dataclass(frozen=True)
class Choice(Param):
    """One of a fixed list of texts (an enum), matched exactly."""

    values: tuple[str, ...] = ()
    default: str | None = None

    def default_value(self) -> str | None:
        return self.default

    def convert(self, raw: str) -> str:
        if raw not in self.values:
            raise invalid(self.name, f"'{self.name}' must be one of {', '.join(self.values)}", value=raw[:64])
        return raw

    def schema(self, symbols: list[str] | None) -> dict:
        schema: dict = {"type": "string", "enum": list(self.values)}
        if self.default is not None:
            schema["default"] = self.default
        return schema


@dataclass(frozen=True)
class IntChoice(Param):
    """One of a fixed list of integers (Binance's depth limits)."""

    values: tuple[int, ...] = ()
    default: int | None = None

    def default_value(self) -> int | None:
        return self.default

    def convert(self, raw: str) -> int:
        if not CANONICAL_INT_RE.match(raw) or int(raw) not in self.values:
            raise invalid(self.name, f"'{self.name}' must be one of {', '.join(map(str, self.values))}", value=raw[:64])
        return int(raw)

    def schema(self, symbols: list[str] | None) -> dict:
        schema: dict = {"type": "integer", "format": "int64", "enum": list(self.values)}
        if self.default is not None:
            schema["default"] = self.default
        return schema


@dataclass(frozen=True)
class Text(Param):
    """Free text matching a pattern."""

    pattern: str = ""
    max_length: int = 128

    def convert(self, raw: str) -> str:
        if len(raw) > self.max_length or not re.fullmatch(self.pattern, raw):
            raise invalid(self.name, f"'{self.name}' is malformed ({self.description or self.pattern})")
        return raw

    def schema(self, symbols: list[str] | None) -> dict:
        return {"type": "string", "pattern": f"^{self.pattern}$", "maxLength": self.max_length}


@dataclass(frozen=True)
class Symbol(Param):
    """A symbol; resolved against exchangeInfo by Query.parse (ASCII letters case-insensitive)."""

    description: str = "Symbol (BTCUSDT); ASCII letters are case-insensitive"

    def convert(self, raw: str) -> str:
        if not SYMBOL_TEXT_RE.match(raw):
            raise invalid(self.name, f"'{self.name}' is not a symbol", value=raw[:64])
        return raw

    def schema(self, symbols: list[str] | None) -> dict:
        if symbols:
            return {"type": "string", "enum": symbols}
        return {"type": "string", "pattern": SYMBOL_PATTERN}


@dataclass(frozen=True)
class SymbolList(Param):
    """Several symbols, comma-separated (`BTCUSDT,ETHUSDT`): OpenAPI's form style without explode."""

    description: str = "Several symbols, comma-separated (BTCUSDT,ETHUSDT), each at most once"
    max_items: int = 100

    def convert(self, raw: str) -> list[str]:
        items = raw.split(",")
        if len(items) > self.max_items or not all(SYMBOL_TEXT_RE.match(item) for item in items):
            raise invalid(
                self.name, f"'{self.name}' must list 1-{self.max_items} symbols, comma-separated", value=raw[:64]
            )
        return items

    def schema(self, symbols: list[str] | None) -> dict:
        item = {"type": "string", "enum": symbols} if symbols else {"type": "string", "pattern": SYMBOL_PATTERN}
        return {"type": "array", "items": item, "minItems": 1, "maxItems": self.max_items, "uniqueItems": True}

    def document(self, symbols: list[str] | None) -> dict:
        return {**super().document(symbols), "style": "form", "explode": False}


@dataclass(frozen=True)
class Query:
    """The query parameters of one route: parsed together, documented together."""

    params: tuple[Param, ...] = field(default_factory=tuple)

    def __init__(self, *params: Param):
        object.__setattr__(self, "params", params)

    async def parse(self, request: Request) -> dict[str, Any]:
        """Every declared parameter by name (absent ones as their default), symbols resolved."""
        # Blank values kept: `?limit=` must be refused, not read as "no limit given".
        args = request.get_args(keep_blank_values=True) if request.query_string else {}
        values: dict[str, Any] = {}
        market = None
        for param in self.params:
            value = param.parse(args.get(param.name))
            if value is not None and isinstance(param, Symbol | SymbolList):
                market = market or request.app.ctx.market
                if isinstance(param, Symbol):
                    value = await market.symbol(value, param.name)
                else:
                    value = [await market.symbol(item, param.name) for item in value]
                    if len(set(value)) != len(value):
                        raise invalid(param.name, f"'{param.name}' lists a symbol twice")
            values[param.name] = value
        return values

    def document(self, symbols: list[str] | None) -> list[dict]:
        return [param.document(symbols) for param in self.params]
