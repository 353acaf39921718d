#!/bin/sh
# Make sure a Redis is reachable and print `export REDIS_URL=...` for eval.
#
#   eval "$(scripts/ensure_redis.sh)"
#
# Uses $REDIS_URL (else REDIS_URL from ./.env, else redis://127.0.0.1:6379/0) when it
# answers PING. Otherwise starts a private, non-persistent redis-server on a free loopback
# port under .run/ (installing redis-server with apt-get first when running as root) and
# also prints `export SPOTGATE_PRIVATE_REDIS_PID=...` so scripts/stop_private_redis.sh can
# end it.
# Only the export lines go to stdout; every diagnostic goes to stderr.
set -eu

PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3

# Same precedence as config.Settings: the real environment, then ./.env, then the default.
if [ -z "${REDIS_URL:-}" ] && [ -f .env ]; then
    REDIS_URL="$("$PYTHON" -c 'from dotenv import dotenv_values
print(dotenv_values(".env").get("REDIS_URL") or "")' 2>/dev/null || true)"
fi
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"

say() { echo "ensure_redis: $*" >&2; }

# Single-quote a value for the shell that evals our output.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# ping URL -> exit 0 when a Redis at URL answers PING.
ping() {
    if command -v redis-cli >/dev/null 2>&1; then
        # Bounded where coreutils' timeout exists, so an unreachable host cannot hang `make`.
        if command -v timeout >/dev/null 2>&1; then
            [ "$(timeout 5 redis-cli -u "$1" ping 2>/dev/null)" = "PONG" ]
        else
            [ "$(redis-cli -u "$1" ping 2>/dev/null)" = "PONG" ]
        fi
    else
        "$PYTHON" - "$1" >/dev/null 2>&1 <<'PY'
import sys
import redis
client = redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2, socket_timeout=2)
sys.exit(0 if client.ping() else 1)
PY
    fi
}

if ping "$REDIS_URL"; then
    say "using Redis at $REDIS_URL"
    echo "export REDIS_URL=$(quote "$REDIS_URL")"
    exit 0
fi
say "no Redis answers at $REDIS_URL; starting a private one"

if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing redis-server with apt-get"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; } >&2
    else
        cat >&2 <<MSG
ensure_redis: redis-server is not installed and no Redis answers at $REDIS_URL.
  Install it:   sudo apt-get install redis-server   (Debian/Ubuntu)
                brew install redis                   (macOS)
  or point REDIS_URL at a running Redis, e.g. REDIS_URL=redis://host:6379/0 make test
MSG
        exit 1
    fi
fi

RUN_DIR="$(pwd)/.run"
mkdir -p "$RUN_DIR"
PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
PIDFILE="$RUN_DIR/redis.pid"
rm -f "$PIDFILE"

redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$PIDFILE" --logfile "$RUN_DIR/redis.log" --dir "$RUN_DIR" >&2

URL="redis://127.0.0.1:$PORT/0"
tries=0
until [ -s "$PIDFILE" ] && ping "$URL"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 50 ]; then
        say "private redis-server did not answer on port $PORT within 5 s; see $RUN_DIR/redis.log"
        [ -s "$PIDFILE" ] && kill "$(cat "$PIDFILE")" 2>/dev/null || true
        exit 1
    fi
    sleep 0.1
done
PID="$(cat "$PIDFILE")"
say "private Redis (pid $PID) at $URL, log $RUN_DIR/redis.log"
echo "export REDIS_URL=$URL"
echo "export SPOTGATE_PRIVATE_REDIS_PID=$PID"
