#!/usr/bin/env python3
"""Turns bench/run.sh's raw measurements (one JSON object a line) into the
results JSON (figures: median, min, max over the runs, with the issue 12 targets
and pass/fail) and a Markdown table.

Usage: report.py RAW.jsonl OUT.json OUT.md
"""
import json
import statistics
import sys


def stats(values):
    values = [v for v in values if isinstance(v, (int, float))]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values), "values": values}


def fmt(s, digits=0, scale=1.0):
    if s is None:
        return "n/a"
    f = "{:,.%df}" % digits
    med, lo, hi = (f.format(s[k] * scale) for k in ("median", "min", "max"))
    return med if s["n"] == 1 else f"{med} ({lo}–{hi})"


def main(raw_path, json_path, md_path):
    rows = [json.loads(line) for line in open(raw_path) if line.strip()]
    machine = dict(next((r for r in rows if r["bench"] == "machine"), {}))
    end = next((r for r in rows if r["bench"] == "end"), {})
    machine.update({k: v for k, v in end.items() if k != "bench"})
    machine.pop("bench", None)
    brokers = []
    for r in rows:
        b = r.get("broker")
        if b and r["bench"] not in ("skipped",) and b not in brokers:
            brokers.append(b)
    figures = []  # dicts: broker, figure, unit, stats, target, pass

    def add(broker, name, unit, s, target=None, ok=None, digits=0, note=""):
        figures.append({"broker": broker, "figure": name, "unit": unit, "stats": s,
                        "target": target, "pass": ok, "digits": digits, "note": note})

    def sel(**kw):
        return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]

    topo = stats([r.get("decisions_per_cpu_s") for r in sel(bench="topology")])
    if topo:
        name = next(r["name"] for r in sel(bench="topology")).split("/iterations")[0]
        add("-", f"topology alone (payments_bench {name}): decisions per CPU second",
            "decisions/CPU s", topo, ">= 150,000", topo["median"] >= 150000)

    for b in brokers:
        pd = {r["run"]: r for r in sel(bench="throughput", broker=b, system="paymentd")}
        fl = {r["run"]: r for r in sel(bench="throughput", broker=b, system="floor")}
        pe = {r["run"]: r for r in sel(bench="throughput", broker=b, system="peer")}
        if pd:
            add(b, "throughput: paymentd, first to last confirmation (read_committed)",
                "requests/s", stats([r["per_s"] for r in pd.values()]))
            add(b, "paymentd output records per input (confirmations + changelogs, counted)",
                "records", stats([r["fanout"] for r in pd.values()]), digits=3)
        if fl:
            add(b, "floor: exactly-once identity copy, same fan-out (eos_copy)", "requests/s",
                stats([r["per_s"] for r in fl.values()]))
            ratio = stats([pd[k]["per_s"] / fl[k]["per_s"] for k in pd if k in fl and fl[k]["per_s"]])
            if ratio:
                add(b, "paymentd / floor (per run)", "ratio", ratio, ">= 0.7", ratio["median"] >= 0.7,
                    digits=2)
        if pe:
            add(b, "Kafka Streams peer, same input and broker", "requests/s",
                stats([r["per_s"] for r in pe.values()]))
            ratio = stats([pd[k]["per_s"] / pe[k]["per_s"] for k in pd if k in pe and pe[k]["per_s"]])
            if ratio:
                add(b, "paymentd / Kafka Streams peer (per run)", "ratio", ratio, ">= 2",
                    ratio["median"] >= 2, digits=2)
        if pd:
            cpu = stats([r["cpu_s"] / r["requests"] * 1e6 for r in pd.values()])
            add(b, "paymentd CPU seconds per 1,000,000 decisions (utime+stime, realistic mix)",
                "CPU s", cpu, digits=1)
        if fl:
            add(b, "floor CPU seconds per 1,000,000 inputs (for comparison)", "CPU s",
                stats([r["cpu_s"] / r["requests"] * 1e6 for r in fl.values()]), digits=1)
        if pe:
            add(b, "peer CPU seconds per 1,000,000 decisions (JVM, for comparison)", "CPU s",
                stats([r["cpu_s"] / r["requests"] * 1e6 for r in pe.values()]), digits=1)
        for system in ("paymentd", "peer"):
            lat = sel(bench="latency", broker=b, system=system)
            for rate in sorted({r["rate"] for r in lat}):
                at = [r for r in lat if r["rate"] == rate]
                # Held: at least 98% of the offered rate sent, and sends at most
                # 10 ms behind their due times at p99.
                held = all(isinstance(r.get("sent_per_s"), (int, float)) and r["sent_per_s"] >= 0.98 * rate
                           and isinstance(r.get("lag_p99_ms"), (int, float)) and r["lag_p99_ms"] <= 10
                           for r in at)
                complete = all(r.get("confirmed") == r.get("expected") for r in at)
                note = "" if held else "offered rate NOT held by the load generator; "
                note += "" if complete else "not every request confirmed in time; "
                note += "sent %s/s, send lag p99 %s ms" % (
                    fmt(stats([r.get("sent_per_s") for r in at])),
                    fmt(stats([r.get("lag_p99_ms") for r in at]), 1))
                for key, label, limit in (("p50_ms", "p50", None), ("p99_ms", "p99", 25),
                                          ("p999_ms", "p99.9", 50)):
                    s = stats([r.get(key) for r in at])
                    target = ok = None
                    if system == "paymentd" and rate == 10000 and limit is not None:
                        target, ok = f"<= {limit} ms", s is not None and s["median"] <= limit
                    add(b, f"latency {system} at {rate:,}/s: {label} send → readable",
                        "ms", s, target, ok, digits=1, note=note if key == "p50_ms" else "")
                    figures[-1].update({"latency": True, "system": system, "rate": rate,
                                        "quantile": label})
        load = sel(bench="load", broker=b)
        rs = sel(bench="restore", broker=b)
        if rs:
            keys = rs[0]["keys"]
            rate = stats([r["per_s"] for r in rs])
            add(b, f"restore of a task with {keys:,} requests' keys (state dir deleted)",
                "records/s", rate, ">= 200,000", rate is not None and rate["median"] >= 200000,
                note="%s changelog records, %s idempotency entries; start to ready %s s" % (
                    fmt(stats([r["restored_records"] for r in rs])), rs[0].get("idempotency_entries"),
                    fmt(stats([r["start_to_ready_s"] for r in rs]), 1)))
        for phase, what in ((load, "after deciding them"), (rs, "after restoring them")):
            if not phase:
                continue
            keys = phase[0]["keys"]
            peak = stats([r["rss_hwm_mib"] for r in phase])
            target = ok = None
            if keys >= 1000000:
                target, ok = "<= 512 MiB", peak["max"] <= 512
            add(b, f"peak RSS (VmHWM) with {keys:,} keys, {what}", "MiB", peak, target, ok, digits=1)
        if load:
            add(b, f"paymentd CPU seconds per 1,000,000 decisions ({load[0]['keys']:,} distinct requests, 1 partition)",
                "CPU s", stats([r["cpu_s"] / r["keys"] * 1e6 for r in load]), digits=1)

    skipped = [r for r in rows if r["bench"] == "skipped"]
    out = {"machine": machine, "figures": [{k: v for k, v in f.items() if k != "digits"} for f in figures],
           "skipped": skipped, "raw": rows}
    with open(json_path, "w") as f:
        json.dump(out, f, indent=1)

    m = machine
    lines = [
        f"## paymentd benchmarks ({'quick' if m.get('quick') == 1 else 'full'}; {m.get('started', '?')})",
        "",
        f"Machine: {m.get('cpu_model')}, {m.get('cores')} cores, {m.get('ram_gib')} GiB RAM, "
        f"{m.get('os')}, kernel {m.get('kernel')}; librdkafka {m.get('librdkafka')}, "
        f"RocksDB {m.get('rocksdb')}, Apache Kafka {m.get('kafka')}, {m.get('java')}; "
        f"revision {m.get('revision')}. Load average {m.get('loadavg_start')} at start, "
        f"{m.get('loadavg_end')} at end (the machine is shared: figures are noisy).",
        "",
        f"Each figure: median of {m.get('runs')} run(s) (min–max). {m.get('requests'):,} requests "
        f"for throughput; {m.get('rate_seconds')} s per offered rate.",
        "",
        "| broker | figure | value | unit | target | pass |",
        "|---|---|---|---|---|---|",
    ]
    verdict = lambda f: "" if f["pass"] is None else ("PASS" if f["pass"] else "FAIL")
    for f in figures:
        if f.get("latency"):
            continue
        note = f" — {f['note']}" if f["note"] else ""
        lines.append(f"| {f['broker']} | {f['figure']}{note} | {fmt(f['stats'], f['digits'])} | "
                     f"{f['unit']} | {f['target'] or ''} | {verdict(f)} |")
    for s in skipped:
        lines.append(f"| {s.get('broker', '-')} | skipped {s.get('system', '')}: {s.get('reason')} | | | | |")
    lat = [f for f in figures if f.get("latency")]
    if lat:
        lines += ["", "Latency, send → confirmation readable (read_committed), ms; target at "
                  "10,000/s: p99 <= 25, p99.9 <= 50:", "",
                  "| broker | system | offered/s | p50 | p99 | p99.9 | pass | load generator |",
                  "|---|---|---|---|---|---|---|---|"]
        keys = []
        for f in lat:
            k = (f["broker"], f["system"], f["rate"])
            if k not in keys:
                keys.append(k)
        for k in keys:
            q = {f["quantile"]: f for f in lat if (f["broker"], f["system"], f["rate"]) == k}
            oks = [f["pass"] for f in q.values() if f["pass"] is not None]
            ok = "" if not oks else ("PASS" if all(oks) else "FAIL")
            lines.append(f"| {k[0]} | {k[1]} | {k[2]:,} | {fmt(q['p50']['stats'], 1)} | "
                         f"{fmt(q['p99']['stats'], 1)} | {fmt(q['p99.9']['stats'], 1)} | {ok} | "
                         f"{q['p50']['note']} |")
    with open(md_path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
