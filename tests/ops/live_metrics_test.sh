#!/usr/bin/env bash
# Live /metrics of paymentd and payments-sink for scripts/check-ops.sh: starts
# devbroker, a private PostgreSQL, the CRM receiver, paymentd and payments-sink
# (as scripts/demo.sh does), sends requests that produce approvals, declines,
# replays, CDC deliveries and dead webhook events, restarts paymentd on an
# empty state directory so its stores are restored, sends more requests and an
# undecodable record (a dead letter), then scrapes both daemons
# and runs scripts/check-ops.sh --scrape ... --bin-dir BUILD_DIR.
#
#   tests/ops/live_metrics_test.sh BUILD_DIR      (OPS_LIVE_KEEP=1 keeps the scrapes and logs)
#
# Exit status: that of check-ops.sh; 1 when the pipeline does not come up.
set -euo pipefail

build=$(cd "${1:?usage: live_metrics_test.sh BUILD_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$build/src
work=$(mktemp -d "${TMPDIR:-/tmp}/ops-live.XXXXXX")
chmod 711 "$work"  # PostgreSQL runs as postgres.
declare -A pids=()
pg_started=0

log() { echo "live-metrics: $*" >&2; }
die() { log "$*"; exit 1; }
# stop_pid, http_get, metric_value, wait_for_line, free_port
source "$root/scripts/lib/processes.sh"

cleanup() {
  local status=$?
  for name in loadgen sink paymentd receiver broker; do stop_pid "$name"; done
  ((pg_started)) && "$root/scripts/pg-test-server.sh" stop "$work/pg" || true
  if ((status != 0)); then
    for f in "$work"/*.log; do
      [[ -f "$f" ]] && { echo "--- $f (last 30 lines)" >&2; tail -30 "$f" >&2; }
    done
  fi
  if [[ "${OPS_LIVE_KEEP:-0}" == 1 ]]; then log "kept $work"; else rm -rf "$work"; fi
  exit "$status"
}
trap cleanup EXIT

wait_until() {  # timeout_s description command...
  local timeout=$1 what=$2
  shift 2
  for _ in $(seq $((timeout * 5))); do
    "$@" && return 0
    sleep 0.2
  done
  die "timed out after ${timeout} s waiting for $what"
}
# --- Broker and topics --------------------------------------------------------
"$bin/devbroker/devbroker" --listen 127.0.0.1:0 --default-partitions 2 \
  >"$work/broker.out" 2>"$work/broker.log" &
pids[broker]=$!
bootstrap=$(wait_for_line "$work/broker.out" 'devbroker listening on [^ ]+' 30 "${pids[broker]}" |
  sed 's/devbroker listening on //') || die "devbroker did not start"
"$bin/tools/payments-topics" --bootstrap-servers "$bootstrap" --partitions 2 \
  --topic payments.requests --topic payments.confirmations --topic payments.requests.dlq \
  --topic payments.cdc --topic payments.confirmations.dlq >"$work/topics.log" 2>&1 ||
  die "cannot create the topics"

# --- PostgreSQL and the CRM receiver -------------------------------------------
# free_port can race with another test binding the same port: three tries.
pg_started=1
for attempt in 1 2 3; do
  pg_port=$(free_port)
  rm -rf "$work/pg"
  db_server=$("$root/scripts/pg-test-server.sh" start "$work/pg" "$pg_port" |
    sed 's/^pg-test-server: //') && [[ -n "$db_server" ]] && break
  ((attempt < 3)) || die "PostgreSQL did not start"
  log "PostgreSQL did not start on port $pg_port (attempt $attempt), retrying"
done
psql -X -q -d "$db_server" -c "CREATE DATABASE payments" >/dev/null
db_url=${db_server%/*}/payments

secret="whsec_$(head -c 32 /dev/urandom | base64 -w0)"
(umask 077 && printf '%s\n' "$secret" >"$work/crm.secret")
# A fifth of the first attempts fail; with one attempt allowed those events die.
"$bin/tools/payments-crm-receiver" --listen 127.0.0.1:0 --secret-file "$work/crm.secret" \
  --fail-percent 20 >"$work/receiver.out" 2>"$work/receiver.log" &
pids[receiver]=$!
receiver_url=$(wait_for_line "$work/receiver.log" 'listening on [0-9.]+:[0-9]+/hook' 30 \
  "${pids[receiver]}") || die "payments-crm-receiver did not start"
receiver_url="http://${receiver_url#listening on }"

# --- paymentd -------------------------------------------------------------------
start_paymentd() {  # state directory
  "$bin/paymentd/paymentd" --set bootstrap.servers="$bootstrap" --set state.dir="$1" \
    --set instance.id=ops-live --set admin.listen=127.0.0.1:0 \
    >"$work/paymentd.out" 2>"$work/paymentd.log" &
  pids[paymentd]=$!
  paymentd_port=$(wait_for_line "$work/paymentd.log" 'admin listening on [0-9.]+:[0-9]+' 60 \
    "${pids[paymentd]}" | sed 's/.*://') || die "paymentd did not start"
  wait_until 120 "paymentd ready" http_get "$paymentd_port" /readyz
}
start_paymentd "$work/state-1"

# --- payments-sink --------------------------------------------------------------
(umask 077 && cat >"$work/sink.properties" <<EOF
bootstrap.servers=$bootstrap
sink.database.url=$db_url
cdc.kafka.topic=payments.cdc
cdc.webhook.url=$receiver_url
cdc.webhook.secret=$secret
cdc.webhook.max.attempts=1
admin.listen=127.0.0.1:0
EOF
)
"$bin/sink/payments-sink" --config "$work/sink.properties" >"$work/sink.out" 2>"$work/sink.log" &
pids[sink]=$!
sink_port=$(wait_for_line "$work/sink.log" 'admin listening on [0-9.]+:[0-9]+' 60 "${pids[sink]}" |
  sed 's/.*://') || die "payments-sink did not start"
wait_until 120 "payments-sink ready" http_get "$sink_port" /readyz

# --- Load -----------------------------------------------------------------------
count=400
"$bin/tools/payments-loadgen" --bootstrap-servers "$bootstrap" --count "$count" --customers 40 \
  --partitions 2 --seed 7 --duplicates 0.1 --key-reuse 0.05 --invalid 0.1 --refunds 0.1 \
  --bursts 0.1 --quiet >"$work/loadgen.out" 2>"$work/loadgen.log" ||
  die "payments-loadgen failed"

decided() { (($(metric_value "$paymentd_port" payments_requests_total 0) >= count)); }
wait_until 120 "paymentd to decide $count requests" decided
sink_done() {
  local lag backlog dead
  lag=$(metric_value "$sink_port" payments_sink_consumer_lag 1)
  backlog=$(metric_value "$sink_port" payments_sink_outbox_backlog 1)
  dead=$(metric_value "$sink_port" payments_sink_cdc_dead_events_total 0 'target="webhook"')
  [[ "$lag" == 0 && "$backlog" == 0 && "$dead" -gt 0 ]]
}
wait_until 180 "payments-sink to write and deliver everything" sink_done

# --- Restore: paymentd again on an empty state directory -------------------------
stop_pid paymentd
start_paymentd "$work/state-2"
restored() { (($(metric_value "$paymentd_port" streams_restore_records_total 0) > 0)); }
wait_until 60 "paymentd to restore its stores" restored
# New input for the restarted process's counters, and one undecodable record
# (a dead letter).
"$bin/tools/payments-loadgen" --bootstrap-servers "$bootstrap" --count 50 --customers 40 \
  --partitions 2 --seed 8 --invalid 0.2 --quiet >>"$work/loadgen.out" 2>>"$work/loadgen.log" ||
  die "payments-loadgen failed"
printf 'not a PaymentRequest' | kcat -P -b "$bootstrap" -t payments.requests -k ops-live -p 0 ||
  die "kcat cannot produce"
decided_again() { (($(metric_value "$paymentd_port" payments_requests_total 0) >= 50)); }
wait_until 120 "the restarted paymentd to decide 50 requests" decided_again
dead_lettered() { (($(metric_value "$paymentd_port" streams_dead_letter_records_total 0) > 0)); }
wait_until 60 "paymentd to dead-letter the undecodable record" dead_lettered
# The state store gauges are exported every 5 s.
wait_until 30 "state store metrics" bash -c \
  "curl -sf http://127.0.0.1:$paymentd_port/metrics | grep -q '^streams_state_store_bytes{'"

http_get "$paymentd_port" /metrics >"$work/paymentd.prom"
http_get "$sink_port" /metrics >"$work/payments-sink.prom"
log "scraped paymentd ($(wc -l <"$work/paymentd.prom") lines) and payments-sink" \
  "($(wc -l <"$work/payments-sink.prom") lines)"

"$root/scripts/check-ops.sh" --scrape "$work/paymentd.prom" --scrape "$work/payments-sink.prom" \
  --bin-dir "$build"
