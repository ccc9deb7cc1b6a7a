#!/usr/bin/env bash
# Failover benchmark (issue 11): with default settings (static membership, the
# default 45 s session timeout, eager rebalancing; BENCH_PROTOCOL sets
# rebalance.protocol) plus num.standby.replicas=$BENCH_STANDBY (default 1), two
# paymentd instances on 4 partitions whose stores first get BENCH_KEYS
# (default 1,000,000) distinct requests (idempotency keys), then under a
# steady load of payments-loadgen:
#
#   (a) restart: SIGKILL one instance and restart it at once on the same state
#       directory; time from the kill until the restarted instance has
#       committed output again (streams_records_processed_total counts inputs
#       of committed transactions, whose confirmations are then readable);
#   (b) loss: SIGKILL it and never restart it; time from the kill until the
#       survivor holds all 4 tasks, is ready, and has committed output of them;
#   (c) join: a third instance joins; the longest stall of a kept instance's
#       committed output (sampled every 50 ms) while the group rebalances,
#       beside the same figure over 10 quiet seconds before.
#
# Each figure is printed as a line and written to $BENCH_OUT (JSON). Usage:
#   bench/failover.sh [build-dir]    BENCH_BROKER=devbroker|kafka  BENCH_RATE=1000
#                                    BENCH_KEYS=1000000  BENCH_STANDBY=1
# Needs the build (paymentd, devbroker, payments-loadgen, payments-topics).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
broker_kind=${BENCH_BROKER:-devbroker}
rate=${BENCH_RATE:-1000}
keys=${BENCH_KEYS:-1000000}
standby=${BENCH_STANDBY:-1}
protocol=${BENCH_PROTOCOL:-eager}
out=${BENCH_OUT:-$root/bench/results/failover-$broker_kind.json}
work=$(mktemp -d /tmp/paymentd-failover.XXXXXX)
bin=$build/src
declare -A pids
log() { printf '[failover %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=../scripts/lib/processes.sh
source "$root/scripts/lib/processes.sh"
now_ms() { date +%s%3N; }
kafka_started=0
cleanup() {
  for name in "${!pids[@]}"; do kill -KILL "${pids[$name]}" 2>/dev/null || true; done
  if [[ $kafka_started == 1 ]]; then "$root/scripts/kafka-test-server.sh" stop "$work/kafka" >/dev/null 2>&1 || true; fi
  [[ -n "${BENCH_KEEP:-}" ]] || rm -rf "$work"
}
trap cleanup EXIT

for t in paymentd/paymentd devbroker/devbroker tools/payments-loadgen tools/payments-topics; do
  [[ -x "$bin/$t" ]] || die "$bin/$t is missing: build first (cmake --build $build)"
done

case "$broker_kind" in
  devbroker)
    start_devbroker "$bin/devbroker/devbroker" "$work" 4
    ;;
  kafka)
    kafka_started=1
    bootstrap=$("$root/scripts/kafka-test-server.sh" start "$work/kafka" | sed -n 's/^bootstrap.servers=//p') ||
      die "Apache Kafka did not start"
    ;;
  *) die "BENCH_BROKER must be devbroker or kafka" ;;
esac
"$bin/tools/payments-topics" --bootstrap-servers "$bootstrap" --partitions 4 \
  --topic payments.requests --topic payments.confirmations --topic payments.requests.dlq >/dev/null ||
  die "cannot create the topics"

# start_instance NAME: starts paymentd NAME on $work/state-NAME; sets port[NAME].
declare -A port
start_instance() {
  local name=$1
  "$bin/paymentd/paymentd" --set "bootstrap.servers=$bootstrap" --set "state.dir=$work/state-$name" \
    --set admin.listen=127.0.0.1:0 --set "rebalance.protocol=$protocol" \
    --set "num.standby.replicas=$standby" \
    >>"$work/$name.out" 2>"$work/$name.log" &
  pids[$name]=$!
  port[$name]=$(wait_for_line "$work/$name.log" 'admin listening on [0-9.]+:[0-9]+' 60 "${pids[$name]}" |
    sed 's/.*://') || die "$name did not start"
}
processed() { metric_value "${port[$1]}" streams_records_processed_total 0; }
# wait_until DEADLINE_S COMMAND...: polls COMMAND every 20 ms.
wait_until() {
  local deadline=$(($(now_ms) + $1 * 1000))
  shift
  until "$@"; do
    (($(now_ms) < deadline)) || return 1
    sleep 0.02
  done
}
ready_with() { [[ "$(metric_value "${port[$1]}" streams_tasks_assigned -1)" == "$2" ]] && http_get "${port[$1]}" /readyz >/dev/null 2>&1; }
grew() { (($(processed "$1") > $2)); }

start_instance a
start_instance b
wait_until 120 ready_with a 2 || die "a did not get 2 tasks"
wait_until 120 ready_with b 2 || die "b did not get 2 tasks"
total() { echo $(($(processed a) + $(processed b))); }
if ((keys > 0)); then
  log "preloading $keys distinct requests"
  t_load=$(now_ms)
  "$bin/tools/payments-loadgen" --bootstrap-servers "$bootstrap" --count "$keys" --rate 0 \
    --customers 100000 --duplicates 0 --key-reuse 0 --invalid 0 --refunds 0 --bursts 0 \
    --seed 7 --quiet >"$work/preload.out" 2>"$work/preload.err" || die "the preload failed"
  at_least() { (($(total) >= $1)); }
  wait_until 1800 at_least "$keys" || die "the preload was not processed"
  log "preload decided in $(($(now_ms) - t_load)) ms"
  # The standby copies catch up with the preload's changelog records.
  standby_applied() { metric_value "${port[$1]}" streams_standby_records_applied_total 0; }
  if ((standby > 0)); then
    for name in a b; do
      prev=-1
      until [[ "$(standby_applied $name)" == "$prev" ]]; do prev=$(standby_applied $name); sleep 2; done
      log "$name's standby copies applied $prev changelog records"
    done
  fi
fi
duration=$((${BENCH_SECONDS:-150}))
"$bin/tools/payments-loadgen" --bootstrap-servers "$bootstrap" --count $((rate * duration)) \
  --rate "$rate" --customers 1000 --duplicates 0.05 --refunds 0.02 --seed 11 --quiet \
  >"$work/loadgen.out" 2>"$work/loadgen.err" &
pids[loadgen]=$!
sleep 5

# (a) Kill and restart at once.
log "(a) SIGKILL a, restart at once"
kill -KILL "${pids[a]}"
t0=$(now_ms)
wait "${pids[a]}" 2>/dev/null || true
start_instance a
wait_until 120 grew a 0 || die "(a) the restarted instance produced nothing"
restart_ms=$(($(now_ms) - t0))
log "(a) committed output again after $restart_ms ms"
sleep 5

# longest_stall NAME SECONDS: the longest time a's committed-output counter
# did not move, sampled every 50 ms for SECONDS (commits every 100 ms make
# the floor of this figure about 150-250 ms).
longest_stall() {
  local stall=0 last last_t cur t end
  last=$(processed "$1")
  last_t=$(now_ms)
  end=$(($(now_ms) + $2 * 1000))
  while (($(now_ms) < end)); do
    cur=$(processed "$1")
    t=$(now_ms)
    if ((cur > last)); then
      ((t - last_t > stall)) && stall=$((t - last_t))
      last=$cur
      last_t=$t
    fi
    sleep 0.05
  done
  echo "$stall"
}

# (c) A third instance joins: the longest stall of a's committed output,
# beside the same figure over a quiet stretch before.
baseline_stall_ms=$(longest_stall a 10)
log "(c) longest stall of a's output without a rebalance (10 s): $baseline_stall_ms ms"
log "(c) a third instance joins"
start_instance c
stall_ms=$(longest_stall a 20)
log "(c) longest stall of a's output while c joined (20 s): $stall_ms ms"
stop_pid c
sleep 5
wait_until 120 ready_with a 2 || die "a did not get back to 2 tasks after c left"
wait_until 120 ready_with b 2 || die "b did not get back to 2 tasks after c left"

# (b) Kill for good: the survivor takes over after the session timeout.
log "(b) SIGKILL a for good"
before=$(processed b)
kill -KILL "${pids[a]}"
t0=$(now_ms)
wait "${pids[a]}" 2>/dev/null || true
unset 'pids[a]'
wait_until 120 ready_with b 4 || die "(b) b never took all 4 tasks"
taken=$(processed b)
wait_until 60 grew b "$taken" || die "(b) b produced nothing after the takeover"
loss_ms=$(($(now_ms) - t0))
log "(b) survivor committed output of all 4 tasks after $loss_ms ms (session.timeout.ms 45000)"
kill -KILL "${pids[loadgen]}" 2>/dev/null || true

mkdir -p "$(dirname "$out")"
cat >"$out" <<EOF
{"broker": "$broker_kind", "rate_per_s": $rate, "partitions": 4, "rebalance_protocol": "$protocol",
 "num_standby_replicas": $standby, "preloaded_keys": $keys,
 "restored_records_b": $(metric_value "${port[b]}" streams_restore_records_total 0),
 "standby_takeovers_b": $(metric_value "${port[b]}" streams_standby_takeovers_total 0),
 "restart_at_once_ms": $restart_ms, "loss_without_restart_ms": $loss_ms,
 "session_timeout_ms": 45000, "third_instance_join_max_stall_ms": $stall_ms,
 "quiet_max_stall_ms": $baseline_stall_ms,
 "host": "$(hostname)", "cpus": $(nproc), "date": "$(date -u +%FT%TZ)"}
EOF
printf 'failover (%s, %s req/s, %s keys, %s standby): (a) restart at once %s ms; (b) loss %s ms (session 45000 ms); (c) join stall %s ms (quiet: %s ms)\n' \
  "$broker_kind" "$rate" "$keys" "$standby" "$restart_ms" "$loss_ms" "$stall_ms" "$baseline_stall_ms"
echo "$out"
