#!/usr/bin/env python3
"""bench/report.py: turns the driver's raw.json into the terminal table,
RESULTS.md and the gnuplot chart. Python 3 standard library only.

  python3 bench/report.py --raw bench/out/results/raw.json \
      --results bench/RESULTS.md --chart bench/results.png

Every figure is the median across rounds. The part of an existing RESULTS.md
below the KEEP_MARKER line (the record of what each change bought) is carried
over into the new one.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

KEEP_MARKER = "<!-- Everything below this line is kept when bench/run regenerates this file. -->"
DEFAULT_HISTORY = """
## What each change bought

Record each change to Fezz made for performance here: what it was, the figures
before and after (same machine, same command), and the profile that motivated it.
This section is kept when `bench/run` regenerates the file.

| change | commit | /hello CPU µs/req before → after | other figures |
| --- | --- | --- | --- |
| (none yet) | | | |
"""

SCENARIO_ORDER = ["hello", "users", "echo", "counter", "pipeline", "many"]
PEER_ORDER = ["floor", "fezz", "bun", "node", "workerd"]
PEER_TITLE = {"floor": "Beast floor", "fezz": "Fezz", "bun": "Bun", "node": "Node.js", "workerd": "workerd"}
PEER_COLOR = {"floor": "#7f7f7f", "fezz": "#d62728", "bun": "#f2b134", "node": "#2ca02c", "workerd": "#1f77b4"}
METRICS = ["rps", "p50_us", "p99_us", "errors", "cpu_us_per_request", "server_cpu_percent",
           "wrk_cpu_percent", "other_cpu_percent", "other_client_cpu_percent", "idle_rss_kib", "rss_after_kib", "launch_ms"]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def scenario_label(name, settings):
    c, many, depth = settings["connections"], settings["many_connections"], settings["pipeline_depth"]
    return {
        "hello": f"hello, {c} conns",
        "users": f"/users/42, {c} conns",
        "echo": f"POST /echo 1 KiB, {c} conns",
        "counter": f"/counter, {c} conns",
        "pipeline": f"hello, pipelined x{depth}, {c} conns",
        "many": f"hello, {many} conns",
    }[name]


def peer_path(peer, scenario, runs):
    for r in runs:
        if r["peer"] == peer and r["scenario"] == scenario:
            return r["path"]
    return ""


class Results:
    def __init__(self, raw):
        self.raw = raw
        self.settings = raw["settings"]
        self.unavailable = raw.get("unavailable", {})
        self.rows = {}  # (peer, scenario) -> {"ok": [...], "failed": [...], "median": {...}}
        for r in raw["runs"]:
            row = self.rows.setdefault((r["peer"], r["scenario"]), {"ok": [], "failed": []})
            (row["failed"] if "failure" in r else row["ok"]).append(r)
        for row in self.rows.values():
            row["median"] = {m: median([r.get(m) for r in row["ok"]]) for m in METRICS}
            row["max_errors"] = max((r["errors"] for r in row["ok"]), default=None)
            row["max_server_non2xx"] = max((r.get("server_non2xx", 0) for r in row["ok"]), default=None)
        self.cold = self.cold_start()
        self.micro = self.microbenchmarks()

    def get(self, peer, scenario, metric):
        row = self.rows.get((peer, scenario))
        return row["median"][metric] if row and row["ok"] else None

    def ordered_rows(self):
        for scenario in SCENARIO_ORDER:
            for peer in PEER_ORDER + sorted({p for p, _ in self.rows} - set(PEER_ORDER)):
                if (peer, scenario) in self.rows:
                    yield peer, scenario, self.rows[(peer, scenario)]

    def cold_start(self):
        rounds = [c for c in self.raw.get("cold_start", []) if "failure" not in c]
        if not rounds:
            failures = [c.get("failure") for c in self.raw.get("cold_start", [])]
            return {"failure": "; ".join(f for f in failures if f) or "not run"}
        per_round = []
        for c in rounds:
            cold, warm = (statistics.median(c[k]) for k in ("cold_us", "warm_us"))
            per_round.append({"cold": cold, "warm": warm, "extra": cold - warm,
                              "loads_ok": c["loads_as_expected"], "loads": c["loads"], "samples": c["samples"]})
        return {
            "rounds": per_round,
            "cold": median([r["cold"] for r in per_round]),
            "warm": median([r["warm"] for r in per_round]),
            "extra": median([r["extra"] for r in per_round]),
            "loads_ok": all(r["loads_ok"] for r in per_round),
            "samples": sum(r["samples"] for r in per_round),
            "idle_timeout_s": rounds[0]["idle_timeout_s"],
        }

    def microbenchmarks(self):
        micro = self.raw.get("micro")
        if not micro:
            return {"failure": "not run"}
        if "failure" in micro:
            return {"failure": micro["failure"]}
        benchmarks = micro["report"]["benchmarks"]
        aggregated = any(b.get("run_type") == "aggregate" for b in benchmarks)
        out = {}
        for b in benchmarks:
            if aggregated and b.get("aggregate_name") != "median":
                continue
            name = b.get("run_name", b["name"])
            scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
            out[name] = {"ns": b["real_time"] * scale, "cpu_ns": b["cpu_time"] * scale,
                         "items_per_second": b.get("items_per_second")}
        context = micro["report"].get("context", {})
        return {"by_name": out, "command": micro.get("command", ""), "context": context,
                "repetitions": self.settings["rounds"] if aggregated else 1}


# ---------------------------------------------------------------- formatting

def fmt(value, kind):
    if value is None:
        return "–"
    if kind == "rps":
        return f"{value:,.0f}"
    if kind == "ms":
        return f"{value / 1000:.2f}"
    if kind == "mib":
        return f"{value / 1024:.1f}"
    if kind == "int":
        return f"{value:.0f}"
    if kind == "pct":
        return f"{value:.0f}%"
    return f"{value:.2f}"


def latency_ms(value):
    # wrk's histogram answers 0 for a percentile it cannot place (few samples, as in pipelining).
    return "n/a" if value == 0 else fmt(value, "ms")


COLUMNS = [
    ("peer", None), ("scenario", None), ("req/s", "rps"), ("p50 ms", "p50_us"), ("p99 ms", "p99_us"),
    ("errors", "errors"), ("CPU µs/req", "cpu_us_per_request"), ("server CPU", "server_cpu_percent"),
    ("wrk CPU", "wrk_cpu_percent"), ("other on CPU0", "other_cpu_percent"),
    ("other on CPU1", "other_client_cpu_percent"), ("idle RSS MiB", "idle_rss_kib"),
    ("RSS after MiB", "rss_after_kib"), ("launch→200 ms", "launch_ms"),
]
KINDS = {"rps": "rps", "p50_us": "lat", "p99_us": "lat", "errors": "int", "cpu_us_per_request": "num",
         "server_cpu_percent": "pct", "wrk_cpu_percent": "pct", "other_cpu_percent": "pct",
         "other_client_cpu_percent": "pct",
         "idle_rss_kib": "mib", "rss_after_kib": "mib", "launch_ms": "num"}


def table_rows(res):
    rows = []
    for peer, scenario, row in res.ordered_rows():
        label = scenario_label(scenario, res.settings)
        name = PEER_TITLE.get(peer, peer) + ("" if scenario == "hello" and peer != "fezz" else "")
        if not row["ok"]:
            reason = row["failed"][0]["failure"] if row["failed"] else "no run"
            rows.append([name, label, f"failed: {reason}"] + [""] * (len(COLUMNS) - 3))
            continue
        cells = [name, label]
        for _, metric in COLUMNS[2:]:
            value = row["median"][metric]
            if metric == "errors":
                value = row["max_errors"]
            kind = KINDS[metric]
            cells.append(latency_ms(value) if kind == "lat" else fmt(value, kind))
        if len(row["failed"]):
            cells[1] += f" ({len(row['failed'])} failed)"
        rows.append(cells)
    for peer, reason in res.unavailable.items():
        rows.append([PEER_TITLE.get(peer, peer), "all", f"unavailable: {reason}"] + [""] * (len(COLUMNS) - 3))
    return rows


def terminal_table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows if len(str(r[i])) < 60)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        if str(r[2]).startswith(("unavailable", "failed")):
            lines.append(f"{r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2]}")
        else:
            lines.append("  ".join(str(c).rjust(w) if i >= 2 else str(c).ljust(w)
                                   for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)


def markdown_table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " if i < 2 else " ---: " for i in range(len(headers))) + "|"]
    for r in rows:
        if str(r[2]).startswith(("unavailable", "failed")):
            out.append(f"| {r[0]} | {r[1]} | {r[2]} |" + " |" * (len(headers) - 3))
        else:
            out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


# ---------------------------------------------------------------- targets

def targets(res):
    """(target, measured, verdict) rows, verdict PASS, MISS or n/a (why)."""
    out = []

    def verdict(ok):
        return "PASS" if ok else "MISS"

    def need(*values):
        return all(v is not None for v in values)

    fezz_cpu = res.get("fezz", "hello", "cpu_us_per_request")
    fezz_rps = res.get("fezz", "hello", "rps")
    def why(peer):
        if peer not in res.settings["peers"]:
            return f"n/a ({peer} not in FEZZ_BENCH_PEERS)"
        return f"n/a ({peer}: {res.unavailable.get(peer, 'no successful run')})"

    floor_cpu = res.get("floor", "hello", "cpu_us_per_request")
    out.append(("/hello server CPU per request ≤ 1.10 × Beast floor",
                f"{fezz_cpu:.2f} vs {floor_cpu:.2f} µs = {fezz_cpu / floor_cpu:.2f}×" if need(fezz_cpu, floor_cpu) else "–",
                verdict(fezz_cpu <= 1.10 * floor_cpu) if need(fezz_cpu, floor_cpu) else why("floor")))
    bun_cpu = res.get("bun", "hello", "cpu_us_per_request")
    out.append(("/hello server CPU per request ≤ Bun's",
                f"{fezz_cpu:.2f} vs {bun_cpu:.2f} µs = {fezz_cpu / bun_cpu:.2f}×" if need(fezz_cpu, bun_cpu) else "–",
                verdict(fezz_cpu <= bun_cpu) if need(fezz_cpu, bun_cpu) else why("bun")))
    for peer, factor in (("workerd", 3.5), ("node", 1.8)):
        rps = res.get(peer, "hello", "rps")
        out.append((f"throughput ≥ {factor} × {PEER_TITLE[peer]}'s",
                    f"{fezz_rps:,.0f} vs {rps:,.0f} req/s = {fezz_rps / rps:.2f}×" if need(fezz_rps, rps) else "–",
                    verdict(fezz_rps >= factor * rps) if need(fezz_rps, rps) else why(peer)))
    p99s = {s: res.get("fezz", s, "p99_us") for s in ("hello", "users", "echo", "counter")}
    p99s = {s: v for s, v in p99s.items() if v is not None}
    c = res.settings["connections"]
    if p99s:
        worst = max(p99s.values())
        out.append((f"p99 ≤ 1.5 ms at {c} connections (every Fezz route)",
                    ", ".join(f"{s} {v / 1000:.2f} ms" for s, v in p99s.items()),
                    verdict(worst <= 1500 and c == 64) if c == 64 else f"n/a (ran at {c} connections)"))
    many = res.rows.get(("fezz", "many"))
    if many and many["ok"]:
        errors = many["max_errors"]
        server = many["max_server_non2xx"]
        complete = not many["failed"]
        out.append((f"no errors at {res.settings['many_connections']:,} connections",
                    f"worst round: {errors} wrk errors, {server} non-2xx counted by the server"
                    + ("" if complete else f"; {len(many['failed'])} run(s) failed"),
                    verdict(errors == 0 and server == 0 and complete and res.settings["many_connections"] >= 1000)))
    idle = res.get("fezz", "hello", "idle_rss_kib")
    if idle is not None:
        out.append(("idle RSS ≤ 5 MB (read as 5 MiB)", f"{idle / 1024:.2f} MiB", verdict(idle <= 5 * 1024)))
    launches = [r["launch_ms"] for (p, _), row in res.rows.items() if p == "fezz" for r in row["ok"]]
    if launches:
        m = statistics.median(launches)
        out.append(("launch to first 200 ≤ 50 ms", f"{m:.1f} ms (median of {len(launches)} launches, "
                    f"max {max(launches):.1f})", verdict(m <= 50)))
    cold = res.cold
    if "failure" in cold:
        out.append(("cold start ≤ 50 µs more than a warm request", "–", f"n/a ({cold['failure']})"))
    else:
        note = "" if cold["loads_ok"] else " — WARNING: load count not as expected, see below"
        out.append(("cold start ≤ 50 µs more than a warm request",
                    f"+{cold['extra']:.0f} µs ({cold['cold']:.0f} cold vs {cold['warm']:.0f} warm){note}",
                    verdict(cold["extra"] <= 50 and cold["loads_ok"])))
    micro = res.micro.get("by_name", {})
    for kind in ("fixed", "random"):
        small = micro.get(f"route_lookup/{kind}/10")
        large = micro.get(f"route_lookup/{kind}/100000")
        if small and large:
            ratio = large["ns"] / small["ns"]
            out.append((f"route lookup at 100,000 routes ≤ 2 × at 10 ({kind} paths)",
                        f"{large['ns']:.0f} vs {small['ns']:.0f} ns = {ratio:.2f}×", verdict(ratio <= 2.0)))
        else:
            out.append((f"route lookup at 100,000 routes ≤ 2 × at 10 ({kind} paths)", "–",
                        f"n/a ({res.micro.get('failure', 'missing')})"))
    return out


# ---------------------------------------------------------------- chart

def chart(res, png_path, work_dir):
    if not shutil.which("gnuplot"):
        return "gnuplot is not installed"
    bars = []
    for peer in PEER_ORDER:
        if res.get(peer, "hello", "rps") is not None:
            bars.append((f"{PEER_TITLE[peer]} hello" if peer != "fezz" else "Fezz /hello", peer, "hello"))
    for scenario, label in (("users", "Fezz /users/:id"), ("echo", "Fezz /echo 1 KiB"), ("counter", "Fezz /counter")):
        if res.get("fezz", scenario, "rps") is not None:
            bars.append((label, "fezz", scenario))
    if not bars:
        return "no successful runs to chart"
    data = Path(work_dir) / "chart.dat"
    with open(data, "w") as f:
        for label, peer, scenario in bars:
            color = int(PEER_COLOR.get(peer, "#444444")[1:], 16)
            f.write(f'"{label}" {res.get(peer, scenario, "rps"):.1f} '
                    f'{res.get(peer, scenario, "cpu_us_per_request"):.3f} {color}\n')
    c = res.settings["connections"]
    rounds = res.settings["rounds"]
    script = f"""
set terminal pngcairo size 1200,560 font "sans,10"
set output '{png_path}'
set datafile separator whitespace
set multiplot layout 1,2 title "Server on 1 CPU, wrk on another, {c} connections, 127.0.0.1 — median of {rounds} round(s)" font "sans,12"
set style fill solid 0.9 border -1
set boxwidth 0.7
set xtics rotate by 30 right nomirror
set grid ytics
set yrange [0:*]
set offsets 0.5, 0.5, 0, 0
set bmargin 7
set title "requests/s (higher is better)"
plot '{data}' using 0:2:4:xtic(1) with boxes lc rgb variable notitle, \\
     '' using 0:2:(sprintf("%.0fk", $2/1000)) with labels offset 0,0.8 notitle
set title "server CPU µs per request (lower is better)"
plot '{data}' using 0:3:4:xtic(1) with boxes lc rgb variable notitle, \\
     '' using 0:3:(sprintf("%.1f", $3)) with labels offset 0,0.8 notitle
unset multiplot
"""
    script_path = Path(work_dir) / "chart.gp"
    script_path.write_text(script)
    p = subprocess.run(["gnuplot", str(script_path)], capture_output=True, text=True)
    return None if p.returncode == 0 else f"gnuplot failed: {p.stderr.strip()[-300:]}"


# ---------------------------------------------------------------- RESULTS.md

def markdown(res, headers, rows, target_rows, chart_name, chart_problem, history):
    raw, s, m = res.raw, res.settings, res.raw.get("machine", {})
    mode = "QUICK" if s["quick"] else "full"
    lines = [
        "# Fezz benchmark results",
        "",
        f"Generated by `{raw.get('command', 'bench/run')}` ({mode} mode) on {raw.get('started', '?')}; "
        f"measuring took {raw.get('measure_seconds', 0) / 60:.1f} min. "
        "How it measures and how to read this: [README.md](README.md).",
        "",
    ]
    if raw.get("interrupted"):
        lines += [f"**This run was interrupted ({raw['interrupted']}): the figures are partial.**", ""]
    lines += [
        "## Machine",
        "",
        f"- {m.get('nproc')} CPUs: {m.get('cpu_model')}; {m.get('memory')} memory",
        f"- {m.get('os')}, kernel {m.get('kernel')}",
        f"- built with {m.get('compiler_used')}, {m.get('build_type')}; Boost {m.get('boost')}",
        f"- compilers present: {m.get('gxx')}; {m.get('clangxx')}",
        f"- peers: Node.js {m.get('node')}, {m.get('bun')}, {m.get('workerd')}; load generator {m.get('wrk')}",
        f"- Fezz at `{m.get('git')}`; load average {' '.join(raw.get('loadavg_start', []))} at the start, "
        f"{' '.join(raw.get('loadavg_end', []))} at the end (2 CPUs: anything above ~2 is other work)",
        f"- settings: {s['rounds']} round(s), {s['duration']} s per run after a {s['warmup']} s warm-up, "
        f"server on CPU {s['server_cpu']}, wrk (1 thread) on CPU {s['client_cpu']}",
        "",
    ]
    if chart_problem:
        lines += [f"(No chart: {chart_problem}.)", ""]
    else:
        lines += [f"![requests/s and server CPU per request]({chart_name})", ""]
    lines += [
        "## Targets (issue #3)",
        "",
        "| target | measured (medians) | verdict |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {t} | {v} | **{d}** |" if d in ("PASS", "MISS") else f"| {t} | {v} | {d} |"
              for t, v, d in target_rows]
    lines += [
        "",
        "## Every figure",
        "",
        "Medians across rounds (errors: the worst round). *CPU µs/req* is the server's utime+stime over "
        "the run divided by the requests answered, the fair figure when wrk is the bottleneck; "
        "*server CPU* and *wrk CPU* say which side was saturated (100% = one whole CPU); "
        "*other on CPU0/CPU1* is the rest of each CPU's busy time meanwhile (other processes, interrupts): "
        "noise, which should be near 0% for figures you can trust. "
        "Latencies are per request, except pipelined runs where wrk times each batch of "
        f"{s['pipeline_depth']}.",
        "",
        markdown_table(headers, rows),
        "",
        "## Cold start",
        "",
    ]
    cold = res.cold
    if "failure" in cold:
        lines += [f"Not measured: {cold['failure']}.", ""]
    else:
        lines += [
            f"`fezz_example --idle-timeout {cold['idle_timeout_s']}` and `bench_cold_start` on one keep-alive "
            f"connection, {cold['samples']} samples in all. Each sample: 250 ms of back-to-back requests to "
            "`/users/1` (another function: the server stays busy while `hello` idles past its timeout and "
            "is unloaded), a timed request to `/hello` (*cold*), one more `/users/1`, and a timed `/hello` "
            "(*warm*: loaded, after the same traffic). The figure is cold − warm.",
            "",
            "| round | cold µs | warm µs | cold − warm µs | loads seen |",
            "| ---: | ---: | ---: | ---: | --- |",
        ]
        for i, r in enumerate(cold["rounds"], 1):
            lines.append(f"| {i} | {r['cold']:.0f} | {r['warm']:.0f} | {r['extra']:.0f} | "
                         f"{r['loads']} ({'as expected' if r['loads_ok'] else 'NOT as expected'}) |")
        lines += [f"| median | {cold['cold']:.0f} | {cold['warm']:.0f} | "
                  f"{cold['extra']:.0f} | |", ""]
    lines += ["## Microbenchmarks (`fezz_micro`, Google Benchmark)", ""]
    micro = res.micro
    if "failure" in micro:
        lines += [f"Not measured: {micro['failure']}.", ""]
    else:
        ctx = micro["context"]
        lines += [
            f"`{micro['command'].split('/')[-1]}` — median of {micro['repetitions']} repetition(s); "
            f"library built as {ctx.get('library_build_type', '?')}, "
            f"{ctx.get('num_cpus', '?')} CPUs at {ctx.get('mhz_per_cpu', '?')} MHz.",
            "",
            "| benchmark | time per operation | CPU per operation |",
            "| --- | ---: | ---: |",
        ]
        for name, b in micro["by_name"].items():
            lines.append(f"| {name} | {b['ns']:,.1f} ns | {b['cpu_ns']:,.1f} ns |")
        lines.append("")
    if res.unavailable:
        lines += ["## Unavailable peers", ""]
        lines += [f"- **{PEER_TITLE.get(p, p)}**: {why}" for p, why in res.unavailable.items()]
        lines.append("")
    lines += ["<details><summary>Every run</summary>", "",
              "| round | scenario | peer | req/s | p99 ms | errors | CPU µs/req | server CPU | wrk CPU | other on CPU0/CPU1 | launch ms | idle/after RSS MiB | note |",
              "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for r in raw["runs"]:
        if "failure" in r:
            lines.append(f"| {r['round']} | {r['scenario']} | {r['peer']} | | | | | | | | | | failed: {r['failure']} |")
        else:
            lines.append(
                f"| {r['round']} | {r['scenario']} | {r['peer']} | {r['rps']:,.0f} | {latency_ms(r['p99_us'])} | "
                f"{r['errors']} | {r['cpu_us_per_request']:.2f} | {r['server_cpu_percent']:.0f}% | "
                f"{r['wrk_cpu_percent']:.0f}% | {r.get('other_cpu_percent', 0):.0f}%/{r.get('other_client_cpu_percent', 0):.0f}% | "
                f"{r['launch_ms']:.1f} | "
                f"{r['idle_rss_kib'] / 1024:.1f}/{r['rss_after_kib'] / 1024:.1f} | |")
    lines += ["", "</details>", "", KEEP_MARKER, history.rstrip("\n"), ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True, type=Path)
    parser.add_argument("--results", required=True, type=Path, help="RESULTS.md to write")
    parser.add_argument("--chart", required=True, type=Path, help="PNG to write")
    parser.add_argument("--history-from", type=Path, help="RESULTS.md whose kept section to carry over")
    args = parser.parse_args()

    res = Results(json.loads(args.raw.read_text()))
    headers = [h for h, _ in COLUMNS]
    rows = table_rows(res)
    target_rows = targets(res)

    print()
    print(terminal_table(headers, rows))
    print()
    width = max(len(t) for t, _, _ in target_rows) if target_rows else 10
    for t, v, d in target_rows:
        verdict, _, note = d.partition(" ")
        print(f"  {verdict:<4}  {t.ljust(width)}  {v if v != '–' else ''}{note}")
    if "failure" not in res.cold:
        c = res.cold
        print(f"\n  cold start: {c['cold']:.0f} µs cold, {c['warm']:.0f} µs warm: +{c['extra']:.0f} µs")
    if "failure" not in res.micro:
        print()
        for name, b in res.micro["by_name"].items():
            print(f"  {name:<40} {b['ns']:>12,.1f} ns")

    source = args.history_from or args.results
    history = DEFAULT_HISTORY
    if source.exists():
        text = source.read_text()
        if KEEP_MARKER in text:
            history = text.split(KEEP_MARKER, 1)[1]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        chart_problem = chart(res, args.chart.resolve(), work)
    args.results.write_text(markdown(res, headers, rows, target_rows, args.chart.name, chart_problem, history))
    print(f"\nwrote {args.results}" + ("" if chart_problem else f" and {args.chart}")
          + (f" (no chart: {chart_problem})" if chart_problem else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
