"""Placing an order exactly once (design.md, data flow 3).

An order's outcome is UNKNOWN after a timeout, a 5xx, -1006/-1007 or a connection lost after sending.
Then, and whenever a previous attempt of the same job may have reached Binance (a retried or
redelivered task), the order is looked up by its client order id before anything is resent, and a
resend uses the SAME client id, so Binance itself refuses a double ("Duplicate order sent.", which
means: look it up). Definitive rejections are never retried; -1021 resyncs the clock and retries;
429/418 pause every process until Retry-After has passed.

An order found by its client order id must be the job's order (symbol, side, type, prices, quantity):
one placed outside the gateway under the same id fails the job with CLIENT_ORDER_ID_IN_USE instead of
passing for it. A run that loses Redis (a restart, a failover) cannot record what it learnt: it waits
for Redis to answer again, lets its lock go and hands the job back to be run again at once (which
looks the order up first), instead of failing the task, whose message would then be gone (Celery
acknowledges a failed task) and the job left `running` until the sweep re-drives it. Right before
sending, once nothing of the order can be on the exchange, the run applies the whole risk check
again (services/risk.py: the limits as they are then, the price now, a slot under maxOpenOrders)
and the job's time-to-live: an order that could only be sent after its `expiresAt` fails with
ORDER_EXPIRED, unsent.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import redis

from binance_client import BinanceClient, endpoints
from binance_client.budget import ORDER, WeightBudget
from binance_client.errors import (
    AuthError,
    BinanceError,
    BudgetSpentError,
    ClockSkewError,
    NotFoundError,
    OrderRejectedError,
    RateLimitedError,
    UnavailableError,
    UnknownOutcomeError,
)

from .job_runs import DONE, HELD, Begun, GateVerdict, JobRuns
from .jobs import FAILED, RUNNING, SUCCEEDED, JobStore, is_final, now_ms
from .metrics import metrics
from .outcomes import error_from_binance, failure
from .pacing import OrderPacer
from .prices import Prices
from .risk import (
    USDT,
    RiskStore,
    Valuation,
    kill_switch_refusal,
    limits_refusal,
    needs_reference,
    open_orders_refusal,
    order_value,
)

log = logging.getLogger("spotgate.placement")
DUPLICATE = "Duplicate order sent."
RENEW_AFTER = 1.0  # seconds: how stale a job lock's renewal may be before a step that can block
# POST /api/v3/order costs no weight when it succeeds (CHANGELOG 2026-03-27): the gate reserves none
# (it still refuses while the budget is spent or paused); a refused order is counted from Binance's
# X-MBX-USED-WEIGHT-1M on the refusal.
ORDER_WEIGHT = endpoints.new_order("X", "BUY", "MARKET").reserved_weight
LOOKUP_WEIGHT = 4  # GET /api/v3/order
OPEN_ORDERS_WEIGHT = 80  # GET /api/v3/openOrders without a symbol
REDIS_WAIT = 60.0  # seconds a run that lost Redis waits for it before giving the job to the sweep
# what a lost Redis raises (after the client's own few seconds of retries); BusyLoadingError (a Redis
# loading its data after a restart) is a ConnectionError
REDIS_LOST = (redis.ConnectionError, redis.TimeoutError)


class PlacementPending(Exception):
    """The job cannot be finished by this run: try it again in `retry_in` seconds (None: back off)."""

    def __init__(self, job_id: str, retry_in: float | None = None):
        super().__init__(job_id)
        self.job_id = job_id
        self.retry_in = retry_in


class LockLost(Exception):
    """This run no longer holds its job's lock: another run may own the job now, so send nothing."""


@dataclass
class _Lock:
    """The job lock as one run holds it: renewed when stale, released once."""

    runs: JobRuns
    job_id: str
    seconds: float
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    renewed_at: float = field(default_factory=time.monotonic)
    held: bool = True

    def keep(self, seconds: float = 0.0, deadline: float | None = None) -> None:
        """Renew the lock if its last renewal is over RENEW_AFTER old, sleeping `seconds` (capped at
        `deadline`) in renewed slices; raises LockLost when another run has it now."""
        end = time.monotonic() + seconds if deadline is None else min(time.monotonic() + seconds, deadline)
        while True:
            if time.monotonic() - self.renewed_at >= RENEW_AFTER:
                self.renewed_at = time.monotonic()
                if not self.runs.renew(self.job_id, self.token, self.seconds):
                    self.held = False
                    raise LockLost()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, RENEW_AFTER))

    def release(self) -> None:
        if self.held:
            self.held = False
            try:
                self.runs.release(self.job_id, self.token)
            except REDIS_LOST:
                pass  # Redis is still away: the lock lapses by itself within `seconds`


@dataclass
class Placer:
    client: BinanceClient
    jobs: JobStore
    pacer: OrderPacer
    budget: WeightBudget
    risk: RiskStore
    run_seconds: float = 60.0  # how long one task run keeps trying before handing back
    max_backoff: float = 5.0
    # A run holds its job's lock for this long after each renewal. It renews (when the last renewal
    # is over RENEW_AFTER old) before every call to Binance and while it waits, so the lock only
    # lapses when the run is dead: it must outlast the longest single step (one HTTP call: connect +
    # read timeouts) plus RENEW_AFTER, and no more, since it is how long a killed worker's job waits
    # before its redelivered task may take it over.
    lock_seconds: float = 25.0
    prices: Prices | None = None  # current prices for the risk check (default: relay ticker, else Binance)

    def __post_init__(self) -> None:
        self.runs = JobRuns(self.jobs, self.pacer, self.budget, self.risk)
        self._prices = self.prices or Prices(self.jobs.redis, self.jobs.prefix, self.client, self.budget)

    def place(self, job_id: str) -> dict | None:
        """Drive a job to a final state; raises PlacementPending to be retried later."""
        # One run per job at a time: two live runs could each look the order up, find nothing and
        # both send it. A run that finds the lock held comes back when it may have lapsed (its
        # holder may be dead: a SIGKILLed worker's task is redelivered while its lock still stands).
        lock = _Lock(self.runs, job_id, self.lock_seconds)
        try:
            begun = self.runs.begin(job_id, lock.token, self.lock_seconds)
        except REDIS_LOST as exc:
            self._wait_for_redis(job_id, exc)
            lock.release()  # in case the lock was taken and only the answer lost (by token: no harm)
            raise PlacementPending(job_id, retry_in=0.0) from None
        if begun.state == HELD:
            if is_final(begun.job):
                return begun.job
            raise PlacementPending(job_id, retry_in=max(0.5, begun.lock_ttl + 0.2))
        if begun.state == DONE or begun.job is None:  # final, or gone
            return begun.job
        try:
            return self._place(begun.job, begun, lock)
        except LockLost:
            log.warning("job %s: lock lost mid-run; leaving the job to its new holder", job_id)
            raise PlacementPending(job_id, retry_in=self.lock_seconds) from None
        except REDIS_LOST as exc:
            # whatever this run learnt (an order placed, refused, unknown) is not recorded: the next
            # run starts from the record (attempts > 0) and so looks the order up before sending
            self._wait_for_redis(job_id, exc)
            raise PlacementPending(job_id, retry_in=0.0) from None
        finally:
            lock.release()  # unless finish() released it with the final record

    def _wait_for_redis(self, job_id: str, exc: Exception) -> None:
        """Block until Redis answers (at most REDIS_WAIT): the job is run again once it does. Past
        that, raise: the task fails and the sweep re-drives the job when Redis is back."""
        log.warning(
            "job %s: Redis unavailable mid-run (%s); waiting for it, then the job runs again "
            "(its order looked up first)",
            job_id,
            exc,
        )
        deadline = time.monotonic() + REDIS_WAIT
        while True:
            try:
                self.jobs.redis.ping()
                return
            except REDIS_LOST:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _place(self, job: dict, begun: Begun, lock: _Lock) -> dict | None:
        job_id = job["id"]
        if job.get("executeAt") and job["executeAt"] > now_ms():
            return job  # released by maintenance.release_due_orders when due
        may_exist = job["attempts"] > 0  # an earlier run may have reached Binance
        running = {k: v for k, v in job.items() if k != "orderUpdate"}  # kept in a key of its own
        running.update(status=RUNNING, attempts=job["attempts"] + 1, updatedAt=now_ms())
        request, client_id = job["request"], job["clientOrderId"]
        halted = kill_switch_refusal(begun.kill_switch)
        verdict: GateVerdict | None = None
        if may_exist or halted is not None:
            stored = self.jobs.update(job_id, current=running)
            if stored is None or is_final(stored):  # gone, or final meanwhile
                return stored
            job = stored
            if halted is not None and not may_exist:
                return self._finish(job, lock, status=FAILED, error=halted)
        else:
            # the common case, a fresh order: mark it running and pass the gate in one round trip
            started, verdict = self.runs.start(running, ORDER_WEIGHT)
            if started is None or verdict is None:  # gone, or final meanwhile
                return started
            job = started
        deadline = time.monotonic() + self.run_seconds
        backoff = 0.1

        while time.monotonic() < deadline:
            try:
                if may_exist:
                    lock.keep()
                    found = self._lookup(request["symbol"], client_id)
                    if found is not None:
                        if not matches(found, request):
                            return self._finish(job, lock, status=FAILED, error=client_id_taken(client_id, found))
                        return self._finish(job, lock, status=SUCCEEDED, order=found, error=None)
                # from here on nothing of this order is on the exchange (looked up just now, or never
                # sent): it may still expire or be refused
                if expired(job, 0.0):
                    return self._finish(job, lock, status=FAILED, error=expiry_refusal(job))
                # the kill switch is read again right before sending: one engaged meanwhile stops
                # this order; pacing and weight are taken together, both or neither
                verdict = verdict or self.runs.gate(ORDER_WEIGHT)
                if verdict.halted is not None:
                    return self._finish(job, lock, status=FAILED, error=kill_switch_refusal(verdict.halted))
                if not verdict.passed:
                    if expired(job, verdict.wait):
                        # it could only be sent after its time-to-live: fail it now, unsent
                        return self._finish(job, lock, status=FAILED, error=expiry_refusal(job))
                    if time.monotonic() + verdict.wait > deadline:
                        break
                    lock.keep(verdict.wait, deadline)
                    verdict = None
                    continue
                # the whole risk check again, with the limits as the gate read them and the price now
                refusal = self._risk_refusal(job, verdict.limits)
                verdict = None
                if refusal is not None:
                    return self._finish(job, lock, status=FAILED, error=refusal)
                lock.keep()
                order = self.client.call(
                    endpoints.new_order(
                        request["symbol"],
                        request["side"],
                        request["type"],
                        quantity=request.get("quantity"),
                        quote_order_qty=request.get("quoteOrderQty"),
                        price=request.get("price"),
                        stop_price=request.get("stopPrice"),
                        time_in_force=request.get("timeInForce"),
                        new_client_order_id=client_id,
                        new_order_resp_type="FULL",
                    )
                )
                return self._finish(job, lock, status=SUCCEEDED, order=order, error=None)
            except OrderRejectedError as exc:
                self.budget.observe(exc.rate_limits.used_weight_1m)
                if exc.msg == DUPLICATE:
                    may_exist = True
                    continue
                return self._finish(job, lock, status=FAILED, error=error_from_binance(exc))
            except ClockSkewError:
                # -1021 means it was refused: nothing was placed. Resync, then try again.
                try:
                    self.client.sync_time()
                except BinanceError as exc:
                    log.warning("job %s: clock resync failed (%s)", job_id, exc)
                    lock.keep(backoff, deadline)
                    backoff = min(self.max_backoff, backoff * 2)
            except RateLimitedError as exc:
                wait = exc.retry_after or 1.0
                self.budget.pause(wait, exc.http_status)
                lock.keep(wait, deadline)
            except AuthError as exc:
                self.budget.observe(exc.rate_limits.used_weight_1m)
                return self._finish(job, lock, status=FAILED, error=error_from_binance(exc))
            except UnknownOutcomeError as exc:
                metrics().order_unknown.inc()
                log.warning("job %s: outcome unknown (%s); looking %s up before any resend", job_id, exc, client_id)
                may_exist = True
                lock.keep(backoff, deadline)
                backoff = min(self.max_backoff, backoff * 2)
            except UnavailableError:
                lock.keep(backoff, deadline)  # nothing was sent
                backoff = min(self.max_backoff, backoff * 2)
            except BudgetSpentError as exc:
                # a look-up, a count or a price that could not be had (nothing was sent)
                if not may_exist and expired(job, exc.retry_after or 0.0):
                    return self._finish(job, lock, status=FAILED, error=expiry_refusal(job))
                lock.keep(exc.retry_after or 1.0, deadline)
            except BinanceError as exc:
                self.budget.observe(exc.rate_limits.used_weight_1m)
                return self._finish(job, lock, status=FAILED, error=error_from_binance(exc))
        raise PlacementPending(job_id)

    def _risk_refusal(self, job: dict, limits: dict) -> dict | None:
        """services/risk.py's rules at send time: allowed symbols and the notional at the current
        price (as the web tier applies them), then a slot under maxOpenOrders, reserved atomically."""
        request = job["request"]
        symbol = request["symbol"]
        if "valuation" in job:
            valuation = Valuation.from_json(job["valuation"])
        else:  # a job queued before valuations were recorded
            valuation = Valuation(USDT) if symbol.endswith(USDT) else None
        allowed = limits.get("allowedSymbols")
        value = None
        if needs_reference(limits) and valuation is not None and (allowed is None or symbol in allowed):
            value = order_value(request, self._prices.last(symbol))
            if value is not None and valuation.via is not None:
                value = valuation.to_usdt(value, self._prices.last(valuation.via))
        refusal = limits_refusal(limits, symbol, value, valuation)
        if refusal is not None:
            return refusal
        cap = limits.get("maxOpenOrders")
        if cap is None:
            return None
        counted, since = self.risk.open_count(self._count_open)
        if not self.risk.take_open_slot(job["id"], cap, counted, since):
            return open_orders_refusal(cap)
        return None

    def _lookup(self, symbol: str, client_id: str) -> dict | None:
        self.budget.spend(LOOKUP_WEIGHT, ORDER)
        try:
            return self.client.call(endpoints.get_order(symbol, orig_client_order_id=client_id))
        except NotFoundError:
            return None

    def _count_open(self) -> int:
        self.budget.spend(OPEN_ORDERS_WEIGHT, ORDER)
        return len(self.client.call(endpoints.open_orders()))

    def _finish(self, job: dict, lock: _Lock, *, order: dict | None = None, **patch) -> dict | None:
        """Write the final record (and note the order), releasing the lock in the same call."""
        final = {**job, **patch, "updatedAt": now_ms()}
        if order is not None:
            final["order"] = order
        stored = self.runs.finish(final, lock.token, order)
        lock.held = False  # finish() released it (if it raised, place() releases it by its token)
        _observe_final(final)
        return stored


def _observe_final(job: dict) -> None:
    """The one INFO line (and the metrics) of an order job turning final."""
    m = metrics()
    outcome = "succeeded" if job["status"] == SUCCEEDED else "failed"
    started = max(job.get("createdAt") or 0, job.get("executeAt") or 0)
    m.order_jobs.labels(outcome).inc()
    m.order_duration.labels(outcome).observe(max(0, job["updatedAt"] - started) / 1000)
    request = job["request"]
    if outcome == "succeeded":
        order = job.get("order") or {}
        log.info(
            "job %s succeeded: %s %s %s %s orderId=%s status=%s clientOrderId=%s",
            job["id"],
            request["side"],
            request["type"],
            request.get("quantity") or request.get("quoteOrderQty"),
            request["symbol"],
            order.get("orderId"),
            order.get("status"),
            job["clientOrderId"],
        )
    else:
        error = job.get("error") or {}
        m.order_failures.labels(error.get("code", "UNKNOWN")).inc()
        log.info(
            "job %s failed: %s %s %s code=%s clientOrderId=%s (%s)",
            job["id"],
            request["side"],
            request["type"],
            request["symbol"],
            error.get("code"),
            job["clientOrderId"],
            error.get("message"),
        )


def expired(job: dict, within: float) -> bool:
    """Whether the job's time-to-live is over `within` seconds from now (never for jobs without one)."""
    expires_at = job.get("expiresAt")
    return expires_at is not None and now_ms() + within * 1000 > expires_at


def expiry_refusal(job: dict) -> dict:
    return failure(
        409,
        "ORDER_EXPIRED",
        "The order was not sent: its time-to-live passed while it was queued",
        {"expiresAt": job.get("expiresAt")},
    )


def matches(order: dict, request: dict) -> bool:
    """Whether `order` (found by our client order id) is the order `request` describes — not another
    order that uses the same clientOrderId (one placed outside this gateway)."""
    if (order.get("symbol"), order.get("side"), order.get("type")) != (
        request["symbol"],
        request["side"],
        request["type"],
    ):
        return False
    for ours, theirs in (
        ("price", "price"),
        ("stopPrice", "stopPrice"),
        ("quantity", "origQty"),
        ("quoteOrderQty", "origQuoteOrderQty"),
    ):
        if request.get(ours) is not None and theirs in order and Decimal(order[theirs]) != Decimal(request[ours]):
            return False
    return True


def client_id_taken(client_id: str, other: dict) -> dict:
    return failure(
        409,
        "CLIENT_ORDER_ID_IN_USE",
        f"Another order on the exchange uses clientOrderId '{client_id}'; nothing was placed",
        {"field": "clientOrderId", "clientOrderId": client_id, "orderId": other.get("orderId")},
    )


__all__ = ["Placer", "PlacementPending", "failure"]
