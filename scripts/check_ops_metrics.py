#!/usr/bin/env python3
"""Checks of the Grafana dashboard and the Prometheus rules (scripts/check-ops.sh).

  check_ops_metrics.py dashboard DASHBOARD.json DATASOURCE.yml
      The JSON parses; every panel queries the provisioned datasource and has
      PromQL targets; panel ids are unique.
  check_ops_metrics.py rules ALERTS.yml ALERTS_TEST.yml RUNBOOKS.md
      Every alert has a runbook_url docs/runbooks.md#<alert name in lower case>
      whose section exists, and a unit test where it fires.
  check_ops_metrics.py names DASHBOARD.json ALERTS.yml SCRAPE.txt...
      Every metric a dashboard panel or a rule queries is in one of the scrapes
      (histogram _bucket/_sum/_count map to their family), and so is every
      label used in a selector or a by/without/on/ignoring clause, and every
      value of an `=` matcher.

Exit status 0 when everything holds, 1 with one line per problem otherwise.
"""
import json
import re
import sys

import yaml

# Series Prometheus makes itself, not exported by a daemon.
SYNTHETIC_METRICS = {"up"}
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"job", "instance"}
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "offset", "bool", "inf", "nan", "atan2"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

problems = []


def problem(text):
    problems.append(text)


# --- PromQL ----------------------------------------------------------------

class Query:
    """What one PromQL expression uses."""

    def __init__(self, expr):
        self.expr = expr
        self.metrics = set()    # metric names
        self.matchers = []      # (metric or None, label, op, value)
        self.grouping = set()   # labels of by/without/on/ignoring/group_* clauses
        self._parse(expr)

    def _parse(self, expr):
        text = re.sub(r"\$\{?\w+\}?", "", expr)  # Grafana variables ($__rate_interval)
        text = re.sub(r"\[[^\]]*\]", "", text)   # ranges and subqueries

        def selector(m):
            name, body = m.group(1), m.group(2)
            for lm in re.finditer(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', body):
                self.matchers.append((name or None, lm.group(1), lm.group(2), lm.group(3)))
            return (name or "") + " "
        text = re.sub(r"([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}", selector, text)
        text = re.sub(r'"(?:[^"\\]|\\.)*"', " ", text)  # other strings (label_replace...)

        def grouping(m):
            for label in re.split(r"\s*,\s*", m.group(2).strip()):
                if label:
                    self.grouping.add(label)
            return " "
        text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)",
                      grouping, text)
        for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)\s*(\()?", text):
            name, call = m.group(1), m.group(2)
            if call or name in KEYWORDS:
                continue
            self.metrics.add(name)


# --- Scrapes ---------------------------------------------------------------

class Scrape:
    """Families, their label names and values, from Prometheus text format files."""

    def __init__(self, paths):
        self.types = {}   # family -> type
        self.labels = {}  # family -> {label -> {values}}
        for path in paths:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
            for line in lines:
                m = re.match(r"# TYPE (\S+) (\S+)", line)
                if m:
                    self.types[m.group(1)] = m.group(2)
            for line in lines:
                if not line or line.startswith("#"):
                    continue
                m = re.match(r"([a-zA-Z_:][\w:]*)(\{(.*)\})?\s", line)
                if not m:
                    continue
                family = self.family_of(m.group(1))
                labels = self.labels.setdefault(family, {})
                for lm in re.finditer(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""):
                    labels.setdefault(lm.group(1), set()).add(lm.group(2))

    def family_of(self, name):
        for suffix in HISTOGRAM_SUFFIXES:
            base = name[: -len(suffix)]
            if name.endswith(suffix) and self.types.get(base) in ("histogram", "summary"):
                return base
        return name

    def has(self, name):
        return self.family_of(name) in self.labels


# --- Sources ---------------------------------------------------------------

def dashboard_targets(dashboard):
    """(panel title, expr) of every target of every panel, rows included."""
    out = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                out.append((panel.get("title", "?"), target.get("expr", "")))
            walk(panel.get("panels", []))
    walk(dashboard.get("panels", []))
    return out


def rule_exprs(rules):
    out = []
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            out.append((rule.get("alert") or rule.get("record"), rule["expr"]))
    return out


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        problem(f"{path}: {e}")
        return None


def load_yaml(path):
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        problem(f"{path}: {e}")
        return None


# --- Commands --------------------------------------------------------------

def check_dashboard(dashboard_path, datasource_path):
    dashboard = load_json(dashboard_path)
    datasources = load_yaml(datasource_path)
    if dashboard is None or datasources is None:
        return
    uids = {d.get("uid") for d in datasources.get("datasources", [])}
    for key in ("uid", "title", "panels"):
        if not dashboard.get(key):
            problem(f"{dashboard_path}: no {key}")
    ids = []

    def walk(panels):
        for panel in panels:
            ids.append(panel.get("id"))
            title = panel.get("title", "?")
            if panel.get("type") != "row":
                ds = panel.get("datasource") or {}
                if ds.get("uid") not in uids:
                    problem(f"{dashboard_path}: panel '{title}': datasource {ds} is not provisioned "
                            f"(uids {sorted(uids)})")
                if not panel.get("targets"):
                    problem(f"{dashboard_path}: panel '{title}' has no query")
                for target in panel.get("targets", []):
                    if not target.get("expr", "").strip():
                        problem(f"{dashboard_path}: panel '{title}': empty expr")
                if "gridPos" not in panel:
                    problem(f"{dashboard_path}: panel '{title}' has no gridPos")
            walk(panel.get("panels", []))
    walk(dashboard.get("panels", []))
    if len(ids) != len(set(ids)):
        problem(f"{dashboard_path}: duplicate panel ids")


def check_rules(alerts_path, tests_path, runbooks_path):
    rules = load_yaml(alerts_path)
    tests = load_yaml(tests_path)
    try:
        with open(runbooks_path, encoding="utf-8") as f:
            runbooks = f.read()
    except OSError as e:
        problem(f"{runbooks_path}: {e}")
        return
    if rules is None or tests is None:
        return
    headings = {re.sub(r"[^a-z0-9_ -]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^#+\s+(.*)$", runbooks, re.M)}
    fired = set()
    for test in tests.get("tests", []):
        for case in test.get("alert_rule_test", []):
            if case.get("exp_alerts"):
                fired.add(case["alertname"])
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert")
            if not name:
                continue
            url = rule.get("annotations", {}).get("runbook_url", "")
            expected = "docs/runbooks.md#" + name.lower()
            if url != expected:
                problem(f"{alerts_path}: {name}: runbook_url '{url}', expected '{expected}'")
            if name.lower() not in headings:
                problem(f"{runbooks_path}: no section '{name}' (runbook of the alert)")
            if name not in fired:
                problem(f"{tests_path}: no test where {name} fires")


def check_names(dashboard_path, alerts_path, scrape_paths):
    dashboard = load_json(dashboard_path)
    rules = load_yaml(alerts_path)
    if dashboard is None or rules is None:
        return
    scrape = Scrape(scrape_paths)
    sources = [(f"{dashboard_path}: panel '{t}'", e) for t, e in dashboard_targets(dashboard)]
    sources += [(f"{alerts_path}: {n}", e) for n, e in rule_exprs(rules)]
    used = set()
    for where, expr in sources:
        q = Query(expr)
        if not q.metrics:
            problem(f"{where}: no metric found in '{expr}'")
        known_labels = set(TARGET_LABELS)
        for name in q.metrics:
            used.add(name)
            if name in SYNTHETIC_METRICS:
                continue
            if not scrape.has(name):
                problem(f"{where}: metric {name} is in no scrape")
                continue
            known_labels |= set(scrape.labels[scrape.family_of(name)])
            if name.endswith("_bucket"):
                known_labels.add("le")
        for metric, label, op, value in q.matchers:
            if metric is None or metric in SYNTHETIC_METRICS or not scrape.has(metric):
                continue
            labels = scrape.labels[scrape.family_of(metric)]
            if label in TARGET_LABELS:
                continue
            if label not in labels:
                problem(f"{where}: {metric} has no label {label}")
            elif op == "=" and value not in labels[label]:
                problem(f"{where}: {metric}{{{label}=\"{value}\"}} matches no series "
                        f"(values: {sorted(labels[label])})")
        for label in q.grouping - known_labels:
            problem(f"{where}: label {label} of a grouping clause is on none of its metrics")
    print(f"check_ops_metrics: {len(sources)} queries use {len(used)} metrics, "
          f"all checked against {len(scrape_paths)} scrape(s)")


def main(argv):
    if len(argv) >= 4 and argv[1] == "dashboard":
        check_dashboard(argv[2], argv[3])
    elif len(argv) == 5 and argv[1] == "rules":
        check_rules(argv[2], argv[3], argv[4])
    elif len(argv) >= 5 and argv[1] == "names":
        check_names(argv[2], argv[3], argv[4:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
