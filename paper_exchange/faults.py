"""Fault injection for the REST adapter, configured through `/_paper/faults`.

A rule matches requests by method and path ("*" for any) and fires by probability, for a count of
matching requests, or both. Kinds:

    latency      wait `latency_ms`, then answer normally
    error        answer HTTP `status` (default 503) with Binance's -1001 body
    timeout      answer -1007 "execution status unknown" (HTTP `status`, default 408)
    rate_limit   answer 429 -1003 with `Retry-After: retry_after`
    drop         close the connection without an answer

`when` decides whether the request is executed first: "before" (default) fails it untouched,
"after" executes it (an order IS placed) and then fails the answer — Binance's unknown-outcome case.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import asdict, dataclass

KINDS = ("latency", "error", "timeout", "rate_limit", "drop")


@dataclass
class FaultRule:
    id: int
    kind: str
    method: str = "*"
    path: str = "*"
    probability: float = 1.0
    count: int | None = None  # fire for this many matching requests, then retire
    when: str = "before"
    latency_ms: int = 0
    status: int | None = None
    retry_after: int = 1
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and self.path in ("*", path)

    def as_dict(self) -> dict:
        return asdict(self)


class FaultBook:
    def __init__(self, seed: int = 0):
        self.rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._rng = random.Random(f"faults:{seed}")

    def add(self, spec: dict) -> FaultRule:
        """Validate a rule given as JSON; raises ValueError naming the bad field."""
        if not isinstance(spec, dict):
            raise ValueError("body must be a JSON object")
        allowed = {"kind", "method", "path", "probability", "count", "when", "latency_ms", "status", "retry_after"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        rule = FaultRule(id=next(self._ids), kind=kind)
        rule.method = str(spec.get("method", "*")).upper()
        rule.path = str(spec.get("path", "*"))
        rule.probability = _number(spec, "probability", 1.0, float, 0.0, 1.0)
        rule.count = _number(spec, "count", None, int, 1, 10**9)
        rule.when = spec.get("when", "before")
        if rule.when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        rule.latency_ms = _number(spec, "latency_ms", 0, int, 0, 600_000)
        rule.status = _number(spec, "status", None, int, 100, 599)
        rule.retry_after = _number(spec, "retry_after", 1, int, 0, 86_400)
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def pick(self, method: str, path: str) -> list[FaultRule]:
        """The rules firing for this request (each counted), in the order they were added."""
        fired = []
        for rule in list(self.rules):
            if not rule.matches(method, path):
                continue
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            rule.fired += 1
            if rule.count is not None and rule.fired >= rule.count:
                self.rules.remove(rule)
            fired.append(rule)
        return fired


def _number(spec: dict, name: str, default, kind, lo, hi):
    if spec.get(name) is None:
        return default
    value = spec[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and int(value) != value):
        raise ValueError(f"{name} must be a number")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}")
    return kind(value)
