# Shell helpers shared by scripts/demo.sh, tests/ops/live_metrics_test.sh and
# the bench/ scripts (sourced). The caller defines log and die, and the associative array pids
# (name -> pid of what it started).

# SIGTERM to pids[$1], wait up to 20 s, then SIGKILL.
stop_pid() {
  local name=$1 pid=${pids[$1]:-}
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

# start_devbroker BINARY DIR PARTITIONS: starts devbroker BINARY on a free
# loopback port with topics of PARTITIONS partitions by default, its output in
# DIR/broker.out and DIR/broker.log; sets pids[broker] and bootstrap (its
# address). Dies when it does not listen within 30 s.
start_devbroker() {
  "$1" --listen 127.0.0.1:0 --default-partitions "$3" >"$2/broker.out" 2>"$2/broker.log" &
  pids[broker]=$!
  bootstrap=$(wait_for_line "$2/broker.out" 'devbroker listening on [^ ]+' 30 "${pids[broker]}" |
    sed 's/devbroker listening on //') || die "devbroker did not start (log: $2/broker.log)"
}

# GET http://127.0.0.1:$1$2; prints the body; fails unless HTTP 2xx.
http_get() { curl -sf --max-time 5 "http://127.0.0.1:$1$2"; }

# metric_value PORT NAME DEFAULT [LABEL_FILTER]: the sum of the samples of
# metric NAME (those whose labels contain LABEL_FILTER) on admin port PORT, or
# DEFAULT when there is none (or no answer).
metric_value() {
  local value
  value=$(http_get "$1" /metrics 2>/dev/null |
    awk -v name="$2" -v filter="${4:-}" '($1 == name || index($1, name "{") == 1) &&
      index($1, filter) { sum += $NF; n++ } END { if (n) printf "%d", sum }') || true
  echo "${value:-$3}"
}

# wait_for_line FILE REGEX TIMEOUT_S [PID]: prints the first match once FILE
# has one; fails after TIMEOUT_S or as soon as PID exits.
wait_for_line() {
  local file=$1 regex=$2 timeout=$3 pid=${4:-}
  for _ in $(seq $((timeout * 10))); do
    if grep -Eo "$regex" "$file" 2>/dev/null | head -1 | grep .; then return 0; fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

# A loopback port nothing listens on.
free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return 0; }
  done
  die "no free port found"
}
