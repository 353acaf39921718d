"""Signed calls other than placing orders (reads and cancels), with the shared weight budget, clock
resync on -1021, and a few retries where repeating the call is harmless."""

from __future__ import annotations

import time
from dataclasses import dataclass

from binance_client import BinanceClient
from binance_client.budget import WeightBudget
from binance_client.endpoints import Request
from binance_client.errors import (BinanceError, ClockSkewError, RateLimitedError, RejectedError,
                                   UnavailableError, UnknownOutcomeError)


class BudgetSpent(BinanceError):
    """Our shared weight budget is spent: Binance was not called."""


@dataclass
class SignedCaller:
    client: BinanceClient
    budget: WeightBudget
    attempts: int = 3

    def call(self, request: Request):
        delay = 0.2
        for attempt in range(self.attempts):
            verdict = self.budget.reserve(request.reserved_weight)
            if not verdict.allowed:
                raise BudgetSpent("Upstream request-weight budget is spent", http_status=429,
                                  retry_after=verdict.retry_after)
            try:
                response = self.client.send(request)
            except ClockSkewError:
                self.client.sync_time()
                continue
            except RateLimitedError as exc:
                self.budget.pause(exc.retry_after or 1, exc.http_status)
                raise
            except RejectedError as exc:
                # refused: Binance charged it (a failed cancel too, though a successful one is free)
                self.budget.observe(exc.rate_limits.used_weight_1m)
                raise
            except (UnknownOutcomeError, UnavailableError):
                if attempt == self.attempts - 1:
                    raise
                time.sleep(delay)
                delay *= 2
                continue
            self.budget.observe(response.rate_limits.used_weight_1m)
            return response.data
        raise UnknownOutcomeError("no answer after retries")
