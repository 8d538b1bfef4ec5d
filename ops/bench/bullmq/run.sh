#!/usr/bin/env bash
# Peer benchmark: JOBS no-op jobs through BullMQ on a private, durable
# redis-server (appendonly yes, appendfsync everysec), same worker concurrency
# as the Fenta run.
#
# usage: ops/bench/bullmq/run.sh [jobs=50000] [concurrency=2]
#
# Installs the npm deps only if node_modules is missing, starts a
# redis-server on a free loopback port with a temp dir, runs bench.mjs, stops
# redis and removes the temp dir. Progress goes to stderr; the last line on
# stdout is bench.mjs's JSON:
#   {"jobs":50000,"concurrency":2,"seconds":S,"jobs_per_s":R}
set -euo pipefail

JOBS=${1:-50000}
CONC=${2:-2}
TIMEOUT=${BENCH_TIMEOUT:-300}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { echo "bullmq-bench: $*" >&2; }
die() { log "$*"; exit 1; }

[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "jobs must be a positive integer (got '$JOBS')"
[[ $CONC =~ ^[1-9][0-9]*$ ]] || die "concurrency must be a positive integer (got '$CONC')"

command -v node >/dev/null || die "node not found: run ops/setup"
command -v npm >/dev/null || die "npm not found: run ops/setup"
command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
  die "redis-server/redis-cli not found (Debian package redis-server): run ops/setup"

# `npm install` with the committed lock installs the locked versions. Not
# `npm ci`: the registry reachable here lacks msgpackr-extract's darwin/win32
# optional builds, so the lock cannot list them and `npm ci` rejects it.
if [[ ! -d $HERE/node_modules/bullmq || ! -d $HERE/node_modules/ioredis ]]; then
  log "installing npm dependencies (npm install from package-lock.json)"
  (cd "$HERE" && npm install --no-save --no-audit --no-fund --loglevel=error) >&2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fenta-bullmq.XXXXXX")
PORT=
REDIS_PID=
BENCH_PID=

cleanup() {
  if [[ -n $BENCH_PID ]]; then
    kill "$BENCH_PID" 2>/dev/null || true
    wait "$BENCH_PID" 2>/dev/null || true
    BENCH_PID=
  fi
  if [[ -n $REDIS_PID ]]; then
    redis-cli -h 127.0.0.1 -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 50); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=
  fi
  [[ -n $TMP ]] && rm -rf "$TMP"
  TMP=
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Start redis; retry with another port if the one we picked was taken meanwhile.
for attempt in 1 2 3 4 5; do
  PORT=$(free_port)
  redis-server --port "$PORT" --bind 127.0.0.1 --dir "$TMP" \
    --appendonly yes --appendfsync everysec --save '' --daemonize no \
    --logfile "$TMP/redis.log" &
  REDIS_PID=$!
  for _ in $(seq 100); do
    kill -0 "$REDIS_PID" 2>/dev/null || break
    [[ $(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null) == PONG ]] && break 2
    sleep 0.1
  done
  log "redis-server did not come up on port $PORT (attempt $attempt):"
  tail -n 5 "$TMP/redis.log" >&2 2>/dev/null || true
  kill -9 "$REDIS_PID" 2>/dev/null || true
  wait "$REDIS_PID" 2>/dev/null || true
  REDIS_PID=
done
[[ -n $REDIS_PID ]] || die "could not start redis-server"

log "redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$PORT" \
    "(appendonly yes, appendfsync everysec), bullmq $(node -p "require('$HERE/node_modules/bullmq/package.json').version")," \
    "node $(node -v), $JOBS jobs, concurrency $CONC"

# bench.mjs runs in the background so that a signal to this script is
# handled at once (cleanup kills it) instead of after the bench finishes.
START=$(date +%s.%N)
node "$HERE/bench.mjs" --port "$PORT" --jobs "$JOBS" --concurrency "$CONC" \
  --timeout "$TIMEOUT" >"$TMP/result.json" &
BENCH_PID=$!
RC=0
wait "$BENCH_PID" || RC=$?
BENCH_PID=
END=$(date +%s.%N)
(( RC == 0 )) || die "bench.mjs failed (exit $RC)"
JSON=$(tail -n 1 "$TMP/result.json")
[[ $JSON == '{"jobs":'* ]] || die "bench.mjs printed no result line"

cleanup
log "done in $(awk -v a="$START" -v b="$END" 'BEGIN{printf "%.1f", b-a}') s (bench.mjs process)"
printf '%s\n' "$JSON"
