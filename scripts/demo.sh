#!/usr/bin/env bash
# The full local pipeline, end to end, on one machine:
#
#   payments-loadgen -> payments.requests -> paymentd (2 instances, exactly once)
#     -> payments.confirmations -> payments-sink -> PostgreSQL (payments,
#        merchant_balances, outbox) -> CDC: payments.cdc and a CRM webhook
#        (payments-crm-receiver, which verifies every signature)
#
# It builds what it needs, starts a broker, a throwaway PostgreSQL, the CRM
# receiver, two paymentd instances and payments-sink, sends a realistic mix of
# requests, waits until every one is decided, written and delivered, checks
# everything with payments-verify (paymentd's invariants, the database against
# the confirmations, the CDC topic), and prints a summary. Everything is
# stopped on exit, also on Ctrl-C. Exit status: 0 when no violation was found.
#
#   scripts/demo.sh
#
# Environment:
#   DEMO_COUNT=20000        requests to send
#   DEMO_CUSTOMERS=500      distinct customers
#   DEMO_RATE=0             requests per second (0 = as fast as possible)
#   DEMO_INSTANCES=2        paymentd instances (one consumer group)
#   DEMO_BROKER=devbroker|kafka|mock
#                           devbroker (default): the project's embedded broker,
#                           up in well under a second; kafka: Apache Kafka from
#                           Maven Central (scripts/kafka/README.md); mock:
#                           librdkafka's mock cluster (no real transactions)
#   DEMO_WEBHOOK_FAIL_PERCENT=5  share of first webhook attempts the receiver
#                           answers 503, to show the sink's retries
#   DEMO_KEEP=1             keep the work directory (logs, outputs) afterwards
#   BUILD_DIR=build         CMake build directory
#
# Latency: loadgen measures it per request, from handing the request to its
# producer to reading its confirmation with a read_committed consumer. With
# DEMO_RATE=0 the whole load is sent at once, so the p99 includes the time
# requests wait in the backlog; set DEMO_RATE below the throughput to see the
# latency of an unloaded pipeline.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
count=${DEMO_COUNT:-20000}
customers=${DEMO_CUSTOMERS:-500}
rate=${DEMO_RATE:-0}
instances=${DEMO_INSTANCES:-2}
broker_kind=${DEMO_BROKER:-devbroker}
fail_percent=${DEMO_WEBHOOK_FAIL_PERCENT:-5}
partitions=4
app_id=paymentd
sink_id=payments-sink

log() { printf '[demo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

[[ "$count" =~ ^[0-9]+$ && "$count" -gt 0 ]] || die "DEMO_COUNT must be a positive integer, not '$count'"
[[ "$instances" =~ ^[1-9][0-9]*$ ]] || die "DEMO_INSTANCES must be a positive integer, not '$instances'"
case "$broker_kind" in devbroker | kafka | mock) ;; *) die "DEMO_BROKER must be devbroker, kafka or mock, not '$broker_kind'" ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/payments-demo.XXXXXX")
chmod 711 "$work"  # PostgreSQL runs as postgres below; the secret files are 600.
declare -A pids=()  # name -> pid of what we started
# stop_pid, http_get, metric_value, wait_for_line, free_port
source "$root/scripts/lib/processes.sh"
pg_started=0
kafka_started=0

cleanup() {
  local status=$?
  trap - INT TERM
  stop_pid loadgen
  stop_pid sink
  for i in $(seq "$instances"); do stop_pid "paymentd-$i"; done
  stop_pid receiver
  stop_pid broker
  ((kafka_started)) && "$root/scripts/kafka-test-server.sh" stop "$work/kafka" >/dev/null 2>&1 || true
  ((pg_started)) && "$root/scripts/pg-test-server.sh" stop "$work/pg" || true
  if [[ "${DEMO_KEEP:-0}" == 1 || $status -ne 0 ]]; then
    log "logs and outputs kept in $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'log "interrupted, stopping everything"; exit 130' INT TERM

# Waits until GET $1 $2 answers 2xx (up to $3 s) while process $4 runs.
wait_ready() {
  local port=$1 path=$2 timeout=$3 name=$4
  for _ in $(seq $((timeout * 10))); do
    http_get "$port" "$path" >/dev/null 2>&1 && return 0
    kill -0 "${pids[$name]}" 2>/dev/null || { tail -20 "$work/$name.log" >&2; die "$name exited"; }
    sleep 0.1
  done
  die "$name not ready after $timeout s (log: $work/$name.log)"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

psql_value() { psql -X -q -t -A -d "$db_url" -c "$1" 2>/dev/null || true; }

# --- 1. Setup and build ---------------------------------------------------
log "1/8 installing packages if needed (scripts/setup.sh)"
"$root/scripts/setup.sh"
log "configuring and building in $build"
cmake -S "$root" -B "$build" >"$work/cmake-configure.log" 2>&1 ||
  { cat "$work/cmake-configure.log" >&2; die "cmake configure failed"; }
targets=(paymentd payments-sink payments-loadgen payments-verify payments-topics
  payments-crm-receiver kafka-mock devbroker)
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >"$work/cmake-build.log" 2>&1 ||
  { tail -50 "$work/cmake-build.log" >&2; die "build failed (log: $work/cmake-build.log)"; }
bin=$build/src

# --- 2. Broker and topics -------------------------------------------------
log "2/8 starting the broker ($broker_kind)"
topics=(payments.requests payments.confirmations payments.requests.dlq payments.cdc
  payments.confirmations.dlq)
broker_started_at=$(now_ms)
case "$broker_kind" in
  devbroker)
    start_devbroker "$bin/devbroker/devbroker" "$work" "$partitions"
    ;;
  kafka)
    [[ -x "$root/scripts/kafka-test-server.sh" ]] || die "scripts/kafka-test-server.sh is missing"
    kafka_started=1
    bootstrap=$("$root/scripts/kafka-test-server.sh" start "$work/kafka" |
      sed -n 's/^bootstrap.servers=//p') || die "Apache Kafka did not start (logs: $work/kafka)"
    [[ -n "$bootstrap" ]] || die "Apache Kafka did not print its address (logs: $work/kafka)"
    ;;
  mock)
    # The mock has no CreateTopics: every topic, changelogs included, up front.
    args=()
    for t in "${topics[@]}" "$app_id-idempotency-changelog" "$app_id-payments-changelog" \
      "$app_id-customers-changelog"; do args+=(--topic "$t:$partitions"); done
    "$bin/tools/kafka-mock" --brokers 3 "${args[@]}" >"$work/broker.out" 2>"$work/broker.log" &
    pids[broker]=$!
    bootstrap=$(wait_for_line "$work/broker.out" 'bootstrap.servers=[^ ]+' 60 "${pids[broker]}" |
      sed 's/bootstrap.servers=//') || die "kafka-mock did not start (log: $work/broker.log)"
    ;;
esac
broker_start_ms=$(($(now_ms) - broker_started_at))
if [[ "$broker_kind" != mock ]]; then
  # paymentd creates its changelogs; the sink's and the source topics are made here.
  topic_args=()
  for t in "${topics[@]}"; do topic_args+=(--topic "$t"); done
  "$bin/tools/payments-topics" --bootstrap-servers "$bootstrap" --partitions "$partitions" \
    "${topic_args[@]}" >"$work/topics.out" || die "cannot create the topics"
fi
log "broker $broker_kind at $bootstrap (up in $broker_start_ms ms)"

# --- 3. PostgreSQL and the CRM receiver -----------------------------------
log "3/8 starting a throwaway PostgreSQL and the CRM webhook receiver"
pg_port=$(free_port)
pg_started=1
db_server=$("$root/scripts/pg-test-server.sh" start "$work/pg" "$pg_port" | sed 's/^pg-test-server: //') ||
  die "PostgreSQL did not start (log: $work/pg/server.log)"
psql -X -q -d "$db_server" -c "CREATE DATABASE payments" >/dev/null || die "cannot create the database"
db_url=${db_server%/*}/payments

secret="whsec_$(head -c 32 /dev/urandom | base64 -w0)"
(umask 077 && printf '%s\n' "$secret" >"$work/crm.secret")
"$bin/tools/payments-crm-receiver" --listen 127.0.0.1:0 --secret-file "$work/crm.secret" \
  --fail-percent "$fail_percent" >"$work/receiver.out" 2>"$work/receiver.log" &
pids[receiver]=$!
receiver_url=$(wait_for_line "$work/receiver.log" 'listening on [0-9.]+:[0-9]+/hook' 30 "${pids[receiver]}") ||
  die "payments-crm-receiver did not start (log: $work/receiver.log)"
receiver_url="http://${receiver_url#listening on }"
receiver_port=$(sed 's|.*:\([0-9]*\)/hook|\1|' <<<"$receiver_url")
log "database $db_url; CRM webhook $receiver_url (answers 503 to ${fail_percent}% of first attempts)"

# --- 4. paymentd instances ------------------------------------------------
log "4/8 starting $instances paymentd instance(s)"
paymentd_ports=()
for i in $(seq "$instances"); do
  cat >"$work/paymentd-$i.properties" <<EOF
# Written by scripts/demo.sh
application.id=$app_id
instance.id=demo-paymentd-$i
bootstrap.servers=$bootstrap
state.dir=$work/state-$i
admin.listen=127.0.0.1:0
EOF
  "$bin/paymentd/paymentd" --config "$work/paymentd-$i.properties" \
    >"$work/paymentd-$i.out" 2>"$work/paymentd-$i.log" &
  pids[paymentd-$i]=$!
done
for i in $(seq "$instances"); do
  port=$(wait_for_line "$work/paymentd-$i.log" 'admin listening on [0-9.]+:[0-9]+' 60 "${pids[paymentd-$i]}" |
    sed 's/.*://') || { tail -20 "$work/paymentd-$i.log" >&2; die "paymentd-$i did not start"; }
  paymentd_ports+=("$port")
done
for i in $(seq "$instances"); do wait_ready "${paymentd_ports[$((i - 1))]}" /readyz 120 "paymentd-$i"; done
log "paymentd ready (admin ports ${paymentd_ports[*]})"

# --- 5. payments-sink -----------------------------------------------------
log "5/8 starting payments-sink (migrations, then consuming)"
(umask 077 && touch "$work/sink.properties")
cat >"$work/sink.properties" <<EOF
# Written by scripts/demo.sh
application.id=$sink_id
bootstrap.servers=$bootstrap
sink.database.url=$db_url
cdc.kafka.topic=payments.cdc
cdc.webhook.url=$receiver_url
cdc.webhook.secret=$secret
cdc.webhook.retry.initial.ms=200
admin.listen=127.0.0.1:0
EOF
"$bin/sink/payments-sink" --config "$work/sink.properties" >"$work/sink.out" 2>"$work/sink.log" &
pids[sink]=$!
sink_port=$(wait_for_line "$work/sink.log" 'admin listening on [0-9.]+:[0-9]+' 60 "${pids[sink]}" |
  sed 's/.*://') || { tail -20 "$work/sink.log" >&2; die "payments-sink did not start"; }
wait_ready "$sink_port" /readyz 120 sink
log "payments-sink ready (admin port $sink_port)"

# --- 6. Load --------------------------------------------------------------
log "6/8 sending $count requests from $customers customers (rate: ${rate}/s, 0 = unthrottled)"
"$bin/tools/payments-loadgen" --bootstrap-servers "$bootstrap" --count "$count" \
  --customers "$customers" --rate "$rate" --partitions "$partitions" --seed 1 \
  --duplicates 0.05 --key-reuse 0.03 --invalid 0.05 --refunds 0.08 --bursts 0.05 \
  --await-confirmations --await-timeout-ms 300000 \
  >"$work/loadgen.out" 2>"$work/loadgen.log" &
pids[loadgen]=$!
progress() {
  local decided=0 rows cdc
  for port in "${paymentd_ports[@]}"; do
    decided=$((decided + $(metric_value "$port" payments_requests_total 0)))
  done
  rows=$(psql_value "SELECT count(*) FROM payments")
  cdc=$(http_get "$receiver_port" /stats 2>/dev/null | sed -n 's/.*"accepted":\([0-9]*\).*/\1/p' || true)
  log "progress: decided ${decided:-0}/$count, rows in the database ${rows:-0}, CRM events ${cdc:-0}"
}
while kill -0 "${pids[loadgen]}" 2>/dev/null; do
  sleep 2
  progress
done
loadgen_status=0
wait "${pids[loadgen]}" || loadgen_status=$?
unset 'pids[loadgen]'
((loadgen_status == 0)) || log "payments-loadgen exited with $loadgen_status (log: $work/loadgen.log)"

# --- 7. Caught up: lag 0 everywhere, outbox drained -----------------------
log "7/8 waiting until paymentd and the sink have caught up and the outbox is drained"
# The outbox gauge is refreshed at most once a second, after a relay round, so
# right after a burst it can still say 0: caught up means every figure stays 0,
# and the CRM receiver's count stays put, for 3 s (6 checks) in a row.
caught_up=0 quiet=0 accepted_before=-1
for i in $(seq 600); do
  lag=0
  for port in "${paymentd_ports[@]}"; do lag=$((lag + $(metric_value "$port" streams_consumer_lag 1))); done
  sink_lag=$(metric_value "$sink_port" payments_sink_consumer_lag 1)
  backlog=$(metric_value "$sink_port" payments_sink_outbox_backlog 1)
  accepted=$(http_get "$receiver_port" /stats 2>/dev/null | sed -n 's/.*"accepted":\([0-9]*\).*/\1/p')
  if [[ "$lag" == 0 && "$sink_lag" == 0 && "$backlog" == 0 && "${accepted:-x}" == "$accepted_before" ]]; then
    quiet=$((quiet + 1))
  else
    quiet=0
  fi
  accepted_before=${accepted:-x}
  if ((quiet >= 6)); then caught_up=1; break; fi
  ((i % 20 == 0)) && { progress; log "paymentd lag $lag, sink lag ${sink_lag:-?}, outbox backlog ${backlog:-?}"; }
  sleep 0.5
done
((caught_up)) || log "WARNING: not caught up after 300 s (paymentd lag $lag, sink lag ${sink_lag:-?}, outbox ${backlog:-?})"

# --- 8. Verify ------------------------------------------------------------
log "8/8 verifying: paymentd's invariants, the database and the CDC topic against the confirmations"
verify_status=0
"$bin/tools/payments-verify" --config "$work/paymentd-1.properties" --timeout-ms 120000 \
  --database-url "$db_url" --cdc-topic payments.cdc \
  >"$work/verify.out" 2>"$work/verify.log" || verify_status=$?
[[ -s "$work/verify.log" ]] && cat "$work/verify.log" >&2
stats=$(http_get "$receiver_port" /stats 2>/dev/null || echo '{}')
json_field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" <<<"$stats"; }
expected_changes=$(sed -n 's/^sink expected: .* \([0-9]*\) change events$/\1/p' "$work/verify.out")
webhook_accepted=$(json_field accepted)
webhook_status=0
if [[ "$webhook_accepted" != "$expected_changes" ]]; then
  webhook_status=1
  log "VIOLATION: the CRM receiver accepted ${webhook_accepted:-?} distinct events, expected ${expected_changes:-?}"
fi
for field in rejected_signature rejected_timestamp malformed out_of_order; do
  if [[ "$(json_field "$field")" != 0 ]]; then
    webhook_status=1
    log "VIOLATION: the CRM receiver counted $field=$(json_field "$field")"
  fi
done
dead=$(metric_value "$sink_port" payments_sink_cdc_dead_events_total 0)
[[ "${dead:-0}" == 0 ]] || { webhook_status=1; log "VIOLATION: $dead CDC events dead"; }

# --- Summary --------------------------------------------------------------
e2e=$(grep '^e2e ' "$work/loadgen.out" || true)
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$e2e"; }
vline=$(grep '^requests=' "$work/verify.out" || true)
vfield() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$vline"; }
echo
echo "=== payments pipeline: $count requests, $customers customers, $instances paymentd instance(s), broker $broker_kind ==="
echo "decisions:     $(vfield approved) approved, $(vfield declined) declined, $(vfield replays) duplicates answered as replays, $(vfield key_reused) idempotency keys reused"
echo "declined by code (non-replay):"
sed -n '/^declined by code/,/^[a-z]/{/^  /p}' "$work/verify.out"
grep -E '^(approved refunds|database|cdc topic|sink expected)' "$work/verify.out" | sed 's/^/  /'
echo "CRM webhook:   $webhook_accepted events accepted (signatures verified), $(json_field duplicates) redeliveries deduped, $(json_field failed_on_purpose) answered 503 on purpose and retried by the sink, $(json_field out_of_order) out of order"
if [[ -n "$e2e" ]]; then
  echo "throughput:    $(field throughput_per_s) requests/s end to end ($(field confirmed) decided in $(field elapsed_s) s)"
  echo "latency:       p50 $(field p50_ms) ms, p99 $(field p99_ms) ms, max $(field max_ms) ms (send -> confirmation readable, read_committed; rate ${rate}/s)"
fi
echo "paymentd invariants: $(grep -E '^RESULT' "$work/verify.out" || echo 'not checked'); $(grep -E '^sink violations: 0$' "$work/verify.out" || echo 'sink: VIOLATIONS')"
if ((verify_status != 0)); then
  echo "--- payments-verify's report ---"
  cat "$work/verify.out"
fi

status=$verify_status
((status == 0 && webhook_status != 0)) && status=1
((status == 0 && loadgen_status != 0)) && status=$loadgen_status
if ((status == 0)); then echo "RESULT: OK, no violation"; else echo "RESULT: FAILED (exit $status)"; fi
exit "$status"
