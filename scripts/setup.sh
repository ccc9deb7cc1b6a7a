#!/usr/bin/env bash
# Installs the Debian 12 packages this project needs, then fetches the Apache
# Kafka broker the `kafka` tests run against (scripts/kafka/fetch.sh: jars from
# Maven Central into a cache directory). A no-op when everything is present.
# PAYMENTS_KAFKA_FETCH=0 skips the Kafka fetch (the `kafka` tests then skip,
# unless PAYMENTS_REQUIRE_KAFKA is set).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

packages=(
  build-essential cmake pkg-config git
  librdkafka-dev librocksdb-dev libpqxx-dev libprotobuf-dev protobuf-compiler
  prometheus-cpp-dev libcivetweb-dev libgtest-dev libgmock-dev libbenchmark-dev
  libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libssl-dev postgresql kcat libcurl4-openssl-dev curl
  # The `ops` checks (scripts/check-ops.sh): compose validation, promtool.
  docker-compose prometheus python3 python3-yaml
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# The test broker (scripts/kafka/README.md) needs a Java 17+ runtime, and Maven
# to fetch it; any installed ones do.
command -v java >/dev/null || missing+=(default-jre-headless)
command -v mvn >/dev/null || missing+=(maven)

if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ "${PAYMENTS_KAFKA_FETCH:-1}" != 0 ]]; then
  "$root/scripts/kafka/fetch.sh" >/dev/null ||
    { echo "setup: fetching the Kafka test broker failed (PAYMENTS_KAFKA_FETCH=0 skips it)" >&2; exit 1; }
fi
