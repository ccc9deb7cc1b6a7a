#!/usr/bin/env bash
# Starts, bounces or stops a private single-node Apache Kafka (KRaft, one
# combined broker+controller) for tests, listening on free loopback ports with
# its logs and data under DIR. The jars come from scripts/kafka/fetch.sh
# (version and cache directory: scripts/kafka/README.md).
#
# Usage: kafka-test-server.sh start DIR [KEY=VALUE ...]
#        kafka-test-server.sh bounce DIR
#        kafka-test-server.sh stop DIR
#        kafka-test-server.sh run DIR [KEY=VALUE ...]
#
#   start   Deletes DIR (empty, or an earlier node's), formats a new node there
#           (random cluster id, or KAFKA_CLUSTER_ID) and starts it in the
#           background; prints "bootstrap.servers=127.0.0.1:PORT" once it
#           answers a metadata request. KEY=VALUE pairs are added to (or
#           replace) its server.properties.
#   bounce  Hard bounce: SIGKILLs the node of DIR and starts it again on the same
#           log dir and ports; prints the bootstrap line once it answers again.
#   stop    SIGTERM (controlled shutdown), SIGKILL after KAFKA_STOP_TIMEOUT s.
#   run     Foreground, for a test harness that supervises the process itself
#           (tests/support/kafka_broker.cc): formats DIR when it holds no node
#           yet (else reuses it: same data and ports), then becomes the JVM
#           (exec), so the harness's signals and PR_SET_PDEATHSIG reach the
#           broker. The bootstrap line is printed on stdout once it is ready.
#
# Files in DIR: server.properties, data/ (log.dirs and the KRaft metadata log),
# server.log (the broker's log), format.log, pid (the JVM's), and for
# start/bounce: run.out (the bootstrap line).
#
# Environment:
#   KAFKA_NUM_PARTITIONS=1     num.partitions (auto-created and default topics)
#   KAFKA_HEAP_OPTS="-Xms64m -Xmx512m"
#   KAFKA_JVM_PERFORMANCE_OPTS="-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
#   KAFKA_JVM_OPTS             more JVM options (appended)
#   KAFKA_CDS=0                do not use the class-data-sharing archive of fetch.sh
#   KAFKA_CLUSTER_ID           cluster id to format with (default: random)
#   KAFKA_START_TIMEOUT=120    seconds to wait for a start or bounce
#   KAFKA_STOP_TIMEOUT=30      seconds stop waits before the SIGKILL
#   KAFKA_VERSION, KAFKA_LIB_DIR   see scripts/kafka/env.sh
#
# Exit codes: 0 OK; 1 error (message on stderr); 2 usage; 3 the jars are not
# fetched (run scripts/kafka/fetch.sh or scripts/setup.sh).
set -euo pipefail
usage="usage: kafka-test-server.sh start DIR [KEY=VALUE ...] | bounce DIR | stop DIR | run DIR [KEY=VALUE ...]"
cmd=${1:-}
[[ -n "$cmd" && -n "${2:-}" ]] || { echo "$usage" >&2; exit 2; }
dir=$2
shift 2
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
# shellcheck source-path=SCRIPTDIR source=kafka/env.sh
source "$(dirname "$0")/kafka/env.sh"
log4j_config=$kafka_dir/log4j2.properties
start_timeout=${KAFKA_START_TIMEOUT:-120}
stop_timeout=${KAFKA_STOP_TIMEOUT:-30}

die() { echo "kafka-test-server: $*" >&2; exit 1; }

require_jars() {
  if ! kafka_lib_complete; then
    echo "kafka-test-server: Apache Kafka $KAFKA_VERSION jars not found in $KAFKA_LIB_DIR" \
      "(run scripts/kafka/fetch.sh or scripts/setup.sh)" >&2
    exit 3
  fi
  command -v kcat >/dev/null || die "kcat not found: it probes the broker (run scripts/setup.sh)"
  kafka_java_probe || die "java not found or not working (run scripts/setup.sh)"
  [[ "$kafka_java_major" -ge 17 ]] 2>/dev/null ||
    die "Kafka $KAFKA_VERSION needs Java 17 or newer, found '$kafka_java_major'"
}

# JVM options of the broker and the storage tool. The defaults favour a fast
# start on 2 cores (C1 only, serial GC, the CDS archive fetch.sh made) over
# peak throughput: a benchmark sets KAFKA_JVM_PERFORMANCE_OPTS=-XX:+UseG1GC.
# KAFKA_CDS_DUMP=FILE (fetch.sh) writes the archive at the JVM's exit instead.
jvm_opts() {
  # shellcheck disable=SC2206  # word splitting of the option lists is intended
  local opts=(${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1}
    -Xss1m -Djava.awt.headless=true -Dlog4j2.configurationFile="$log4j_config")
  if [[ -n "${KAFKA_CDS_DUMP:-}" ]]; then
    opts+=(-XX:ArchiveClassesAtExit="$KAFKA_CDS_DUMP" "-Xlog:cds*=off")
  elif [[ "${KAFKA_CDS:-1}" != 0 && -f "$kafka_cds_archive" ]]; then
    opts+=(-XX:SharedArchiveFile="$kafka_cds_archive")
  fi
  # shellcheck disable=SC2206
  opts+=(${KAFKA_JVM_OPTS:-})
  printf '%s\n' "${opts[@]}"
}

# A loopback TCP port nothing listens on, outside the ephemeral range (32768-60999),
# so that no outgoing connection holds it either. Not reserved: start retries on a
# bind failure.
free_port() {
  local p _
  for _ in $(seq 100); do
    p=$((10000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  die "no free loopback port found"
}

prop() { sed -n "s/^$1=//p" "$dir/server.properties" | tail -n 1; }
broker_port() { prop listeners | sed -n 's|.*PLAINTEXT://127.0.0.1:\([0-9]*\).*|\1|p'; }

# Writes DIR/server.properties for a new node on fresh ports and formats its storage.
create_node() {
  local port cport cluster_id kv
  if [[ -e "$dir" && ! -f "$dir/server.properties" ]] && [[ -n "$(ls -A "$dir" 2>/dev/null)" ]]; then
    die "$dir is not empty and holds no node: not deleting it"
  fi
  rm -rf "$dir"
  mkdir -p "$dir/data"
  dir=$(cd "$dir" && pwd)
  port=$(free_port)
  cport=$(free_port)
  while [[ "$cport" == "$port" ]]; do cport=$(free_port); done
  cat >"$dir/server.properties" <<EOF
# Written by scripts/kafka-test-server.sh: one combined KRaft broker+controller for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=${KAFKA_NUM_PARTITIONS:-1}
default.replication.factor=1
min.insync.replicas=1
# One node: the internal topics have one replica, and fewer partitions than the
# defaults (50) so that they are created and loaded quickly.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Tests use short session timeouts and expect timed-out transactions to be
# aborted within seconds (defaults: 6000 ms and 10000 ms).
group.min.session.timeout.ms=1000
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
# After a hard bounce the controller refuses the broker's new registration
# (DUPLICATE_BROKER_REGISTRATION) until the session of the killed incarnation
# expires (default 9 s). Heartbeats stay inside the process, so a short
# session is safe (a missed one only fences the broker until the next).
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
# Nothing is deleted by age: payments-loadgen's requests carry event times
# from 2023 (CreateTime), and the default 7-day retention deleted whole
# partitions of them 30 s after a start (log.initial.task.delay.ms), under a
# running test (seen: the chaos test's consumers reset past the log end).
log.retention.ms=-1
# Sized for a 2-core machine and a 512 MB heap.
num.network.threads=2
num.io.threads=4
background.threads=4
log.cleaner.dedupe.buffer.size=16777216
EOF
  for kv in "$@"; do
    [[ "$kv" == *=* ]] || die "not KEY=VALUE: '$kv'"
    echo "$kv" >>"$dir/server.properties"
  done
  # A random Kafka Uuid: 16 bytes, base64url without padding; like Kafka's own,
  # never one that starts with '-' (which command lines take for an option).
  cluster_id=${KAFKA_CLUSTER_ID:-}
  while [[ -z "$cluster_id" || "$cluster_id" == -* && -z "${KAFKA_CLUSTER_ID:-}" ]]; do
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  done
  local opts
  mapfile -t opts < <(KAFKA_CDS_DUMP='' jvm_opts)
  if ! java -Xmx256m "${opts[@]}" -Dkafka.test.log.level=WARN -cp "$KAFKA_LIB_DIR/*" \
    kafka.tools.StorageTool format --cluster-id="$cluster_id" -c "$dir/server.properties" \
    >"$dir/format.log" 2>&1; then
    cat "$dir/format.log" >&2
    die "formatting the storage in $dir/data failed"
  fi
}

# True once the broker on $1 answers a metadata request (with librdkafka, via
# kcat). The broker opens its client port last, once it has started: until then
# the connect check fails at once (kcat would wait out its timeout).
answers_metadata() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null || return 1
  kcat -L -b "127.0.0.1:$1" -m 5 2>/dev/null | grep -q '1 brokers'
}

# Foreground: becomes the broker. A detached watcher prints the bootstrap line
# once it is ready, or SIGKILLs it after start_timeout seconds.
run_node() {
  local port pid=$$
  port=$(broker_port)
  [[ -n "$port" ]] || die "no PLAINTEXT listener in $dir/server.properties"
  (
    (
      for _ in $(seq $((start_timeout * 10))); do
        kill -0 "$pid" 2>/dev/null || exit 0
        if answers_metadata "$port"; then
          echo "bootstrap.servers=127.0.0.1:$port"
          exit 0
        fi
        sleep 0.1
      done
      echo "kafka-test-server: broker not ready after $start_timeout s (log: $dir/server.log)" >&2
      kill -KILL "$pid" 2>/dev/null || true
    ) &
  )
  local opts
  mapfile -t opts < <(jvm_opts)
  echo "$$" >"$dir/pid"  # The JVM's pid, after the exec.
  # shellcheck disable=SC2086  # word splitting of the heap options is intended
  exec java ${KAFKA_HEAP_OPTS:--Xms64m -Xmx512m} "${opts[@]}" -cp "$KAFKA_LIB_DIR/*" \
    kafka.Kafka "$dir/server.properties" >>"$dir/server.log" 2>&1
}

# Starts `run` detached (own session) and waits for its bootstrap line. Returns 1
# when it died before (the caller may retry), after printing the log's tail.
start_background() {
  local pid line
  : >"$dir/run.out"
  setsid "$self" run "$dir" >"$dir/run.out" 2>>"$dir/server.log" </dev/null &
  pid=$!
  for _ in $(seq $((start_timeout * 10 + 50))); do
    line=$(grep -m 1 '^bootstrap.servers=' "$dir/run.out" || true)
    if [[ -n "$line" ]]; then
      echo "$line"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  return 1
}

# The pid of the broker of DIR (from DIR/pid, written by run), if it is still
# that broker: a pid file outliving its process must not name a recycled pid.
node_pid() {
  local pid
  [[ -f "$dir/pid" ]] || return 1
  pid=$(cat "$dir/pid")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $dir/server.properties" || return 1
  echo "$pid"
}

kill_and_wait() {  # signal, timeout in s: returns once the broker of DIR is gone
  local pid
  pid=$(node_pid) || return 0
  kill "-$1" "$pid" 2>/dev/null || return 0
  for _ in $(seq $(($2 * 10))); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}

case "$cmd" in
  start)
    require_jars
    if [[ -d "$dir" ]]; then dir=$(cd "$dir" && pwd) && kill_and_wait KILL 10; fi
    for attempt in 1 2 3; do
      create_node "$@"
      if start_background; then exit 0; fi
      if ((attempt < 3)) && grep -q 'BindException\|Address already in use' "$dir/server.log"; then
        continue  # another process took a port we picked: new ports
      fi
      tail -n 40 "$dir/server.log" >&2
      die "the broker did not start (log: $dir/server.log)"
    done
    ;;
  bounce)
    require_jars
    [[ -f "$dir/server.properties" ]] || die "no node in $dir (start one first)"
    dir=$(cd "$dir" && pwd)
    kill_and_wait KILL 10
    start_background || { tail -n 40 "$dir/server.log" >&2; die "the broker did not restart (log: $dir/server.log)"; }
    ;;
  stop)
    [[ -d "$dir" ]] || exit 0
    dir=$(cd "$dir" && pwd)
    kill_and_wait TERM "$stop_timeout"
    rm -f "$dir/pid"
    ;;
  run)
    require_jars
    if [[ -f "$dir/server.properties" && -f "$dir/data/meta.properties" ]]; then
      dir=$(cd "$dir" && pwd)
      (($# == 0)) || die "$dir already holds a node: KEY=VALUE settings apply to a new one only"
    else
      create_node "$@"
    fi
    run_node
    ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
