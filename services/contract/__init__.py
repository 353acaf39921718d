"""The contract between the processes — web (app/), worker (tasks/ + services/), beat, stream relay
(workers/stream*.py, workers/market_relay.py, workers/user_relay.py) — and the tests that stand in for
one of them: every name and format two of them must agree on, written once. Nothing here does I/O
at import or imports anything of ours outside this package (design.md: web, workers and tasks may
all import services/, and app/ never imports workers/).

    keys.py          Keys(prefix): the shared Redis keys and channels below, under REDIS_KEY_PREFIX (`P`)
    channels.py      Channel / ChannelKind / INTERVALS, Binance stream names, the `md:<channel>` envelope
                     and its DataType (ticker, trade, kline, depth.snapshot, depth.diff, status, user, order)
    tasks.py         QUEUES, TaskName (every task's name), task_message(): the Celery message the web
                     tier LPUSHes itself
    replies.py       the reply-list RPC: reply format, expiry, deadlines; Replies / AsyncReplies
    relay_status.py  the relay's `stream:status` report and how the web tier reads it
    limits.py        DEFAULT_WEIGHT_LIMIT, the budget's 90 %, REQUEST_WEIGHT per minute from exchangeInfo

Shared keys (writer → reader: format)

    P stream:demand           web hub → relay: sorted set, member = market channel name, score = expiry
                              (ms epoch; re-added every 10 s for now + 30 s); the relay prunes lapsed ones
    P stream:demand:changed   web hub → relay: pub/sub, the name of a channel just added (wakes the relay)
    P md:<channel>            relay → web hubs: pub/sub, JSON {"type", "channel", "id"?, "data"};
                              type ticker | trade | kline | depth.snapshot | depth.diff | status | user | order
                              (docs/streams-protocol.md has each `data`)
    P ticker:<SYM>            relay → web REST, worker risk check (services/prices.py): JSON merged ticker
                              with `price` and `updatedAt` (ms); trusted while younger than TICKER_FRESH_MS
    P book:<SYM>              relay → web hubs: JSON {"lastUpdateId", "bids", "asks", "updatedAt"}, the top
                              20 levels, written in one MULTI with each diff it publishes
    P user:events             relay → web hubs: Redis Stream, field `event` = a Binance user event's JSON;
                              the entry id is the `lastEventId` clients resume from (MAXLEN ~ 10000)
    P stream:status           relay → web /status, scripts/ready.py: relay_status.py (10 s expiry)
    P reply:<uuid>            task → its caller (web dispatcher, relay's WorkerCalls): list, replies.py
    P celery:<queue>          web dispatcher (LPUSH task_message) and Celery → worker: kombu's queue list
    P celery:unacked          kombu (worker) → web /metrics: hash of delivered, unacknowledged messages
    P ws-hub                  the client name of a web process's pub/sub connection (tests cut it)

Task names (TaskName in tasks.py, registered by tasks/*.py; first argument `reply_to` where the caller
waits, keyword `deadline` = epoch ms after which the task is not run, replies.py)

    orders.place(job_id)                               queue orders; outcome in the job record, no reply
    orders.cancel, orders.cancel_all, orders.cancel_everything       queue orders, reply
    account.get, account.order, account.open_orders, account.all_orders, account.trades,
    account.holdings                                   default, reply
    user_stream.session, user_stream.listen_key, user_stream.signature   default, reply (the relay waits)
    user_stream.keepalive, maintenance.release_due_orders, maintenance.reconcile_jobs,
    maintenance.restore_unacked, maintenance.sync_server_time   beat's schedule (workers/celery_app.py), no reply
    maintenance.ping                                   default, reply (web /status)

Task messages are Celery protocol v2 in kombu's Redis envelope (tasks.py), with the web request's id
in header REQUEST_ID_HEADER. A reply is JSON {"ok": true, "data": ...} or {"ok": false, "error":
{"code", "message", "details"}}, LPUSHed with a REPLY_TTL expiry; the caller BLPOPs it for its wait
plus REPLY_GRACE.

Keys with one owner, spelled once in it (listed here so this page stays the map):

    services/jobs.py          job:<id>, job:<id>:order, jobs:open, jobs:scheduled, jobs:events (pub/sub),
                              idem:<owner>:<key>, client:<clientOrderId>
    services/job_runs.py      job-lock:<id>
    services/risk.py          risk:limits, risk:kill-switch, risk:open-orders, risk:open-slots,
                              risk:open-count, risk:rate:<owner>:<minute>, orders:symbols
    services/pacing.py        pace:orders:10s:<n>, pace:orders:1d:<n>
    services/user_stream.py   user-stream:listen-key
    services/metrics.py       metrics:reports (a hash: each process's latest metrics report)
    binance_client/budget.py  upstream:weight:<minute>, upstream:pause (the shared weight budget; it
                              takes the prefix as an argument, binance_client imports nothing of ours)
    app/auth.py               auth:revoked:<jti>, auth:family:<id>, auth:subject:<sub>, auth:login:...
    app/quotas.py             quota:weight:<client>:<minute>
    app/hub.py                ws:hub:<uuid> (a pub/sub channel of one web process alone)
"""
