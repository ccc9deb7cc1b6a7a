#!/usr/bin/env bash
# Builds (when needed) and runs the Kafka Streams peer of paymentd (README.md).
#
# Usage: run.sh --bootstrap-servers HOST:PORT [--application-id ID] [--requests-topic T]
#               [--confirmations-topic T] [--state-dir DIR] [--partitions N] [--threads N]
#               [--commit-interval-ms MS] [--config FILE] [--set KEY=VALUE]...
#          runs the app in the foreground; prints "payments-peer: ready ..." on stdout once every
#          task is running (restored); logs on stderr; SIGTERM/SIGINT close it cleanly.
#        run.sh timer --bootstrap-servers HOST:PORT [--topic T] --expected N [--idle-timeout-s S]
#          read_committed throughput of a confirmations topic (first to last confirmation).
#        run.sh build
#          only builds target/payments-streams-peer.jar (+ target/lib).
#
# Environment: PEER_JAVA_OPTS (default "-Xms256m -Xmx1g -XX:+UseG1GC"), MVN (default mvn).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
jar=$here/target/payments-streams-peer.jar
proto=$here/../../../proto/payments/v1/payments.proto

needs_build() {
  [[ -f "$jar" && -d "$here/target/lib" ]] || return 0
  [[ -n "$(find "$here/src" "$here/pom.xml" "$proto" -newer "$jar" -type f 2>/dev/null | head -n 1)" ]]
}

build() {
  local mvn=${MVN:-mvn}
  # Offline first (everything in ~/.m2); online (Maven Central) otherwise.
  if ! (cd "$here" && "$mvn" -q -o -B package -DskipTests >"$here/target-build.log" 2>&1); then
    echo "run.sh: offline build failed, building online (Maven Central)" >&2
    (cd "$here" && "$mvn" -q -B package -DskipTests >"$here/target-build.log" 2>&1) || {
      tail -n 40 "$here/target-build.log" >&2
      echo "run.sh: build failed (log: $here/target-build.log)" >&2
      exit 1
    }
  fi
  rm -f "$here/target-build.log"
}

if [[ "${1:-}" == build ]]; then
  build
  exit 0
fi
if needs_build; then build; fi
# shellcheck disable=SC2206  # word splitting of the JVM options is intended
opts=(${PEER_JAVA_OPTS:--Xms256m -Xmx1g -XX:+UseG1GC})
exec java "${opts[@]}" -cp "$jar:$here/target/lib/*" paymentd.peer.PaymentsPeer "$@"
