#!/usr/bin/env bash
# Checks of the operations files (docker/, docs/runbooks.md). Needs the Debian
# packages of scripts/setup.sh (its ops packages) (docker-compose, prometheus for
# promtool, python3-yaml); no Docker engine.
#
#   scripts/check-ops.sh                          static checks:
#     docker-compose config, the Dockerfile, promtool check config / rules,
#     promtool test rules, the dashboard JSON, runbook links and rule tests
#   scripts/check-ops.sh --scrape FILE... [--bin-dir DIR]
#     also: promtool check metrics of each scrape (Prometheus text of a live
#     /metrics), and every metric and label the dashboard and the rules query
#     present in the scrapes;
#     with --bin-dir (the build directory): the runtime packages of the
#     Dockerfile against the shared libraries of the binaries, and the
#     PAYMENTD_* / PAYMENTS_SINK_* variables of docker-compose.yml against the
#     daemons' configuration loaders (--print-config).
#
# Exit status: 0 when every check passes, 1 otherwise (each failure is named).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
docker_dir=$root/docker
scrapes=()
bin_dir=""
while (($#)); do
  case "$1" in
    --scrape) scrapes+=("${2:?--scrape FILE}"); shift 2 ;;
    --bin-dir) bin_dir=${2:?--bin-dir DIR}; shift 2 ;;
    *) echo "usage: check-ops.sh [--scrape FILE]... [--bin-dir DIR]" >&2; exit 2 ;;
  esac
done

failures=0
pass() { echo "ok    $1"; }
fail() { echo "FAIL  $1"; failures=$((failures + 1)); }
# run NAME COMMAND...: runs the command, shows its output on failure.
run() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then pass "$name"; else fail "$name"; echo "$out" | sed 's/^/      /'; fi
}

missing=()
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v promtool >/dev/null || missing+=("promtool (package prometheus)")
python3 -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
if ((${#missing[@]})); then
  echo "check-ops: missing ${missing[*]}; install the packages of scripts/setup.sh (its ops packages)" >&2
  exit 1
fi

# --- docker-compose.yml ------------------------------------------------------
run "docker-compose config" docker-compose -f "$docker_dir/docker-compose.yml" config -q

# --- Dockerfile ---------------------------------------------------------------
if command -v hadolint >/dev/null; then
  run "hadolint docker/Dockerfile" hadolint "$docker_dir/Dockerfile"
else
  echo "note  hadolint is not packaged by Debian 12: docker/Dockerfile is not linted," \
    "only the structure checks below run"
fi
dockerfile_structure() {
  python3 - "$docker_dir/Dockerfile" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
lines = re.sub(r"\\\n", " ", text).splitlines()
instr = [l.strip() for l in lines if l.strip() and not l.strip().startswith("#")]
problems = []
froms = [l for l in instr if l.upper().startswith("FROM ")]
if len(froms) < 2:
    problems.append("not a multi-stage build")
for f in froms:
    image = f.split()[1]
    if ":" not in image or image.endswith(":latest"):
        problems.append(f"base image without a fixed tag: {image}")
last = max(i for i, l in enumerate(instr) if l.upper().startswith("FROM "))
final = instr[last:]
users = [l.split()[1] for l in final if l.upper().startswith("USER ")]
if not users or users[-1].split(":")[0] in ("root", "0"):
    problems.append("the runtime stage does not run as a non-root user")
if not any(l.upper().startswith("HEALTHCHECK ") and "/healthz" in l for l in final):
    problems.append("the runtime stage has no HEALTHCHECK on /healthz")
for l in instr:
    if "apt-get install" in l:
        if "--no-install-recommends" not in l:
            problems.append("apt-get install without --no-install-recommends")
        if "rm -rf /var/lib/apt/lists" not in l:
            problems.append("apt-get install without removing /var/lib/apt/lists")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
EOF
}
run "Dockerfile structure (multi-stage, tagged bases, non-root, HEALTHCHECK)" dockerfile_structure

# --- Prometheus ---------------------------------------------------------------
run "promtool check config docker/prometheus/prometheus.yml" \
  promtool check config "$docker_dir/prometheus/prometheus.yml"
run "promtool check rules docker/prometheus/alerts.yml" \
  promtool check rules "$docker_dir/prometheus/alerts.yml"
run "promtool test rules docker/prometheus/alerts_test.yml" \
  promtool test rules "$docker_dir/prometheus/alerts_test.yml"
run "alerts: runbook links into docs/runbooks.md, a firing test per alert" \
  python3 "$root/scripts/check_ops_metrics.py" rules "$docker_dir/prometheus/alerts.yml" \
  "$docker_dir/prometheus/alerts_test.yml" "$root/docs/runbooks.md"

# --- Grafana ------------------------------------------------------------------
run "dashboard JSON and its datasource" \
  python3 "$root/scripts/check_ops_metrics.py" dashboard \
  "$docker_dir/grafana/dashboards/payments.json" \
  "$docker_dir/grafana/provisioning/datasources/prometheus.yml"

# --- Live scrapes -------------------------------------------------------------
# promtool check metrics prints one line per problem (and exits 0 for some).
promtool_lint() {
  local out status
  out=$(promtool check metrics <"$1" 2>&1)
  status=$?
  echo "$out"
  [[ $status -eq 0 && -z "$out" ]]
}
for scrape in "${scrapes[@]}"; do
  run "promtool check metrics $(basename "$scrape")" promtool_lint "$scrape"
done
if ((${#scrapes[@]})); then
  run "metrics and labels of the dashboard and the rules are in the scrapes" \
    python3 "$root/scripts/check_ops_metrics.py" names \
    "$docker_dir/grafana/dashboards/payments.json" "$docker_dir/prometheus/alerts.yml" \
    "${scrapes[@]}"
fi

# --- Binaries -----------------------------------------------------------------
if [[ -n "$bin_dir" ]]; then
  runtime_packages() {
    local bins=("$bin_dir"/src/paymentd/paymentd "$bin_dir"/src/sink/payments-sink
      "$bin_dir"/src/tools/payments-crm-receiver "$bin_dir"/src/tools/payments-loadgen
      "$bin_dir"/src/tools/payments-verify "$bin_dir"/src/tools/payments-topics)
    local runtime_stage status=0 lib pkg
    runtime_stage=$(awk '/^FROM /{stage=""} {stage=stage $0 "\n"} END{printf "%s", stage}' \
      "$docker_dir/Dockerfile")
    # The libraries the binaries link directly (NEEDED); the packages that
    # provide them pull in their own dependencies.
    local needed
    needed=$(for b in "${bins[@]}"; do
      ldd "$b" | awk -v want="$(objdump -p "$b" | awk '/NEEDED/{printf " %s ", $2}')" \
        '/=> \// && index(want, " " $1 " ") {print $3}'
    done | sort -u)
    [[ -n "$needed" ]] || { echo "no shared libraries found (binaries missing?)"; return 1; }
    for lib in $needed; do
      pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "*/$(basename "$lib")" 2>/dev/null)
      pkg=$(head -1 <<<"$pkg" | cut -d: -f1)
      if [[ -z "$pkg" ]]; then
        echo "$lib: no Debian package owns it"; status=1
      elif ! tr -s ' \t\\' '\n' <<<"$runtime_stage" | grep -qxF "$pkg"; then
        echo "$lib: package $pkg is not installed by the runtime stage"; status=1
      fi
    done
    return $status
  }
  run "Dockerfile runtime stage installs the libraries the binaries link" runtime_packages

  compose_environment() {
    local status=0 checked=0 service daemon env_file out vars
    while IFS=$'\t' read -r service daemon env_file; do
      checked=$((checked + 1))
      mapfile -t vars <"$env_file"
      rm -f "$env_file"
      if ! out=$(env -i PATH="$PATH" "${vars[@]}" "$bin_dir/$daemon" --print-config 2>&1); then
        echo "$service: $daemon rejects its environment: $out"; status=1
      fi
    done < <(docker-compose -f "$docker_dir/docker-compose.yml" config 2>/dev/null |
      python3 -c '
import sys, tempfile, yaml
for name, svc in sorted(yaml.safe_load(sys.stdin)["services"].items()):
    if "build" not in svc:  # not the image of docker/Dockerfile
        continue
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    command = svc.get("command") or ["paymentd"]
    daemon = {"paymentd": "src/paymentd/paymentd", "payments-sink": "src/sink/payments-sink"}.get(command[0])
    if daemon is None:
        continue
    f = tempfile.NamedTemporaryFile("w", delete=False, prefix="check-ops-env.")
    f.write("\n".join(f"{k}={v}" for k, v in env.items()) + "\n")
    f.close()
    print(f"{name}\t{daemon}\t{f.name}")
')
    ((checked > 0)) || { echo "no paymentd or payments-sink service found"; return 1; }
    return $status
  }
  run "docker-compose PAYMENTD_* / PAYMENTS_SINK_* variables accepted (--print-config)" \
    compose_environment
fi

if ((failures)); then
  echo "check-ops: $failures check(s) failed"
  exit 1
fi
echo "check-ops: all checks passed"
