#!/usr/bin/env bash
# Restart benchmark (issue 11 (a), the reopen step alone): one paymentd on a
# devbroker with 4 partitions decides BENCH_KEYS (default 1,000,000) distinct
# requests, is SIGKILLed and restarted on the same state directory; prints the
# time from the restart until /readyz answers (every task reopened, its
# RocksDB write-ahead log replayed, restored and processing) and the per-task
# restore lines. Usage: bench/restart.sh [build-dir]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
bin=$build/src
keys=${BENCH_KEYS:-1000000}
work=$(mktemp -d /tmp/paymentd-restart.XXXXXX)
# shellcheck source=../scripts/lib/processes.sh
source "$root/scripts/lib/processes.sh"
declare -A pids
log() { printf '[restart %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
trap 'kill -9 ${pids[broker]:-} ${daemon:-} 2>/dev/null || true; rm -rf "$work"' EXIT
start_devbroker "$bin/devbroker/devbroker" "$work" 4
"$bin/tools/payments-topics" --bootstrap-servers "$bootstrap" --partitions 4 \
  --topic payments.requests --topic payments.confirmations --topic payments.requests.dlq >/dev/null
start() {
  "$bin/paymentd/paymentd" --set "bootstrap.servers=$bootstrap" --set "state.dir=$work/state" \
    --set admin.listen=127.0.0.1:0 >>"$work/p.out" 2>"$work/p.log" &
  daemon=$!
  port=$(wait_for_line "$work/p.log" 'admin listening on [0-9.]+:[0-9]+' 60 $daemon | sed 's/.*://')
}
start
"$bin/tools/payments-loadgen" --bootstrap-servers "$bootstrap" --count "$keys" --rate 0 --customers 100000 \
  --duplicates 0 --key-reuse 0 --invalid 0 --refunds 0 --bursts 0 --seed 7 --quiet >/dev/null
until (($(metric_value "$port" streams_records_processed_total 0) >= keys)); do sleep 1; done
kill -9 $daemon
wait $daemon 2>/dev/null || true
t0=$(date +%s%3N)
start
until http_get "$port" /readyz >/dev/null 2>&1; do sleep 0.02; done
echo "restart ($keys keys, 4 tasks): ready $(($(date +%s%3N) - t0)) ms after the restart"
grep -E 'restored [0-9]+ changelog records' "$work/p.log" | sed 's/.*\] task/task/'
