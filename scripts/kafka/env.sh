# shellcheck shell=bash
# Sourced by fetch.sh and ../kafka-test-server.sh: where the test broker's jars are.
#   KAFKA_VERSION  the broker version (default: <kafka.version> in pom.xml)
#   KAFKA_LIB_DIR  the directory of its jars
#                  (default: ${XDG_CACHE_HOME:-~/.cache}/paymentd/kafka-$KAFKA_VERSION/lib)
# A lib dir is complete when it holds the marker file .complete (written by
# fetch.sh after every jar was copied).
kafka_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -z "${KAFKA_VERSION:-}" ]]; then
  KAFKA_VERSION=$(sed -n 's|.*<kafka.version>\(.*\)</kafka.version>.*|\1|p' "$kafka_dir/pom.xml" | head -n 1)
  [[ -n "$KAFKA_VERSION" ]] || { echo "kafka: no <kafka.version> in $kafka_dir/pom.xml" >&2; exit 1; }
fi
if [[ -z "${KAFKA_LIB_DIR:-}" ]]; then
  cache_home=${XDG_CACHE_HOME:-${HOME:-/root}/.cache}
  KAFKA_LIB_DIR=$cache_home/paymentd/kafka-$KAFKA_VERSION/lib
fi
export KAFKA_VERSION KAFKA_LIB_DIR
kafka_lib_complete() { [[ -f "$KAFKA_LIB_DIR/.complete" ]]; }

# Sets kafka_java_major (e.g. 17) and kafka_cds_archive: the class-data-sharing
# archive of the broker's classes for this JVM build (written by fetch.sh, used
# by kafka-test-server.sh; it saves about 40% of the broker's start-up).
kafka_java_probe() {
  local settings vm
  command -v java >/dev/null || return 1
  settings=$(java -XshowSettings:properties -version 2>&1) || return 1
  kafka_java_major=$(sed -n 's/^ *java.specification.version = //p' <<<"$settings")
  kafka_java_major=${kafka_java_major%%.*}
  vm=$(sed -n 's/^ *java.vm.version = //p' <<<"$settings" | tr -c 'A-Za-z0-9.+_\n-' '_')
  # shellcheck disable=SC2034  # used by the scripts that source this file
  kafka_cds_archive=$KAFKA_LIB_DIR/cds-java-$vm.jsa
}
