#!/usr/bin/env bash
# The paymentd demo: builds, starts a broker and paymentd, sends a realistic mix
# of payment requests, waits until every one is decided, checks every invariant
# with payments-verify, prints throughput and end-to-end latency, and stops
# everything. Exits with payments-verify's status (0 = no violation).
#
#   scripts/demo.sh
#
# Environment:
#   DEMO_COUNT=20000        requests to send
#   DEMO_CUSTOMERS=500      distinct customers
#   DEMO_RATE=0             requests per second (0 = as fast as possible)
#   DEMO_BROKER=devbroker|mock   default: devbroker when it builds, else mock
#                           (librdkafka's mock cluster, see src/tools/README.md)
#   DEMO_KEEP=1             keep the work directory (logs, outputs) afterwards
#   BUILD_DIR=build         CMake build directory
#
# Latency: loadgen measures it per request, from handing the request to its
# producer to reading its confirmation with a read_committed consumer
# (--await-confirmations). With DEMO_RATE=0 the whole load is sent at once, so
# the p99 includes the time requests wait in the backlog; set DEMO_RATE below
# the throughput to see the latency of an unloaded pipeline.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
count=${DEMO_COUNT:-20000}
customers=${DEMO_CUSTOMERS:-500}
rate=${DEMO_RATE:-0}
broker_kind=${DEMO_BROKER:-}
partitions=4
app_id=paymentd

log() { printf '[demo] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/paymentd-demo.XXXXXX")
broker_pid=""
paymentd_pid=""

stop_pid() {  # pid, name: SIGTERM, wait up to 20 s, then SIGKILL
  local pid=$1 name=$2
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 200); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  log "$name did not stop in 20 s, killing it"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$?
  stop_pid "$paymentd_pid" paymentd
  stop_pid "$broker_pid" broker
  if [[ "${DEMO_KEEP:-0}" == 1 || $status -ne 0 ]]; then
    log "logs and outputs kept in $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# GET http://127.0.0.1:$1$2; prints the body; returns 0 only for HTTP 200.
http_get() {
  local port=$1 path=$2
  if command -v curl >/dev/null; then
    curl -sf --max-time 5 "http://127.0.0.1:$port$path"
  else
    local response
    exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
    response=$(cat <&3)
    exec 3<&-
    [[ "$response" == "HTTP/1.1 200"* || "$response" == "HTTP/1.0 200"* ]] || return 1
    printf '%s' "${response#*$'\r\n\r\n'}"
  fi
}

# Waits until file $1 has a line matching regex $2 (up to $3 s); prints the match.
wait_for_line() {
  local file=$1 regex=$2 timeout=$3 pid=${4:-}
  for _ in $(seq $((timeout * 10))); do
    if grep -Eo "$regex" "$file" 2>/dev/null | head -1 | grep .; then return 0; fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

# --- 1. Setup and build ---------------------------------------------------
log "installing packages if needed (scripts/setup.sh)"
"$root/scripts/setup.sh"
log "configuring $build"
cmake -S "$root" -B "$build" >"$work/cmake-configure.log" 2>&1 ||
  { cat "$work/cmake-configure.log" >&2; die "cmake configure failed"; }
targets=(paymentd payments-loadgen payments-verify payments-topics kafka-mock)
have_devbroker=0
# (Captured first: with pipefail, grep -q closing the pipe early would fail it.)
target_list=$(cmake --build "$build" --target help 2>/dev/null || true)
if grep -Eq '(^|[ .:])devbroker($|[ :])' <<<"$target_list"; then
  have_devbroker=1
  targets+=(devbroker)
fi
log "building ${targets[*]}"
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >"$work/cmake-build.log" 2>&1 ||
  { tail -50 "$work/cmake-build.log" >&2; die "build failed (log: $work/cmake-build.log)"; }
bin_paymentd=$build/src/paymentd/paymentd
bin_loadgen=$build/src/tools/payments-loadgen
bin_verify=$build/src/tools/payments-verify
bin_topics=$build/src/tools/payments-topics
bin_mock=$build/src/tools/kafka-mock
bin_devbroker=$build/src/devbroker/devbroker

# --- 2. Broker and topics -------------------------------------------------
if [[ -z "$broker_kind" ]]; then
  if ((have_devbroker)); then broker_kind=devbroker; else broker_kind=mock; fi
fi
case "$broker_kind" in
  devbroker)
    ((have_devbroker)) || die "DEMO_BROKER=devbroker but the devbroker target does not exist"
    "$bin_devbroker" --listen 127.0.0.1:0 --default-partitions "$partitions" \
      >"$work/broker.out" 2>"$work/broker.log" &
    broker_pid=$!
    bootstrap=$(wait_for_line "$work/broker.out" 'devbroker listening on [^ ]+' 30 "$broker_pid" |
      sed 's/devbroker listening on //') || die "devbroker did not start (log: $work/broker.log)"
    # paymentd needs its source topic to exist; it creates its changelog topics.
    "$bin_topics" --bootstrap-servers "$bootstrap" --partitions "$partitions" \
      --topic payments.requests --topic payments.confirmations --topic payments.requests.dlq \
      >"$work/topics.out" || die "cannot create the topics"
    ;;
  mock)
    # The mock has no CreateTopics: create every topic, changelogs included.
    "$bin_mock" --brokers 3 \
      --topic "payments.requests:$partitions" --topic "payments.confirmations:$partitions" \
      --topic "payments.requests.dlq:$partitions" \
      --topic "$app_id-idempotency-changelog:$partitions" \
      --topic "$app_id-payments-changelog:$partitions" \
      --topic "$app_id-customers-changelog:$partitions" \
      >"$work/broker.out" 2>"$work/broker.log" &
    broker_pid=$!
    bootstrap=$(wait_for_line "$work/broker.out" 'bootstrap.servers=[^ ]+' 60 "$broker_pid" |
      sed 's/bootstrap.servers=//') || die "kafka-mock did not start (log: $work/broker.log)"
    ;;
  *) die "DEMO_BROKER must be devbroker or mock, not '$broker_kind'" ;;
esac
log "broker: $broker_kind at $bootstrap"

# --- 3. paymentd ----------------------------------------------------------
cat >"$work/paymentd.properties" <<EOF
# Written by scripts/demo.sh
application.id=$app_id
bootstrap.servers=$bootstrap
state.dir=$work/state
admin.listen=127.0.0.1:0
EOF
"$bin_paymentd" --config "$work/paymentd.properties" >"$work/paymentd.out" 2>"$work/paymentd.log" &
paymentd_pid=$!
admin=$(wait_for_line "$work/paymentd.log" 'admin listening on [0-9.]+:[0-9]+' 60 "$paymentd_pid" |
  sed 's/.*://') || { tail -20 "$work/paymentd.log" >&2; die "paymentd did not start"; }
log "paymentd admin on 127.0.0.1:$admin; waiting for /readyz"
for i in $(seq 1200); do
  http_get "$admin" /readyz >/dev/null 2>&1 && break
  kill -0 "$paymentd_pid" 2>/dev/null || { tail -20 "$work/paymentd.log" >&2; die "paymentd exited"; }
  ((i == 1200)) && die "paymentd not ready after 120 s"
  sleep 0.1
done
log "paymentd is ready"

# --- 4. Load --------------------------------------------------------------
log "sending $count requests from $customers customers (rate: ${rate}/s, 0 = unthrottled)"
loadgen_status=0
"$bin_loadgen" --bootstrap-servers "$bootstrap" --count "$count" --customers "$customers" \
  --rate "$rate" --partitions "$partitions" --seed 1 \
  --duplicates 0.05 --key-reuse 0.03 --invalid 0.05 --refunds 0.08 --bursts 0.05 \
  --await-confirmations --await-timeout-ms 300000 \
  >"$work/loadgen.out" 2>"$work/loadgen.log" || loadgen_status=$?
cat "$work/loadgen.out"
((loadgen_status == 0)) || log "payments-loadgen exited with $loadgen_status (log: $work/loadgen.log)"

# --- 5. Caught up: every request confirmed (loadgen) and consumer lag 0 ----
lag=""
for _ in $(seq 600); do
  lag=$(http_get "$admin" /metrics 2>/dev/null |
    awk '/^streams_consumer_lag\{/ { sum += $NF; n++ } END { if (n) printf "%d", sum }') || true
  [[ "$lag" == 0 ]] && break
  sleep 0.1
done
log "paymentd consumer lag: ${lag:-unknown}"

# --- 6. Verify ------------------------------------------------------------
verify_status=0
"$bin_verify" --config "$work/paymentd.properties" --timeout-ms 120000 \
  >"$work/verify.out" 2>"$work/verify.log" || verify_status=$?
cat "$work/verify.out"
[[ -s "$work/verify.log" ]] && cat "$work/verify.log" >&2

# --- 7. Figures -----------------------------------------------------------
e2e=$(grep '^e2e ' "$work/loadgen.out" || true)
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$e2e"; }
if [[ -n "$e2e" ]]; then
  echo
  echo "throughput: $(field throughput_per_s) requests/s end to end ($(field confirmed) requests decided in $(field elapsed_s) s; broker $broker_kind)"
  echo "end-to-end latency: p50 $(field p50_ms) ms, p99 $(field p99_ms) ms, max $(field max_ms) ms (send -> confirmation readable, read_committed; rate ${rate}/s)"
fi

if ((verify_status == 0 && loadgen_status != 0)); then exit "$loadgen_status"; fi
exit "$verify_status"
