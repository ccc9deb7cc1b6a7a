#!/usr/bin/env bash
# Issue 12 benchmarks in one command (bench/README.md describes each one):
#
#   bench/run.sh [--build DIR] [--brokers devbroker,kafka] [--runs 3] [--quick]
#                [--only throughput,peer,latency,restore,topology] [--keep]
#
#   throughput  paymentd (exactly once, default settings) on the realistic mix
#               (8 partitions, 200,000 requests: 5% duplicates, 1% invalid, 2%
#               refunds, 10,000 customers), first to last confirmation visible
#               under read_committed; in the same run, on the same broker and
#               input topic, the floor: bench/eos_copy.cc, an identity
#               transactional copy writing paymentd's measured output records
#               per input (confirmations + changelog records, counted).
#   peer        the Kafka Streams peer (bench/peers/kafka-streams) on the same
#               input (Apache Kafka only), throughput, and latency at the
#               offered rates it can sustain.
#   latency     p50/p99/p99.9 from send to readable (read_committed) at fixed
#               offered rates (1,000, 5,000, 10,000, 20,000/s, 30 s each) from
#               payments-loadgen, which also reports whether the rate was held.
#   restore     a 1-partition task with 1,000,000 idempotency keys: peak RSS
#               while loading (VmHWM), CPU, then state dir deleted and restored
#               from the changelogs (records/s from paymentd's restore log line).
#   topology    decisions per CPU second of the topology alone (payments_bench).
#
# Each figure is the median of --runs runs (min and max beside it). Results:
# bench/results/<UTC timestamp>.json (figures, per-run raw values, machine) and
# .md (the table, also printed). --quick: 1 run, 50,000 requests, 10 s per
# rate (1,000 and 10,000/s), 200,000 keys: a smoke test of a few minutes.
#
# It builds nothing. Needed in DIR (default build/): src/paymentd/paymentd,
# src/devbroker/devbroker, src/tools/payments-loadgen, src/tools/payments-topics,
# bench/eos_copy, bench/payments_bench:
#   cmake --build DIR --target paymentd devbroker payments-loadgen payments-topics eos_copy payments_bench
# Apache Kafka runs when its jars were fetched (scripts/setup.sh or
# scripts/kafka/fetch.sh), else it is skipped with a note; the peer runs when
# its jar was built (bench/peers/kafka-streams/run.sh build).
# Every process it starts is stopped on exit, also on Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
brokers=devbroker,kafka
runs=3
quick=0
only=throughput,peer,latency,restore,topology
keep=0
runs_given=0
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while (($#)); do
  case "$1" in
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --brokers) brokers=$2; shift 2 ;;
    --runs) runs=$2; runs_given=1; shift 2 ;;
    --quick) quick=1; shift ;;
    --only) only=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) usage 0 ;;
    *) echo "bench/run.sh: unknown option '$1'" >&2; usage 2 >&2 ;;
  esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "bench/run.sh: --runs must be a positive integer" >&2; exit 2; }

requests=200000
customers=10000
partitions=8
rates=(1000 5000 10000 20000)
rate_seconds=30
restore_keys=1000000
if ((quick)); then
  ((runs_given)) || runs=1
  requests=50000
  rates=(1000 10000)
  rate_seconds=10
  restore_keys=200000
fi
mix=(--customers "$customers" --duplicates 0.05 --invalid 0.01 --refunds 0.02)

stamp=$(date -u +%Y%m%dT%H%M%SZ)
results=${BENCH_RESULTS:-$root/bench/results}
base=$(mktemp -d "${TMPDIR:-/tmp}/paymentd-bench.XXXXXX")
# Each broker gets its own work directory (set in the loop below): the names of
# processes, logs and state directories repeat from one broker to the next.
work=$base
raw=$base/raw.jsonl
: >"$raw"
bin=$build/src
eos=$build/bench/eos_copy
peer=$root/bench/peers/kafka-streams/run.sh
clk=$(getconf CLK_TCK)
declare -A pids=()  # name -> pid of what we started
declare -A port=()  # paymentd name -> admin port
kafka_started=0
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# stop_pid, http_get, metric_value, wait_for_line, free_port
# shellcheck source=../scripts/lib/processes.sh
source "$root/scripts/lib/processes.sh"
# shellcheck source=../scripts/kafka/env.sh
source "$root/scripts/kafka/env.sh"

cleanup() {
  local status=$?
  trap - INT TERM
  for name in "${!pids[@]}"; do [[ "$name" == broker ]] || stop_pid "$name"; done
  stop_pid broker
  ((kafka_started)) && "$root/scripts/kafka-test-server.sh" stop "$work/kafka" >/dev/null 2>&1 || true
  if ((keep || status != 0)); then log "work directory kept: $base"; else rm -rf "$base"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'log "interrupted, stopping everything"; exit 130' INT TERM

wants() { [[ ",$only," == *",$1,"* ]]; }
for t in paymentd/paymentd devbroker/devbroker tools/payments-loadgen tools/payments-topics; do
  [[ -x "$bin/$t" ]] || die "$bin/$t is missing: cmake --build $build --target paymentd devbroker payments-loadgen payments-topics eos_copy payments_bench"
done
[[ -x "$eos" ]] || die "$eos is missing: cmake --build $build --target eos_copy"

# emit KEY=VALUE...: one raw measurement (a JSON object) to $raw; numbers stay
# numbers, anything else becomes a string.
emit() {
  local kv json=""
  for kv in "$@"; do
    local k=${kv%%=*} v=${kv#*=}
    [[ "$v" =~ ^-?[0-9]+(\.[0-9]+)?$ ]] || v="\"$v\""
    json+="${json:+, }\"$k\": $v"
  done
  echo "{$json}" >>"$raw"
}
# field LINE KEY: the value of KEY=value in LINE.
field() { sed -n "s/.*\b$2=\([^ ]*\).*/\1/p" <<<"$1" | head -1; }
cpu_s() { awk -v clk="$clk" '{ printf "%.3f", ($14 + $15) / clk }' "/proc/$1/stat" 2>/dev/null || echo 0; }
hwm_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }
now_ms() { date +%s%3N; }

# topics ARGS...: payments-topics; retried, as Apache Kafka may answer
# UNKNOWN_TOPIC for a moment after creating a topic.
topics() {
  for _ in 1 2 3 4 5; do
    "$bin/tools/payments-topics" --bootstrap-servers "$bootstrap" "$@" >>"$work/topics.log" 2>&1 && return 0
    sleep 1
  done
  die "cannot create topics $* ($(tail -1 "$work/topics.log"))"
}

# wait_exit NAME TIMEOUT_S: waits for pids[NAME] to exit; its status, or 124.
wait_exit() {
  local pid=${pids[$1]} status=0
  for _ in $(seq $(($2 * 10))); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" || status=$?
      unset "pids[$1]"
      return "$status"
    fi
    sleep 0.1
  done
  return 124
}
line=""  # the last timer's summary (timer_result)

# start_timer NAME TOPIC EXPECTED: a read_committed first-to-last timer (eos_copy timer).
start_timer() {
  "$eos" --bootstrap-servers "$bootstrap" timer --topic "$2" --expected "$3" \
    >"$work/$1.out" 2>"$work/$1.log" &
  pids[$1]=$!
  wait_for_line "$work/$1.log" 'timer: ready' 60 "${pids[$1]}" >/dev/null || die "timer $1 did not start"
}
# timer_result NAME TIMEOUT_S: waits for the timer; sets line to its summary.
# (Not in a command substitution: only this shell can wait for its children.)
timer_result() {
  local status=0
  wait_exit "$1" "$2" || status=$?
  ((status == 0)) || die "timer $1 failed (status $status): $(cat "$work/$1.out" "$work/$1.log" | tail -3)"
  line=$(grep '^timer ' "$work/$1.out")
}

# start_paymentd NAME APP_ID REQUESTS CONFIRMATIONS: paymentd with default
# settings (only names, addresses and the state dir are set).
start_paymentd() {
  local name=$1
  "$bin/paymentd/paymentd" --set "bootstrap.servers=$bootstrap" --set "application.id=$2" \
    --set "instance.id=$name" --set "state.dir=$work/state-$name" --set admin.listen=127.0.0.1:0 \
    --set "payments.requests.topic=$3" --set "payments.confirmations.topic=$4" \
    >>"$work/$name.out" 2>>"$work/$name.log" &
  pids[$name]=$!
  port[$name]=$(wait_for_line "$work/$name.log" 'admin listening on [0-9.]+:[0-9]+' 60 "${pids[$name]}" |
    tail -1 | sed 's/.*://') || die "$name did not start (log: $work/$name.log)"
}
wait_ready() {
  for _ in $(seq $(($2 * 10))); do
    http_get "${port[$1]}" /readyz >/dev/null 2>&1 && return 0
    kill -0 "${pids[$1]}" 2>/dev/null || die "$1 exited (log: $work/$1.log)"
    sleep 0.1
  done
  die "$1 not ready after $2 s"
}

load() {  # load TOPIC COUNT ARGS...: payments-loadgen, as fast as possible
  local topic=$1 count=$2
  shift 2
  "$bin/tools/payments-loadgen" --bootstrap-servers "$bootstrap" --topic "$topic" --count "$count" \
    --quiet "$@" >"$work/load-$topic.out" 2>&1 || die "loading $topic failed: $(tail -3 "$work/load-$topic.out")"
}

start_broker() {
  case "$1" in
    devbroker)
      start_devbroker "$bin/devbroker/devbroker" "$work" "$partitions"
      ;;
    kafka)
      kafka_started=1
      # A benchmark broker: G1 and a 1 GiB heap instead of the test defaults
      # (serial GC, C1 only: fast start-up), as scripts/kafka-test-server.sh advises.
      bootstrap=$(KAFKA_JVM_PERFORMANCE_OPTS=-XX:+UseG1GC KAFKA_HEAP_OPTS="-Xms512m -Xmx1g" \
        "$root/scripts/kafka-test-server.sh" start "$work/kafka" | sed -n 's/^bootstrap.servers=//p') ||
        die "Apache Kafka did not start (logs: $work/kafka)"
      ;;
  esac
  log "broker $1 at $bootstrap"
}
stop_broker() {
  if [[ "$1" == kafka ]]; then
    "$root/scripts/kafka-test-server.sh" stop "$work/kafka" >/dev/null 2>&1 || true
    kafka_started=0
  else
    stop_pid broker
    unset 'pids[broker]'
  fi
}

# --- Throughput: paymentd, the floor, the peer ----------------------------
declare -A peer_rate=()
throughput() {
  local b=$1 r line app counts f n k outs
  topics --partitions "$partitions" --topic tp.requests --topic tp.requests.dlq
  log "[$b] loading $requests requests into tp.requests ($partitions partitions)"
  load tp.requests "$requests" --partitions "$partitions" --seed 1 "${mix[@]}"
  for r in $(seq "$runs"); do
    app=paymentd-tp$r
    topics --partitions "$partitions" --topic "tp$r.confirmations"
    start_timer "timer-tp$r" "tp$r.confirmations" "$requests"
    start_paymentd "pd-tp$r" "$app" tp.requests "tp$r.confirmations"
    timer_result "timer-tp$r" 1800
    local cpu hwm
    cpu=$(cpu_s "${pids[pd-tp$r]}")
    hwm=$(hwm_mib "${pids[pd-tp$r]}")
    stop_pid "pd-tp$r"
    unset "pids[pd-tp$r]"
    counts=$("$eos" --bootstrap-servers "$bootstrap" count --topic "tp$r.confirmations" \
      --topic "$app-idempotency-changelog" --topic "$app-payments-changelog" \
      --topic "$app-customers-changelog" --topic tp.requests.dlq 2>>"$work/count.log") ||
      die "cannot count paymentd's output records"
    n=$(sed -n 's/^count total=//p' <<<"$counts")
    f=$(awk -v n="$n" -v r="$requests" 'BEGIN { printf "%.4f", n / r }')
    emit bench=throughput broker="$b" system=paymentd run="$r" per_s="$(field "$line" per_s)" \
      first_to_last_s="$(field "$line" first_to_last_s)" cpu_s="$cpu" rss_hwm_mib="$hwm" \
      requests="$requests" output_records="$n" fanout="$f"
    log "[$b] run $r: paymentd $(field "$line" per_s) requests/s, $n output records ($f per input), CPU $cpu s"

    # The floor, on the same input and layout, writing the same number of records.
    outs=()
    local specs=()
    for k in $(seq 0 $(($(awk -v f="$f" 'BEGIN { printf "%d", (f == int(f)) ? f : int(f) + 1 }') - 1))); do
      specs+=(--topic "tp$r.floor.o$k")
      outs+=(--output "tp$r.floor.o$k")
    done
    topics --partitions "$partitions" "${specs[@]}"
    start_timer "timer-fl$r" "tp$r.floor.o0" "$requests"
    "$eos" --bootstrap-servers "$bootstrap" copy --input tp.requests "${outs[@]}" --fanout "$f" \
      --group "floor-$r" --transactional-id "floor-$r" --expected "$requests" \
      >"$work/floor-$r.out" 2>"$work/floor-$r.log" &
    pids[floor-$r]=$!
    timer_result "timer-fl$r" 1800
    wait_exit "floor-$r" 120 || die "the floor copy failed: $(tail -3 "$work/floor-$r.log")"
    local copy
    copy=$(grep '^copy ' "$work/floor-$r.out")
    emit bench=throughput broker="$b" system=floor run="$r" per_s="$(field "$line" per_s)" \
      first_to_last_s="$(field "$line" first_to_last_s)" cpu_s="$(field "$copy" cpu_s)" \
      requests="$requests" output_records="$(field "$copy" produced)" fanout="$f"
    log "[$b] run $r: floor $(field "$line" per_s) requests/s ($(field "$copy" produced) records)"

    if [[ "$b" == kafka ]] && wants peer && [[ -f "$root/bench/peers/kafka-streams/target/payments-streams-peer.jar" ]]; then
      topics --partitions "$partitions" --topic "tp$r.peer.confirmations"
      start_timer "timer-pe$r" "tp$r.peer.confirmations" "$requests"
      "$peer" --bootstrap-servers "$bootstrap" --application-id "peer-tp$r" --requests-topic tp.requests \
        --confirmations-topic "tp$r.peer.confirmations" --state-dir "$work/peer-state-tp$r" \
        >"$work/peer-tp$r.out" 2>"$work/peer-tp$r.log" &
      pids[peer-tp$r]=$!
      timer_result "timer-pe$r" 1800
      cpu=$(cpu_s "${pids[peer-tp$r]}")
      stop_pid "peer-tp$r"
      unset "pids[peer-tp$r]"
      emit bench=throughput broker="$b" system=peer run="$r" per_s="$(field "$line" per_s)" \
        first_to_last_s="$(field "$line" first_to_last_s)" cpu_s="$cpu" requests="$requests"
      peer_rate[$r]=$(field "$line" per_s)
      log "[$b] run $r: Kafka Streams peer $(field "$line" per_s) requests/s"
    fi
  done
}

# --- Latency at fixed offered rates ---------------------------------------
# latency BROKER SYSTEM(paymentd|peer) MAX_RATE
latency() {
  local b=$1 system=$2 max_rate=${3:-0} r rate out e2e sched offset name app
  if ((max_rate > 0 && rates[0] > max_rate)); then
    log "[$b] $system: no offered rate at or below its measured throughput ($max_rate/s): latency skipped"
    emit bench=skipped broker="$b" system="$system latency" reason="every offered rate above its throughput of $max_rate/s"
    return 0
  fi
  for r in $(seq "$runs"); do
    name=lat-$system-$r
    app=$system-lat$r
    topics --partitions "$partitions" --topic "$name.requests" --topic "$name.confirmations" --topic "$name.requests.dlq"
    if [[ "$system" == paymentd ]]; then
      start_paymentd "$name" "$app" "$name.requests" "$name.confirmations"
      wait_ready "$name" 120
    else
      "$peer" --bootstrap-servers "$bootstrap" --application-id "$app" --requests-topic "$name.requests" \
        --confirmations-topic "$name.confirmations" --state-dir "$work/peer-state-$name" \
        >"$work/$name.out" 2>"$work/$name.log" &
      pids[$name]=$!
      wait_for_line "$work/$name.out" 'payments-peer: ready' 180 "${pids[$name]}" >/dev/null || die "peer $name did not start"
    fi
    offset=0
    for rate in "${rates[@]}"; do
      if ((max_rate > 0 && rate > max_rate)); then
        log "[$b] $system: skipping $rate/s (above its measured throughput of $max_rate/s)"
        continue
      fi
      local count=$((rate * rate_seconds))
      out=$work/$name-$rate.out
      # Each rate gets its own seed (new idempotency keys) and event times after
      # the previous rate's, as one continuing stream.
      "$bin/tools/payments-loadgen" --bootstrap-servers "$bootstrap" --topic "$name.requests" \
        --confirmations-topic "$name.confirmations" --count "$count" --rate "$rate" \
        --partitions "$partitions" --seed $((rate + r)) --start-time-ms $((1700000000000 + offset * 10)) \
        "${mix[@]}" --await-confirmations --await-timeout-ms 300000 --quiet >"$out" 2>&1 ||
        log "[$b] $system at $rate/s: payments-loadgen exited non-zero ($(tail -1 "$out"))"
      offset=$((offset + count))
      e2e=$(grep '^e2e ' "$out" || true)
      sched=$(grep '^schedule ' "$out" || true)
      emit bench=latency broker="$b" system="$system" run="$r" rate="$rate" seconds="$rate_seconds" \
        p50_ms="$(field "$e2e" p50_ms)" p99_ms="$(field "$e2e" p99_ms)" p999_ms="$(field "$e2e" p999_ms)" \
        max_ms="$(field "$e2e" max_ms)" confirmed="$(field "$e2e" confirmed)" expected="$(field "$e2e" expected)" \
        sent_per_s="$(field "$sched" sent_per_s)" lag_p99_ms="$(field "$sched" lag_p99_ms)" \
        lag_max_ms="$(field "$sched" lag_max_ms)"
      log "[$b] run $r: $system at $rate/s: p50 $(field "$e2e" p50_ms) p99 $(field "$e2e" p99_ms) p99.9 $(field "$e2e" p999_ms) ms (sent $(field "$sched" sent_per_s)/s, lag p99 $(field "$sched" lag_p99_ms) ms)"
    done
    stop_pid "$name"
    unset "pids[$name]"
  done
}

# --- Restore and peak RSS with 1,000,000 keys -----------------------------
restore() {
  local b=$1 r line hwm_load cpu entries restored secs t0 ready_ms hwm
  topics --partitions 1 --topic rs.requests --topic rs.confirmations --topic rs.requests.dlq
  log "[$b] loading $restore_keys distinct requests into rs.requests (1 partition)"
  # 10 requests per customer: none is rate limited, so every one is stored.
  load rs.requests "$restore_keys" --customers $((restore_keys / 10)) --seed 7
  start_timer timer-rs rs.confirmations "$restore_keys"
  start_paymentd pd-rs paymentd-rs rs.requests rs.confirmations
  timer_result timer-rs 3600
  sleep 6  # streams_state_store_entries is refreshed every 5 s
  entries=$(metric_value "${port[pd-rs]}" streams_state_store_entries 0 'store="idempotency"')
  hwm_load=$(hwm_mib "${pids[pd-rs]}")
  cpu=$(cpu_s "${pids[pd-rs]}")
  stop_pid pd-rs
  unset 'pids[pd-rs]'
  emit bench=load broker="$b" system=paymentd keys="$restore_keys" idempotency_entries="$entries" \
    rss_hwm_mib="$hwm_load" cpu_s="$cpu" per_s="$(field "$line" per_s)"
  log "[$b] loaded: $entries idempotency keys, peak RSS $hwm_load MiB, CPU $cpu s"
  for r in $(seq "$runs"); do
    rm -rf "$work/state-pd-rs"
    : >"$work/pd-rs.log"
    t0=$(now_ms)
    start_paymentd pd-rs paymentd-rs rs.requests rs.confirmations
    wait_ready pd-rs 1800
    ready_ms=$(($(now_ms) - t0))
    line=$(wait_for_line "$work/pd-rs.log" 'restored [0-9]+ changelog records in [0-9.]+ s' 10 || true)
    restored=$(awk '{ print $2 }' <<<"$line")
    secs=$(awk '{ print $(NF - 1) }' <<<"$line")
    hwm=$(hwm_mib "${pids[pd-rs]}")
    stop_pid pd-rs
    unset 'pids[pd-rs]'
    emit bench=restore broker="$b" run="$r" keys="$restore_keys" idempotency_entries="$entries" \
      restored_records="${restored:-0}" restore_s="${secs:-0}" \
      per_s="$(awk -v n="${restored:-0}" -v s="${secs:-0}" 'BEGIN { printf "%.0f", (s > 0) ? n / s : 0 }')" \
      start_to_ready_s="$(awk -v m="$ready_ms" 'BEGIN { printf "%.3f", m / 1000 }')" rss_hwm_mib="$hwm"
    log "[$b] run $r: restored ${restored:-?} records in ${secs:-?} s (ready after $ready_ms ms), peak RSS $hwm MiB"
  done
}

# --- Machine --------------------------------------------------------------
machine() {
  local cpu mem kafka_v java_v rev
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
  mem=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
  kafka_v=$KAFKA_VERSION
  java_v=$(java -version 2>&1 | head -1 | sed 's/"//g' || echo none)
  rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  git -C "$root" diff --quiet 2>/dev/null || rev="$rev+local changes"
  emit bench=machine cpu_model="$cpu" cores="$(nproc)" ram_gib="$mem" kernel="$(uname -r)" \
    os="$(. /etc/os-release && echo "$PRETTY_NAME")" \
    librdkafka="$(pkg-config --modversion rdkafka 2>/dev/null || echo unknown)" \
    rocksdb="$(pkg-config --modversion rocksdb 2>/dev/null || echo unknown)" \
    kafka="$kafka_v" java="$java_v" revision="$rev" build="$build" runs="$runs" quick="$quick" \
    requests="$requests" rate_seconds="$rate_seconds" restore_keys="$restore_keys" \
    loadavg_start="$(cut -d' ' -f1-3 /proc/loadavg)" started="$(date -u +%FT%TZ)"
}

machine
if wants topology; then
  if [[ -x "$build/bench/payments_bench" ]]; then
    # The realistic mix with the runtime's 100 ms cycles when the binary has
    # it, else the older many-customers case; BENCH_TOPOLOGY_FILTER overrides.
    filter=${BENCH_TOPOLOGY_FILTER:-}
    if [[ -z "$filter" ]]; then
      if "$build/bench/payments_bench" --benchmark_list_tests | grep -q '^BM_DecisionMix/300000/0/'; then
        filter='^BM_DecisionMix/300000/0/'
      else
        filter='^BM_ManyCustomers/'
      fi
    fi
    log "topology alone: payments_bench --benchmark_filter=$filter x $runs"
    "$build/bench/payments_bench" --benchmark_filter="$filter" \
      --benchmark_repetitions="$runs" --benchmark_format=json >"$work/payments_bench.json" 2>"$work/payments_bench.log" ||
      die "payments_bench failed: $(tail -3 "$work/payments_bench.log")"
    python3 - "$work/payments_bench.json" >>"$raw" <<'EOF'
import json, sys
for i, b in enumerate(x for x in json.load(open(sys.argv[1]))["benchmarks"] if x.get("run_type") == "iteration"):
    print(json.dumps({"bench": "topology", "run": i + 1, "name": b["name"],
                      "decisions_per_cpu_s": b.get("decisions_per_cpu_s"), "decisions_per_s": b.get("decisions_per_s")}))
EOF
  else
    log "topology: $build/bench/payments_bench missing, skipped"
  fi
fi
IFS=, read -ra broker_list <<<"$brokers"
for b in "${broker_list[@]}"; do
  case "$b" in
    devbroker) ;;
    kafka)
      if ! kafka_lib_complete; then
        log "Apache Kafka $KAFKA_VERSION jars not fetched (scripts/kafka/fetch.sh): kafka skipped"
        emit bench=skipped broker=kafka reason="jars not fetched"
        continue
      fi
      ;;
    *) die "unknown broker '$b' (devbroker or kafka)" ;;
  esac
  work=$base/$b
  mkdir -p "$work"
  start_broker "$b"
  if wants throughput; then throughput "$b"; fi
  if wants latency; then
    latency "$b" paymentd
    if [[ "$b" == kafka ]] && wants peer && [[ -f "$root/bench/peers/kafka-streams/target/payments-streams-peer.jar" ]]; then
      max=0
      for v in "${peer_rate[@]}"; do max=$(awk -v a="$max" -v b="$v" 'BEGIN { printf "%d", (b > a) ? b : a }'); done
      latency "$b" peer "${max:-0}"
    fi
  fi
  if wants restore; then restore "$b"; fi
  stop_broker "$b"
done
if [[ ",$brokers," == *",kafka,"* ]] && wants peer && [[ ! -f "$root/bench/peers/kafka-streams/target/payments-streams-peer.jar" ]]; then
  log "Kafka Streams peer not built (bench/peers/kafka-streams/run.sh build): skipped"
  emit bench=skipped system=peer reason="jar not built"
fi
emit bench=end loadavg_end="$(cut -d' ' -f1-3 /proc/loadavg)" finished="$(date -u +%FT%TZ)"

mkdir -p "$results"
python3 "$root/bench/report.py" "$raw" "$results/$stamp.json" "$results/$stamp.md"
cat "$results/$stamp.md"
log "results: $results/$stamp.json, $results/$stamp.md"
