#!/usr/bin/env bash
# Standby coverage benchmark (issue 11, item 3): with more than two instances,
# how often the new owner of a task taken from a lost instance had a standby
# copy of it, and how much each takeover restored.
#
# BENCH_INSTANCES (default 3) paymentd instances with default settings plus
# num.standby.replicas=$BENCH_STANDBY (default 1) share BENCH_PARTITIONS
# (default 12) partitions on a devbroker. Their stores first get BENCH_KEYS
# (default 100,000) distinct requests; then, under a steady load of
# BENCH_RATE (default 500) requests/s, each instance in turn is
#   1. SIGKILLed; the survivors take its tasks once its session expires (the
#      default session.timeout.ms, 45 s: placement does not depend on it);
#   2. for every task that changed owner, the new owner's log says whether it
#      took the task over from its standby copy and how many changelog records
#      it restored;
#   3. restarted on its state directory; the next round starts once the group
#      is back to every instance with tasks and every standby placed.
# Placement (runtime/README.md, "Standby replicas"): the standbys of the tasks
# of the instance at position i (sorted by name) are on the next N instances,
# while the group's assignor places active tasks knowing nothing of standbys,
# so a moved task lands on its standby only when the assignor happens to put
# it there.
#
# Prints one line per moved task and a summary; writes $BENCH_OUT (JSON).
# Usage: bench/standby_coverage.sh [build-dir]
# Needs the build (paymentd, devbroker, payments-loadgen, payments-topics).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
instances=${BENCH_INSTANCES:-3}
standby=${BENCH_STANDBY:-1}
partitions=${BENCH_PARTITIONS:-12}
keys=${BENCH_KEYS:-100000}
rate=${BENCH_RATE:-500}
protocol=${BENCH_PROTOCOL:-eager}
out=${BENCH_OUT:-$root/bench/results/standby-coverage-${instances}x${standby}.json}
work=$(mktemp -d /tmp/paymentd-coverage.XXXXXX)
bin=$build/src
declare -A pids port
log() { printf '[coverage %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=../scripts/lib/processes.sh
source "$root/scripts/lib/processes.sh"
now_ms() { date +%s%3N; }
cleanup() {
  for name in "${!pids[@]}"; do kill -KILL "${pids[$name]}" 2>/dev/null || true; done
  [[ -n "${BENCH_KEEP:-}" ]] || rm -rf "$work"
}
trap cleanup EXIT

((instances >= 3)) || die "BENCH_INSTANCES must be at least 3 (with two, every takeover has a standby)"
((standby >= 1)) || die "BENCH_STANDBY must be at least 1"
for t in paymentd/paymentd devbroker/devbroker tools/payments-loadgen tools/payments-topics; do
  [[ -x "$bin/$t" ]] || die "$bin/$t is missing: build first (cmake --build $build)"
done

start_devbroker "$bin/devbroker/devbroker" "$work" "$partitions"
"$bin/tools/payments-topics" --bootstrap-servers "$bootstrap" --partitions "$partitions" \
  --topic payments.requests --topic payments.confirmations --topic payments.requests.dlq >/dev/null ||
  die "cannot create the topics"

names=()
for ((i = 0; i < instances; i++)); do names+=("i$i"); done

# start_instance NAME: paymentd with instance.id NAME on $work/state-NAME.
start_instance() {
  local name=$1
  "$bin/paymentd/paymentd" --set "bootstrap.servers=$bootstrap" --set "state.dir=$work/state-$name" \
    --set "instance.id=$name" --set admin.listen=127.0.0.1:0 \
    --set "rebalance.protocol=$protocol" --set "num.standby.replicas=$standby" \
    >>"$work/$name.out" 2>>"$work/$name.log" &
  pids[$name]=$!
  # The admin line of this start (the log is appended to across restarts).
  local lines
  lines=$(wc -l <"$work/$name.log")
  for _ in $(seq 600); do
    port[$name]=$(tail -n +"$((lines + 1))" "$work/$name.log" |
      grep -Eo 'admin listening on [0-9.]+:[0-9]+' | head -1 | sed 's/.*://') || true
    [[ -n "${port[$name]}" ]] && return 0
    kill -0 "${pids[$name]}" 2>/dev/null || die "$name exited (log: $work/$name.log)"
    sleep 0.1
  done
  die "$name did not start"
}

# active_tasks NAME: the tasks assigned to NAME (streams_task_state), one per line.
active_tasks() {
  http_get "${port[$1]}" /metrics 2>/dev/null |
    awk '/^streams_task_state\{/ && $NF == 1 { if (match($1, /task="[^"]+"/)) print substr($1, RSTART + 6, RLENGTH - 7) }' |
    sort -u
}
# stable NAMES...: the NAMES hold all partitions between them, each at least
# one, each ready, and standbys of min(N, n-1) copies of every task are placed.
stable() {
  local total=0 standbys=0 name n
  for name in "$@"; do
    n=$(metric_value "${port[$name]}" streams_tasks_assigned 0)
    ((n > 0)) || return 1
    http_get "${port[$name]}" /readyz >/dev/null 2>&1 || return 1
    total=$((total + n))
    standbys=$((standbys + $(metric_value "${port[$name]}" streams_standby_tasks 0)))
  done
  local copies=$((standby < $# - 1 ? standby : $# - 1))
  ((total == partitions && standbys == partitions * copies))
}
wait_stable() {
  local deadline=$(($(now_ms) + $1 * 1000))
  shift
  until stable "$@"; do
    (($(now_ms) < deadline)) || return 1
    sleep 0.2
  done
}

for name in "${names[@]}"; do start_instance "$name"; done
wait_stable 180 "${names[@]}" || die "the group did not settle with $instances instances"
log "$instances instances, $partitions tasks, $standby standby copies each"
if ((keys > 0)); then
  log "preloading $keys distinct requests"
  "$bin/tools/payments-loadgen" --bootstrap-servers "$bootstrap" --count "$keys" --rate 0 \
    --customers 100000 --duplicates 0 --key-reuse 0 --invalid 0 --refunds 0 --bursts 0 \
    --seed 7 --quiet >"$work/preload.out" 2>"$work/preload.err" || die "the preload failed"
  decided() {
    local sum=0 name
    for name in "${names[@]}"; do sum=$((sum + $(metric_value "${port[$name]}" streams_records_processed_total 0))); done
    ((sum >= keys))
  }
  until decided; do sleep 1; done
  log "preload decided"
fi
"$bin/tools/payments-loadgen" --bootstrap-servers "$bootstrap" --count 100000000 \
  --rate "$rate" --customers 1000 --duplicates 0.05 --refunds 0.02 --seed 11 --quiet \
  >"$work/loadgen.out" 2>"$work/loadgen.err" &
pids[loadgen]=$!
sleep 10

moved_total=0 covered_total=0 restored_covered=0 restored_uncovered=0
rows=()
for victim in "${names[@]}"; do
  survivors=()
  declare -A before=() lines=()
  for name in "${names[@]}"; do
    [[ $name == "$victim" ]] && continue
    survivors+=("$name")
    before[$name]=$(active_tasks "$name" | tr '\n' ' ')
    lines[$name]=$(wc -l <"$work/$name.log")
  done
  victim_tasks=$(active_tasks "$victim" | tr '\n' ' ')
  log "SIGKILL $victim (active: $victim_tasks)"
  kill -KILL "${pids[$victim]}"
  wait "${pids[$victim]}" 2>/dev/null || true
  unset "pids[$victim]"
  wait_stable 180 "${survivors[@]}" || die "the survivors did not take over $victim's tasks"
  for name in "${survivors[@]}"; do
    since=$(tail -n +"$((lines[$name] + 1))" "$work/$name.log")
    for task in $(active_tasks "$name"); do
      [[ " ${before[$name]} " == *" $task "* ]] && continue
      standby_copy=no
      grep -q "task $task: taking over from this instance's standby copy" <<<"$since" && standby_copy=yes
      restored=$(grep -Eo "task $task: restored [0-9]+ changelog records" <<<"$since" | tail -1 |
        grep -Eo '[0-9]+ changelog' | grep -Eo '[0-9]+') || restored=0
      from=$([[ " $victim_tasks " == *" $task "* ]] && echo "$victim" || echo "a survivor")
      printf 'task %s: %s -> %s, standby copy: %s, restored %s changelog records\n' \
        "$task" "$from" "$name" "$standby_copy" "$restored"
      rows+=("{\"victim\": \"$victim\", \"task\": \"$task\", \"from_victim\": $([[ $from == "$victim" ]] && echo true || echo false), \"new_owner\": \"$name\", \"standby_copy\": $([[ $standby_copy == yes ]] && echo true || echo false), \"restored_records\": $restored}")
      moved_total=$((moved_total + 1))
      if [[ $standby_copy == yes ]]; then
        covered_total=$((covered_total + 1))
        restored_covered=$((restored_covered + restored))
      else
        restored_uncovered=$((restored_uncovered + restored))
      fi
    done
  done
  log "restarting $victim"
  start_instance "$victim"
  wait_stable 180 "${names[@]}" || die "the group did not settle after $victim came back"
  sleep 5
done
kill -KILL "${pids[loadgen]}" 2>/dev/null || true

uncovered=$((moved_total - covered_total))
mkdir -p "$(dirname "$out")"
{
  printf '{"broker": "devbroker", "instances": %s, "partitions": %s, "num_standby_replicas": %s,\n' "$instances" "$partitions" "$standby"
  printf ' "rebalance_protocol": "%s", "preloaded_keys": %s, "rate_per_s": %s,\n' "$protocol" "$keys" "$rate"
  printf ' "moved_tasks": %s, "with_standby_copy": %s,\n' "$moved_total" "$covered_total"
  printf ' "restored_records_with_standby": %s, "restored_records_without": %s,\n' "$restored_covered" "$restored_uncovered"
  printf ' "host": "%s", "cpus": %s, "date": "%s",\n "moves": [\n  ' "$(hostname)" "$(nproc)" "$(date -u +%FT%TZ)"
  (IFS=$'\n'; echo "${rows[*]}") | paste -sd, | sed 's/},{/},\n  {/g'
  printf ' ]}\n'
} >"$out"
printf 'standby coverage (%s instances, %s partitions, %s standby, %s): %s of %s moved tasks had a standby copy on the new owner; restored %s records with one (mean %s), %s without (mean %s)\n' \
  "$instances" "$partitions" "$standby" "$protocol" "$covered_total" "$moved_total" \
  "$restored_covered" "$((covered_total ? restored_covered / covered_total : 0))" \
  "$restored_uncovered" "$((uncovered ? restored_uncovered / uncovered : 0))"
echo "$out"
