#!/usr/bin/env bash
# Checks that docs/configuration.md lists exactly the configuration keys of
# paymentd and payments-sink, with their defaults, as the binaries print them
# with --print-config. No build: it runs already built binaries.
#
#   scripts/check-config-docs.sh BUILD_DIR
#   scripts/check-config-docs.sh PAYMENTD_BIN PAYMENTS_SINK_BIN [DOC]
#
# A key counts as a key of a daemon when the daemon accepts `--set key=value`:
# a documented key that --print-config omits (an optional key without default,
# e.g. commit.max.records) is probed with --set, and so is a printed key that
# is not documented (payments-sink prints some runtime keys it rejects when set;
# those are reported and skipped). Exit 0 when everything matches, 1 otherwise.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
doc="${here}/../docs/configuration.md"
if [[ $# -eq 1 && -d "$1" ]]; then
  paymentd="$1/src/paymentd/paymentd"
  sink="$1/src/sink/payments-sink"
elif [[ $# -ge 2 ]]; then
  paymentd="$1"
  sink="$2"
  [[ $# -ge 3 ]] && doc="$3"
else
  echo "usage: $0 BUILD_DIR | PAYMENTD_BIN PAYMENTS_SINK_BIN [DOC]" >&2
  exit 2
fi
for f in "$paymentd" "$sink"; do
  [[ -x "$f" ]] || { echo "check-config-docs: not an executable: $f" >&2; exit 2; }
done
[[ -f "$doc" ]] || { echo "check-config-docs: no such file: $doc" >&2; exit 2; }

exec python3 - "$paymentd" "$sink" "$doc" <<'PY'
import os, re, subprocess, sys

paymentd, sink, doc = sys.argv[1:4]
# Minimum required keys of each daemon (values are never contacted).
daemons = {
    "paymentd": (paymentd, ["bootstrap.servers=127.0.0.1:9"]),
    "payments-sink": (sink, ["bootstrap.servers=127.0.0.1:9",
                             "sink.database.url=postgresql://check@127.0.0.1:9/check"]),
}
# A clean environment: no PAYMENTD_* / PAYMENTS_SINK_* variable may change defaults.
env = {k: v for k, v in os.environ.items()
       if not k.startswith(("PAYMENTD_", "PAYMENTS_SINK_"))}
LINE = re.compile(r"^(\S+) = (.*) \(([^()]*)\)$")

def print_config(binary, sets):
    args = [binary, "--print-config"]
    for s in sets:
        args += ["--set", s]
    p = subprocess.run(args, capture_output=True, text=True, env=env, timeout=30)
    keys = {}
    for line in p.stdout.splitlines():
        m = LINE.match(line)
        if m:
            keys[m.group(1)] = (m.group(2), m.group(3))
    return p.returncode, keys, p.stderr.strip()

def doc_tables(text):
    tables = {}
    for m in re.finditer(r"^<!-- keys:(\S+) -->$(.*?)^<!-- /keys -->$", text, re.S | re.M):
        rows = {}
        for line in m.group(2).splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            km = re.fullmatch(r"`([^`]+)`", cells[0]) if cells else None
            if km and len(cells) >= 3:
                if km.group(1) in rows:
                    print(f"{m.group(1)}: key {km.group(1)} documented twice")
                    rows["__dup__"] = True
                rows[km.group(1)] = cells[1]
        tables[m.group(1)] = rows
    return tables

def doc_default(cell):
    """The documented default: None when not checkable (required, computed, unset)."""
    if cell.startswith("required") or "computed" in cell or cell.startswith("unset"):
        return None
    m = re.match(r"`([^`]*)`", cell)
    if not m:
        return None
    return "" if m.group(1) == '""' else m.group(1)

tables = doc_tables(open(doc, encoding="utf-8").read())
failures = 0
for name, (binary, required) in daemons.items():
    documented = tables.get(name)
    if documented is None:
        print(f"{name}: no <!-- keys:{name} --> table in {doc}")
        failures += 1
        continue
    if documented.pop("__dup__", False):
        failures += 1
    rc, printed, err = print_config(binary, required)
    if rc != 0 or not printed:
        print(f"{name}: --print-config failed (exit {rc}): {err}")
        failures += 1
        continue
    checked = skipped = 0
    for key, (value, origin) in sorted(printed.items()):
        if key in documented:
            checked += 1
            want = doc_default(documented[key])
            is_default = origin == "default" or origin.startswith("file " + name + " defaults")
            if want is not None and is_default and value != "***" and value != want:
                print(f"{name}: {key}: default is '{value}', documented '{documented[key]}'")
                failures += 1
            continue
        # Printed but not documented: a real key unless the daemon rejects it.
        prc, pkeys, perr = print_config(binary, required + [f"{key}={value}"])
        if prc != 0 and key in perr:
            print(f"{name}: note: {key} is printed by --print-config but rejected when set "
                  f"({perr}); not a key")
            skipped += 1
        else:
            print(f"{name}: {key} is a key (printed, accepted) but not in {doc}")
            failures += 1
    for key, cell in sorted(documented.items()):
        if key in printed:
            continue
        probe = doc_default(cell) or "1"
        prc, pkeys, perr = print_config(binary, required + [f"{key}={probe}"])
        if prc == 0 and key in pkeys:
            checked += 1  # an optional key without default, accepted when set
        else:
            print(f"{name}: {key} is documented but not a key of {name} ({perr or 'not printed'})")
            failures += 1
    print(f"{name}: {checked} keys match, {skipped} printed keys skipped")
print("check-config-docs: " + ("OK" if failures == 0 else f"{failures} problem(s)"))
sys.exit(1 if failures else 0)
PY
