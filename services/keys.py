"""Redis key parts that come from user input (token subjects, Idempotency-Keys, client order ids, IPs).

A key is made of parts joined with `:`. A part a client chooses may itself contain `:`, so
`idem:bot:1:k` would be the same key for (subject `bot`, key `1:k`) and (subject `bot:1`, key `k`).
`part()` percent-encodes everything but letters, digits and `_.-~`, so `:` (and `%` itself) never
appears raw in a part: different parts always make different keys.
"""

from __future__ import annotations

from urllib.parse import quote


def part(value: str) -> str:
    """`value` made safe to join into a Redis key (injective: different values, different parts)."""
    return quote(value, safe="")
