"""Job records: what became of each queued order, kept in Redis and published when it turns final.

A job is `{id, status: queued|running|succeeded|failed, order, error, clientOrderId, request, owner,
attempts, createdAt, updatedAt, executeAt, expiresAt, valuation}`: `expiresAt` (ms) is when an order
not yet sent is failed with ORDER_EXPIRED instead (services/placement.py); `valuation` how its quote
asset converts to USDT for the risk check at send time (services/risk.Valuation). It only moves
forward (queued → running → succeeded | failed) and always ends final: `maintenance.reconcile_jobs`
re-drives any job left behind.

What happens to the order afterwards (fills, cancels) arrives on the user data stream: the stream
relay records the latest state as the job's `orderUpdate`, kept in a key of its own so it never
touches the record's status (a final job stays final); reads merge it in.

Keys (under the settings' prefix):
    job:<id>          the record (JSON), kept JOB_TTL after its last change
    jobs:open         sorted set of non-final job ids by last change (for reconciliation)
    jobs:scheduled    sorted set of job ids by executeAt (released when due)
    idem:<owner>:<k>  Idempotency-Key → job id (both parts encoded with services.keys.part)
    client:<cid>      clientOrderId → job id, written when the job is created; while it exists (JOB_TTL)
                      no other job may use that clientOrderId
    job:<id>:order    the order's latest state from the user data stream (the job's `orderUpdate`)
    jobs:events       pub/sub channel: a job turning final, and its later orderUpdates (the record's JSON)

A job is created by one script (CREATE) that claims the Idempotency-Key and the clientOrderId, writes
the record and LPUSHes its task: of concurrent requests with one key exactly one creates a job, and
every other one is answered with that job.

`JobStore` (sync, workers) and `AsyncJobStore` (web) share the key layout and the update script.
"""

from __future__ import annotations

import time
import uuid
from typing import overload

import orjson

from .errors import ClientOrderIdInUse
from .keys import part

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
FINAL = {SUCCEEDED, FAILED}
JOB_TTL = 7 * 86_400
IDEMPOTENCY_TTL = 86_400

# Replace a record only while it is not final: a final job never changes again, whoever writes late.
# (The merge happens in Python: Lua's cjson would turn empty JSON arrays into objects.) A Lua
# function, so a placement run's scripts (services/job_runs.py) can update the job in the same call.
UPDATE_FUNCTION = """
local function update_job(job_key, open_key, events_key, record, ttl, score, job_id)
  local raw = redis.call('GET', job_key)
  if not raw then return nil end
  local status = cjson.decode(raw)['status']
  if status == 'succeeded' or status == 'failed' then return raw end
  redis.call('SET', job_key, record, 'EX', ttl)
  local new_status = cjson.decode(record)['status']
  if new_status == 'succeeded' or new_status == 'failed' then
    redis.call('ZREM', open_key, job_id)
    redis.call('PUBLISH', events_key, record)
  else
    redis.call('ZADD', open_key, score, job_id)
  end
  return record
end
"""

UPDATE = (
    UPDATE_FUNCTION
    + """
return update_job(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
"""
)

# Keep the newest order state: an update older than the stored one (by updateTime) is dropped; an
# equal time is a later event of the same moment (NEW then TRADE), so it wins. Flat objects only.
ORDER_UPDATE = """
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current)['updateTime'] > cjson.decode(ARGV[1])['updateTime'] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


# KEYS: idempotency key (the job key again when there is none), job, client id, jobs:open, jobs:scheduled,
#       the task's queue list (the job key again when there is no task)
# ARGV: job id, record, JOB_TTL, IDEMPOTENCY_TTL, score (updatedAt), executeAt or '', task message or '',
#       '1' with an Idempotency-Key, '1' to replace a key whose job has vanished
CREATE = """
if ARGV[8] == '1' and ARGV[9] ~= '1' then
  local existing = redis.call('GET', KEYS[1])
  if existing then return {'existing', existing} end
end
local holder = redis.call('GET', KEYS[3])
if holder then return {'client-id', holder} end
if ARGV[8] == '1' then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[4]) end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
if ARGV[6] ~= '' then redis.call('ZADD', KEYS[5], ARGV[6], ARGV[1]) end
if ARGV[7] ~= '' then redis.call('LPUSH', KEYS[6], ARGV[7]) end
return {'created', ARGV[1]}
"""


def is_final(job: dict | None) -> bool:
    """Nothing more will happen to this job (or there is no such job)."""
    return job is None or job["status"] in FINAL


def now_ms() -> int:
    return int(time.time() * 1000)


def new_job(
    request: dict,
    client_order_id: str,
    owner: str,
    execute_at: int | None = None,
    *,
    ttl_seconds: float | None = None,
    valuation: dict | None = None,
) -> dict:
    """A queued job; `ttl_seconds` after it is due (executeAt, else now) it expires unsent."""
    stamp = now_ms()
    expires_at = None if ttl_seconds is None else int((execute_at or stamp) + ttl_seconds * 1000)
    return {
        "id": uuid.uuid4().hex,
        "kind": "order",
        "status": QUEUED,
        "request": request,
        "clientOrderId": client_order_id,
        "owner": owner,
        "order": None,
        "error": None,
        "attempts": 0,
        "createdAt": stamp,
        "updatedAt": stamp,
        "executeAt": execute_at,
        "expiresAt": expires_at,
        "valuation": valuation,
    }


def public_view(job: dict) -> dict:
    """What clients see of a job."""
    return {
        k: job.get(k)
        for k in (
            "id",
            "status",
            "clientOrderId",
            "order",
            "error",
            "createdAt",
            "updatedAt",
            "executeAt",
            "expiresAt",
            "request",
            "orderUpdate",
        )
    }


class _Keys:
    def __init__(self, prefix: str):
        self.prefix = prefix
        self.open = f"{prefix}jobs:open"
        self.scheduled = f"{prefix}jobs:scheduled"
        self.events = f"{prefix}jobs:events"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def idempotency(self, owner: str, key: str) -> str:
        return f"{self.prefix}idem:{part(owner)}:{part(key)}"

    def by_client_id(self, client_order_id: str) -> str:
        return f"{self.prefix}client:{part(client_order_id)}"

    def order_update(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}:order"


def with_order_update(raw, update) -> dict | None:
    """A stored job record (JSON) with its `orderUpdate` merged in; None when there is no record."""
    if not raw:
        return None
    job = orjson.loads(raw)
    if update:
        job["orderUpdate"] = orjson.loads(update)
    return job


@overload
def _text(value: bytes | str) -> str: ...
@overload
def _text(value: None) -> None: ...
def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class JobStore(_Keys):
    """Synchronous job access for workers."""

    def __init__(self, redis, prefix: str):
        super().__init__(prefix)
        self.redis = redis
        self._update = redis.register_script(UPDATE)
        self._order_update = redis.register_script(ORDER_UPDATE)

    def get(self, job_id: str) -> dict | None:
        raw, update = self.redis.mget(self.job(job_id), self.order_update(job_id))
        return with_order_update(raw, update)

    def update(self, job_id: str, *, current: dict | None = None, **patch) -> dict | None:
        """Merge `patch` into the job unless it is final; returns the record as stored.

        `current`: the record as this caller last stored or read it, to save reading it again (the
        placer, which alone changes a record while it holds the job's lock). The script still
        refuses to change a record that is final in Redis."""
        if current is None:
            raw = self.redis.get(self.job(job_id))
            job = orjson.loads(raw) if raw else None
        else:
            job = {k: v for k, v in current.items() if k != "orderUpdate"}  # kept in a key of its own
        if job is None or job["status"] in FINAL:
            return job
        job.update(patch, updatedAt=now_ms())
        raw = self._update(
            keys=[self.job(job_id), self.open, self.events], args=[orjson.dumps(job), JOB_TTL, job["updatedAt"], job_id]
        )
        return orjson.loads(raw) if raw else None

    def record_order_update(self, client_order_id: str, order: dict) -> dict | None:
        """Record `order` (an order's state from an executionReport, with `updateTime`) as the
        `orderUpdate` of the job that placed it, and publish the job. None when no job used this
        clientOrderId (an order placed elsewhere) or a newer state is already recorded."""
        job_id = _text(self.redis.get(self.by_client_id(client_order_id)))
        if job_id is None:
            return None
        if not self._order_update(keys=[self.order_update(job_id)], args=[orjson.dumps(order), JOB_TTL]):
            return None
        job = self.get(job_id)
        if job is not None:
            self.redis.publish(self.events, orjson.dumps(job))
        return job

    def stale_open(self, older_than_ms: int) -> list[str]:
        ids = self.redis.zrangebyscore(self.open, 0, now_ms() - older_than_ms)
        return [i.decode() if isinstance(i, bytes) else i for i in ids]

    def due(self, limit: int = 500) -> list[str]:
        """Scheduled jobs whose time has come, removed from the schedule (each returned once)."""
        ids = self.redis.zrangebyscore(self.scheduled, 0, now_ms(), start=0, num=limit)
        released = []
        for job_id in ids:
            if self.redis.zrem(self.scheduled, job_id):  # only one releaser wins each job
                released.append(job_id.decode() if isinstance(job_id, bytes) else job_id)
        return released


class AsyncJobStore(_Keys):
    """Asynchronous job access for the web tier."""

    def __init__(self, redis, prefix: str):
        super().__init__(prefix)
        self.redis = redis
        self._create = redis.register_script(CREATE)

    async def create(
        self, job: dict, idempotency_key: str | None = None, task: tuple[str, bytes] | None = None
    ) -> tuple[dict, bool]:
        """Store a new job and LPUSH `task` (queue list, message) in one script, so a job is never
        recorded without its task nor queued without its record. With an Idempotency-Key already used
        by this owner, return that job instead (created=False) and store and queue nothing — also when
        the other request is being served at this very moment. Raises ClientOrderIdInUse when another
        job holds the clientOrderId."""
        replace = False
        while True:
            idem = (
                self.idempotency(job["owner"], idempotency_key) if idempotency_key is not None else self.job(job["id"])
            )
            reply = await self._create(
                keys=[
                    idem,
                    self.job(job["id"]),
                    self.by_client_id(job["clientOrderId"]),
                    self.open,
                    self.scheduled,
                    task[0] if task is not None else self.job(job["id"]),
                ],
                args=[
                    job["id"],
                    orjson.dumps(job),
                    JOB_TTL,
                    IDEMPOTENCY_TTL,
                    job["updatedAt"],
                    job.get("executeAt") or "",
                    task[1] if task is not None else "",
                    "1" if idempotency_key is not None else "0",
                    "1" if replace else "0",
                ],
            )
            outcome, job_id = _text(reply[0]), _text(reply[1])
            if outcome == "created":
                return job, True
            if outcome == "client-id":
                raise ClientOrderIdInUse(job["clientOrderId"], job_id)
            existing = await self.get(job_id)
            if existing is not None:
                return existing, False
            replace = True  # the key outlived its job (deleted by hand): it is this request's now

    async def by_idempotency_key(self, owner: str, idempotency_key: str) -> dict | None:
        """The job a request with this Idempotency-Key already made, if any."""
        job_id = await self.redis.get(self.idempotency(owner, idempotency_key))
        return None if job_id is None else await self.get(_text(job_id))

    async def get(self, job_id: str) -> dict | None:
        raw, update = await self.redis.mget(self.job(job_id), self.order_update(job_id))
        return with_order_update(raw, update)
