#!/bin/sh
# Stop the private redis-server that scripts/ensure_redis.sh started, if any.
set -eu

PID="${SPOTGATE_PRIVATE_REDIS_PID:-}"
[ -n "$PID" ] || exit 0

if kill "$PID" 2>/dev/null; then
    # Bounded wait so callers can rely on the port being free afterwards.
    tries=0
    while kill -0 "$PID" 2>/dev/null && [ "$tries" -lt 50 ]; do
        tries=$((tries + 1))
        sleep 0.1
    done
    kill -0 "$PID" 2>/dev/null && kill -9 "$PID" 2>/dev/null || true
    echo "stop_private_redis: stopped private Redis (pid $PID)" >&2
fi
rm -f "$(pwd)/.run/redis.pid"
