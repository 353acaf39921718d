"""How a client's spelling of a symbol becomes exchangeInfo's: ASCII a-z fold to A-Z, nothing else.

Never `str.upper()` on the whole text: "btcuſdt".upper() == "BTCUSDT" (U+017F) and "ß".upper() == "SS".
Non-ASCII characters are taken as they are (Binance lists UTF-8 symbol names since 2025-12-15); the
result must then equal a listed symbol exactly.
"""

from __future__ import annotations

import string

_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)


def fold_symbol(text: str) -> str:
    """`btcusdt` → `BTCUSDT`; every character outside ASCII a-z is kept as it is."""
    return text.translate(_ASCII_UPPER)
