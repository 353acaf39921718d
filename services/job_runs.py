"""One placement run's Redis side: the job's lock and the scripts a run is made of, so a fresh order
costs three Redis round trips around its one call to Binance (it took a dozen as separate commands).

    begin    take the job's lock; read the job, its orderUpdate, the kill switch and the risk limits
    start    mark the job running and pass the order gate, in one call
    gate     the order gate alone: kill switch, then the weight budget and an ORDERS slot (both or
             neither are taken); passing, it hands back the risk limits as they are now, for the
             run's last check before sending
    finish   write the final record, note the order for risk and positions, free or date its
             open-order slot (risk.OPEN_SLOT), release the lock
    renew, release   the lock — only by the run holding it (its random token)

The scripts are composed of the Lua functions the single-purpose scripts use (jobs.UPDATE_FUNCTION,
pacing.TAKE_FUNCTION, budget.RESERVE_FUNCTION, risk.SLOT_DONE_FUNCTION), so there is one copy of each
rule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import orjson

from binance_client.budget import MINUTE_MS, ORDER, RESERVE_FUNCTION, WeightBudget, verdict

from .jobs import JOB_TTL, UPDATE_FUNCTION, JobStore, with_order_update
from .pacing import TAKE_FUNCTION, OrderPacer
from .risk import LIMIT_FIELDS, OPEN_STATUSES, SLOT_DONE_FUNCTION, RiskStore

BEGIN = """
local job = redis.call('GET', KEYS[2])
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {'held', job or false, redis.call('PTTL', KEYS[1])}
end
if job then
  local status = cjson.decode(job)['status']
  if status ~= 'succeeded' and status ~= 'failed' then
    return {'locked', job, redis.call('GET', KEYS[3]) or false, redis.call('GET', KEYS[4]) or false,
            redis.call('GET', KEYS[5]) or false}
  end
end
redis.call('DEL', KEYS[1])
return {'done', job or false, redis.call('GET', KEYS[3]) or false}
"""

GATE_FUNCTION = (
    RESERVE_FUNCTION
    + TAKE_FUNCTION
    + """
local function order_gate(kill_key, ten_key, day_key, weight_key, pause_key, limits_key,
                          per_10s, per_day, weight, limit, now_ms, ttl_ms)
  local kill = redis.call('GET', kill_key)
  if kill and cjson.decode(kill)['engaged'] then return {'halt', kill} end
  local reserved = reserve_weight(weight_key, pause_key, weight, limit, now_ms, ttl_ms)
  if reserved[1] ~= 1 then return {'budget', reserved[1], reserved[2], reserved[3]} end
  local slot = take_order_slot(ten_key, day_key, per_10s, per_day)
  if slot[1] == 0 then
    redis.call('DECRBY', weight_key, weight)
    return {'pace', slot[2]}
  end
  return {'pass', redis.call('GET', limits_key) or false}
end
"""
)

GATE = (
    GATE_FUNCTION
    + """
return order_gate(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], tonumber(ARGV[1]), tonumber(ARGV[2]),
                  tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6])
"""
)

START = (
    UPDATE_FUNCTION
    + GATE_FUNCTION
    + """
local stored = update_job(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if stored ~= ARGV[1] then return {'stale', stored or false} end
return order_gate(KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], tonumber(ARGV[5]), tonumber(ARGV[6]),
                  tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10])
"""
)

FINISH = (
    UPDATE_FUNCTION
    + SLOT_DONE_FUNCTION
    + """
local stored = update_job(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if ARGV[6] ~= '' then
  if ARGV[7] == '1' then redis.call('SADD', KEYS[5], ARGV[6]) else redis.call('SREM', KEYS[5], ARGV[6]) end
  redis.call('SADD', KEYS[6], ARGV[8])
end
finish_open_slot(KEYS[7], ARGV[4], ARGV[7])
if redis.call('GET', KEYS[4]) == ARGV[5] then redis.call('DEL', KEYS[4]) end
return stored or false
"""
)

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# begin()'s states
LOCKED, HELD, DONE = "locked", "held", "done"


@dataclass
class Begun:
    state: str  # LOCKED: this run holds the lock; HELD: another run does; DONE: final/gone
    job: dict | None
    lock_ttl: float = 0.0  # HELD: seconds the holder's lock has left
    kill_switch: dict | None = None
    limits: dict = field(default_factory=dict)


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    halted: dict | None = None  # the kill switch's state when it is engaged
    wait: float = 0.0  # seconds before trying again (pacing or weight budget)
    limits: dict = field(default_factory=dict)  # passed: the risk limits as they are now


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _json(raw):
    return orjson.loads(raw) if raw else None


class JobRuns:
    """The scripts above over the keys of the job, risk, pacing and budget stores."""

    def __init__(self, jobs: JobStore, pacer: OrderPacer, budget: WeightBudget, risk: RiskStore):
        self.redis = jobs.redis
        self.jobs, self.pacer, self.budget, self.risk = jobs, pacer, budget, risk
        register = self.redis.register_script
        self._begin, self._start, self._gate = register(BEGIN), register(START), register(GATE)
        self._finish, self._renew, self._release = register(FINISH), register(RENEW), register(RELEASE)

    def lock_key(self, job_id: str) -> str:
        return f"{self.jobs.prefix}job-lock:{job_id}"

    def begin(self, job_id: str, token: str, lock_seconds: float) -> Begun:
        reply = self._begin(
            keys=[
                self.lock_key(job_id),
                self.jobs.job(job_id),
                self.jobs.order_update(job_id),
                self.risk.kill_key,
                self.risk.limits_key,
            ],
            args=[token, int(lock_seconds * 1000)],
        )
        state = _text(reply[0])
        if state == HELD:
            return Begun(HELD, _json(reply[1]), lock_ttl=max(0, int(reply[2])) / 1000)
        if state == DONE:
            return Begun(DONE, with_order_update(reply[1], reply[2]))
        limits = _json(reply[4]) or {name: None for name in LIMIT_FIELDS}
        return Begun(LOCKED, with_order_update(reply[1], reply[2]), kill_switch=_json(reply[3]), limits=limits)

    def start(self, job: dict, weight: int) -> tuple[dict | None, GateVerdict | None]:
        """Store `job` (now running) and pass the gate: (the record as stored, the verdict), or
        (the record, None) when the stored one was final or gone and was left alone."""
        now = int(time.time() * 1000)
        record = orjson.dumps(job)
        reply = self._start(
            keys=self._job_keys(job["id"]) + self._gate_keys(now),
            args=[record, JOB_TTL, job["updatedAt"], job["id"]] + self._gate_args(weight, now),
        )
        if _text(reply[0]) == "stale":
            return _json(reply[1]), None
        return job, self._verdict(reply, now)

    def gate(self, weight: int) -> GateVerdict:
        now = int(time.time() * 1000)
        return self._verdict(self._gate(keys=self._gate_keys(now), args=self._gate_args(weight, now)), now)

    def finish(self, job: dict, token: str, order: dict | None = None) -> dict | None:
        """Store the final `job`, note `order` (if any) as risk.note_order does, release the lock."""
        member = f"{order.get('symbol')}:{order.get('orderId')}" if order and order.get("symbol") else ""
        is_open = "1" if order and order.get("status") in OPEN_STATUSES else "0"
        reply = self._finish(
            keys=self._job_keys(job["id"])
            + [self.lock_key(job["id"]), self.risk.open_key, self.risk.traded_key, self.risk.slots_key],
            args=[
                orjson.dumps(job),
                JOB_TTL,
                job["updatedAt"],
                job["id"],
                token,
                member,
                is_open,
                (order or {}).get("symbol") or "",
            ],
        )
        return _json(reply)

    def renew(self, job_id: str, token: str, lock_seconds: float) -> bool:
        return bool(self._renew(keys=[self.lock_key(job_id)], args=[token, int(lock_seconds * 1000)]))

    def release(self, job_id: str, token: str) -> None:
        self._release(keys=[self.lock_key(job_id)], args=[token])

    # -- keys and arguments --------------------------------------------------------------------------

    def _job_keys(self, job_id: str) -> list[str]:
        return [self.jobs.job(job_id), self.jobs.open, self.jobs.events]

    def _gate_keys(self, now_ms: int) -> list[str]:
        return [
            self.risk.kill_key,
            *self.pacer.keys(now_ms),
            self.budget.weight_key(now_ms),
            self.budget.pause_key,
            self.risk.limits_key,
        ]

    def _gate_args(self, weight: int, now_ms: int) -> list:
        # orders draw on the budget up to the ORDER ceiling: market data cannot spend their share
        return [self.pacer.per_10s, self.pacer.per_day, weight, self.budget.ceiling(ORDER), now_ms, 2 * MINUTE_MS]

    def _verdict(self, reply, now_ms: int) -> GateVerdict:
        kind = _text(reply[0])
        if kind == "pass":
            return GateVerdict(True, limits=_json(reply[1]) or {})
        if kind == "halt":
            return GateVerdict(False, halted=_json(reply[1]))
        if kind == "pace":
            return GateVerdict(False, wait=self.pacer.wait_after(int(reply[1]), now_ms))
        return GateVerdict(False, wait=verdict(reply[1:], now_ms).retry_after)
