"""Decimal helpers: money is Decimal inside and an 8-decimal string on the wire, as Binance sends it."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, getcontext

getcontext().prec = 40

EIGHT = Decimal("0.00000001")
ZERO = Decimal(0)


def D(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def fmt(value: Decimal | None, places: int = 8) -> str:
    """Binance's wire format: fixed point, 8 decimals ("0.00000000" for nothing)."""
    if value is None:
        value = ZERO
    return f"{value:.{places}f}"


def floor8(value: Decimal) -> Decimal:
    return value.quantize(EIGHT, rounding=ROUND_DOWN)
