#!/usr/bin/env bash
# Copies the pinned Apache Kafka broker (pom.xml) and its runtime dependencies
# from Maven Central into KAFKA_LIB_DIR (see env.sh), and prints that directory.
# A no-op when it is already complete. Then writes a class-data-sharing archive
# of the broker's classes for the installed JVM (see make_cds_archive). Needs
# java and mvn (scripts/setup.sh installs them). Concurrent runs are serialized
# by a lock file. Extra Maven options: KAFKA_MVN_OPTS (e.g. -Dmaven.repo.local=DIR).
#   scripts/kafka/fetch.sh            # -> /root/.cache/paymentd/kafka-4.1.2/lib
#   KAFKA_VERSION=3.9.1 scripts/kafka/fetch.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$(dirname "$0")/env.sh"

# The class-data-sharing archive of the broker's classes for this JVM: written
# by starting a broker once and stopping it (some 15 s). Optional: a failure
# only warns, and KAFKA_CDS=0 skips it.
make_cds_archive() {
  [[ "${KAFKA_CDS:-1}" != 0 ]] || return 0
  kafka_java_probe || return 0
  [[ -f "$kafka_cds_archive" ]] && return 0
  local node dump server=$kafka_dir/../kafka-test-server.sh
  node=$(mktemp -d "${TMPDIR:-/tmp}/kafka-cds.XXXXXX")
  dump=$kafka_cds_archive.tmp.$$
  echo "kafka-fetch: writing the class-data-sharing archive $kafka_cds_archive" >&2
  if KAFKA_CDS_DUMP=$dump "$server" start "$node/node" >/dev/null 9>&- &&
    KAFKA_STOP_TIMEOUT=120 "$server" stop "$node/node" 9>&- && [[ -s "$dump" ]]; then
    mv "$dump" "$kafka_cds_archive"
  else
    echo "kafka-fetch: warning: no class-data-sharing archive (the broker starts more slowly)" >&2
    rm -f "$dump"
  fi
  rm -rf "$node"
}

if kafka_lib_complete && { [[ "${KAFKA_CDS:-1}" == 0 ]] || { kafka_java_probe && [[ -f "$kafka_cds_archive" ]]; }; }; then
  echo "$KAFKA_LIB_DIR"
  exit 0
fi
command -v java >/dev/null || { echo "kafka-fetch: java not found (run scripts/setup.sh)" >&2; exit 1; }

parent=$(dirname "$KAFKA_LIB_DIR")
mkdir -p "$parent"
exec 9>"$parent/.fetch.lock"
flock 9
if kafka_lib_complete; then  # fetched by a concurrent run while we waited (or only the archive is missing)
  make_cds_archive
  echo "$KAFKA_LIB_DIR"
  exit 0
fi

command -v mvn >/dev/null || { echo "kafka-fetch: mvn not found (run scripts/setup.sh)" >&2; exit 1; }
echo "kafka-fetch: fetching Apache Kafka $KAFKA_VERSION into $KAFKA_LIB_DIR" >&2
tmp=$(mktemp -d "$parent/.lib.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
# shellcheck disable=SC2086  # word splitting of KAFKA_MVN_OPTS is intended
if ! mvn -q -B ${KAFKA_MVN_OPTS:-} -f "$kafka_dir/pom.xml" dependency:copy-dependencies \
  -Dkafka.version="$KAFKA_VERSION" -DoutputDirectory="$tmp" >"$tmp/.mvn.log" 2>&1; then
  cat "$tmp/.mvn.log" >&2
  echo "kafka-fetch: mvn dependency:copy-dependencies failed for Kafka $KAFKA_VERSION" >&2
  exit 1
fi
rm -f "$tmp/.mvn.log"
ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 ||
  { echo "kafka-fetch: kafka_2.13-$KAFKA_VERSION.jar missing after the copy" >&2; exit 1; }
echo "$KAFKA_VERSION" >"$tmp/.complete"
rm -rf "$KAFKA_LIB_DIR"
mv "$tmp" "$KAFKA_LIB_DIR"
trap - EXIT
echo "kafka-fetch: $(find "$KAFKA_LIB_DIR" -name '*.jar' | wc -l) jars, $(du -sh "$KAFKA_LIB_DIR" | cut -f1), $((SECONDS - start)) s" >&2
make_cds_archive
echo "$KAFKA_LIB_DIR"
