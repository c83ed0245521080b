#!/usr/bin/env python3
"""bench/modules.py: what a function module costs against the same code compiled
in (issue #11). One Release fezz_example on Debian's etcd, on spare loopback
ports; the module is bench/module/hello_module.cpp, fezz_example's `hello` (the
same lines) as id `hello_module`, path `/hallo` (as long as /hello: the request's
parsing and route lookup cost the same), deployed with
`fezzctl deploy MODULE.so --version v1`. Measured in the same invocation, so
the figures are ratios against a peer that ran on the same machine at the same
time:

  cold start  bench_cold_start on /hello and on /hallo, the same settings,
              alternating, --cold-rounds rounds each; node --idle-timeout 0.1, so
              each sample's 250 ms of /users/1 traffic lets the function unload
              (the module is dlclosed), then a timed cold request and a timed warm
              one. A module's cold start is from the node's module cache (filled on
              the first load): the cache's check of the file, dlopen, the
              function's construction, on_load, and the first answer. Medians of
              cold, warm and cold - warm; the node's own "loaded '...' in N us".
              Target: the module's cold - warm under 1 ms.
  warm        a node restarted with --idle-timeout 300; wrk at --connections for
              --duration seconds on /hello and /hallo, alternating, for
              --warm-rounds rounds; requests/s and the server's CPU per request
              (utime+stime from /proc/PID/stat over the run / requests). Target:
              module / compiled-in CPU per request within noise (0.95-1.05), the
              median of the ratios of the runs made back to back in each round.
  instructions the same comparison without the machine's noise: the node under
              valgrind's callgrind, counters zeroed before and dumped after
              --instr-seconds of wrk on each path (callgrind_control), twice
              each, alternating; user-space instructions the node executed per
              request (the server's own request count). Skipped without valgrind
              or with --instr-seconds 0.

  python3 bench/modules.py [--build DIR] [--module FILE.so] [--samples 30]
                           [--cold-rounds 3] [--duration 5] [--connections 32]
                           [--warm-rounds 6] [--instr-seconds 3] [--results bench/RESULTS.md]

--build is a Release build tree with fezz_example, fezzctl and bench_cold_start
(default bench/out/build; `cmake --build DIR --target fezz_example fezzctl
bench_cold_start`). Without --module, the module is configured and built
Release into DIR/bench-module from bench/module/, against the Fezz source tree
DIR was configured from (-DFEZZ_SOURCE_DIR), whose commit the report names.
The node is pinned to --server-cpu, the clients and this script to --client-cpu.
With --results, the figures replace the section between this script's markers
in that file (below the part bench/run regenerates). Every process it starts is
stopped when it ends, however it ends. Python 3 standard library, wrk, etcd,
taskset, and valgrind for the instruction counts.
"""

import argparse
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import HOST, TICKS, cpu_seconds, free_port, write_section

ROOT = Path(__file__).resolve().parent.parent

BEGIN = "<!-- bench/modules.py: begin -->"
END = "<!-- bench/modules.py: end -->"
COMPILED, MODULE = "/hello", "/hallo"
BUSY = "/users/1"


def http_get(port, path, timeout=10):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_for(what, check, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready within {seconds} s")


def cpu_busy_seconds(cpu):
    """Busy time (all but idle and iowait) of one CPU since boot, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            v = [int(x) for x in line.split()[1:]]
            return (sum(v[:8]) - v[3] - v[4]) / TICKS
    return 0.0


def median(values):
    return statistics.median(values) if values else float("nan")


class Children:
    """Every process started, stopped by its own id at the end (SIGTERM, then SIGKILL)."""

    def __init__(self):
        self.procs = []

    def spawn(self, cmd, **kwargs):
        proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL, **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self, proc):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc in self.procs:
            self.procs.remove(proc)
        return proc.returncode

    def stop_all(self):
        for proc in reversed(list(self.procs)):
            self.stop(proc)


class Node:
    """One fezz_example pinned to a CPU, its log in a file we can read as it grows."""

    def __init__(self, children, binary, cpu, etcd_port, cache, idle_timeout, log, wrapper=()):
        self.children = children
        self.port = free_port()
        self.log = Path(log)
        self.cmd = ["taskset", "-c", str(cpu), *wrapper, binary, "--host", HOST, "--port", str(self.port),
                    "--threads", "1", "--idle-timeout", str(idle_timeout),
                    "--store", f"etcd://{HOST}:{etcd_port}", "--module-cache", cache,
                    "--node", "bench-modules"]
        out = open(self.log, "wb")
        self.proc = children.spawn(self.cmd, stdout=out, stderr=out)
        out.close()
        wait_for("fezz_example", lambda: http_get(self.port, "/_health")[0] == 200,
                 120 if wrapper else 30)
        self.pid = self.proc.pid  # taskset (and valgrind) exec the node in place: the same process

    def log_size(self):
        return self.log.stat().st_size

    def loads_logged(self, since):
        """{function id: [load us, ...]} from the "loaded '...' in N us" lines after `since`."""
        with open(self.log, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        found = {}
        for fid, us in re.findall(r"loaded '([^']+)' in (\d+) us", text):
            found.setdefault(fid, []).append(int(us))
        return found

    def functions(self):
        status, body = http_get(self.port, "/_metrics")
        if status != 200:
            raise RuntimeError(f"/_metrics answered {status}")
        out = {}
        for f in json.loads(body)["functions"]:
            out[f["id"]] = f
            if "function" in f:  # a version's slot, "<id>@<version>": also under its function
                out.setdefault(f["function"], f)
        return out

    def stop(self):
        return self.children.stop(self.proc)


def run_cold_start(client, cpu, port, path, samples, idle_ms):
    out = subprocess.run(["taskset", "-c", str(cpu), str(client), "--port", str(port),
                          "--path", path, "--busy-path", BUSY, "--samples", str(samples),
                          "--idle-ms", str(idle_ms)],
                         capture_output=True, text=True, timeout=120 + samples * 2,
                         stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        raise RuntimeError(f"bench_cold_start on {path} failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


def run_wrk(cpu, port, path, duration, connections):
    cmd = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}", f"-d{duration}s",
           "--latency", "--timeout", "2s", f"http://{HOST}:{port}{path}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60,
                         stdin=subprocess.DEVNULL).stdout
    found = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if not found:
        raise RuntimeError(f"wrk printed no summary:\n{out}")

    def ms(label):
        m = re.search(label + r"\s+([\d.]+)(us|ms|s)\b", out)
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else None

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"requests": int(found.group(1)),
            "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": ms("50%"), "p99_ms": ms("99%"),
            "errors": (int(errors.group(1)) if errors else 0) +
                      (sum(int(x) for x in socket_errors.groups()) if socket_errors else 0)}


def instructions_per_request(node, cpu, path, fid, seconds, out_prefix):
    """Zeroes callgrind's counters, runs wrk on `path`, dumps them: instructions / requests."""
    requests_before = node.functions()[fid]["requests"]
    subprocess.run(["callgrind_control", "--zero", str(node.pid)], check=True,
                   capture_output=True, timeout=60)
    run_wrk(cpu, node.port, path, seconds, 8)
    subprocess.run(["callgrind_control", f"--dump={fid}", str(node.pid)], check=True,
                   capture_output=True, timeout=60)
    requests = node.functions()[fid]["requests"] - requests_before
    dumps = sorted(out_prefix.parent.glob(out_prefix.name + ".*"),
                   key=lambda f: int(f.suffix[1:]) if f.suffix[1:].isdigit() else -1)
    found = re.search(r"^summary:\s*(\d+)", dumps[-1].read_text(errors="replace"), re.M)
    if not found or requests <= 0:
        raise RuntimeError(f"no callgrind summary or no requests for {path}")
    return int(found.group(1)) / requests, requests


def module_mapped(pid, name):
    return name in Path(f"/proc/{pid}/maps").read_text()


def source_of(build):
    """The Fezz source tree the build tree was configured from (its CMakeCache.txt)."""
    cache = build / "CMakeCache.txt"
    if cache.exists():
        found = re.search(r"^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$", cache.read_text(), re.M)
        if found:
            return Path(found.group(1))
    return ROOT


def describe_commit(source):
    """`abc1234`, and which folders had uncommitted changes, of the tree the binaries came from."""
    git = ["git", "-C", str(source)]
    commit = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    changed = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True).stdout.splitlines()
    folders = sorted({line[3:].split("/")[0] + ("/" if "/" in line[3:] else "") for line in changed})
    return f"`{commit}`" + (f" (uncommitted changes in {', '.join(folders)})" if folders else "")


def build_module(build, source):
    """Configures and builds bench/module/ Release into BUILD/bench-module against the
    same Fezz tree as the build's; returns the .so."""
    out = build / "bench-module"
    if not (out / "CMakeCache.txt").exists():
        subprocess.run(["cmake", "-S", ROOT / "bench/module", "-B", out, f"-DFEZZ_SOURCE_DIR={source}",
                        "-DCMAKE_BUILD_TYPE=Release"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", out], check=True, stdout=subprocess.DEVNULL)
    return out / "hello_module.so"


def machine():
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return model, os.cpu_count()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", type=Path, default=ROOT / "bench/out/build")
    parser.add_argument("--module", type=Path, help="a built hello_module.so (default: build it)")
    parser.add_argument("--samples", type=int, default=30, help="cold/warm pairs per cold-start run")
    parser.add_argument("--idle-ms", type=int, default=250)
    parser.add_argument("--cold-rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warm-rounds", type=int, default=6)
    parser.add_argument("--instr-seconds", type=int, default=3,
                        help="seconds of wrk per path under callgrind (0: skip)")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()

    build = args.build.resolve()
    binaries = {name: build / rel for name, rel in (
        ("fezz_example", "examples/fezz_example/fezz_example"),
        ("fezzctl", "examples/fezzctl/fezzctl"),
        ("bench_cold_start", "bench/bench_cold_start"))}
    for tool in ("etcd", "wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"modules.py: {tool} is missing (bash .ci/install-deps; apt-get install wrk)")
    for name, path in binaries.items():
        if not path.exists():
            sys.exit(f"modules.py: {path} is not built (cmake --build {build} --target "
                     "fezz_example fezzctl bench_cold_start)")
    source = source_of(build)
    module = args.module.resolve() if args.module else build_module(build, source)
    if not module.exists():
        sys.exit(f"modules.py: {module} does not exist")
    # SIGTERM stops everything as Ctrl-C does: through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("modules.py: terminated"))
    os.sched_setaffinity(0, {args.client_cpu})  # this script stays off the server's CPU

    command = "python3 bench/modules.py " + " ".join(sys.argv[1:])
    started = time.monotonic()
    load_before = os.getloadavg()
    work = tempfile.TemporaryDirectory(prefix="fezz-bench-modules-")
    cache = Path(work.name) / "module-cache"
    children = Children()
    cold = {COMPILED: [], MODULE: []}
    warm = {COMPILED: [], MODULE: []}
    checks = []
    instr = {COMPILED: [], MODULE: []}
    instr_skipped = None
    try:
        etcd_port, peer_port = free_port(), free_port()
        etcd_log = open(Path(work.name) / "etcd.log", "wb")
        children.spawn(
            ["taskset", "-c", str(args.client_cpu), "etcd", "--data-dir", f"{work.name}/etcd",
             "--logger", "zap", "--log-level", "warn",
             "--listen-client-urls", f"http://{HOST}:{etcd_port}",
             "--advertise-client-urls", f"http://{HOST}:{etcd_port}",
             "--listen-peer-urls", f"http://{HOST}:{peer_port}",
             "--initial-advertise-peer-urls", f"http://{HOST}:{peer_port}",
             "--initial-cluster", f"default=http://{HOST}:{peer_port}"],
            stdout=subprocess.DEVNULL, stderr=etcd_log)
        etcd_log.close()
        wait_for("etcd", lambda: http_get(etcd_port, "/health")[0] == 200)

        # Cold start: a short idle timeout, so each sample unloads the function.
        node = Node(children, binaries["fezz_example"], args.server_cpu, etcd_port, cache, 0.1,
                    Path(work.name) / "cold.log")
        deploy = subprocess.run([binaries["fezzctl"], "--store", f"etcd://{HOST}:{etcd_port}",
                                 "deploy", module, "--version", "v1"],
                                capture_output=True, text=True, timeout=60)
        if deploy.returncode != 0:
            raise RuntimeError(f"fezzctl deploy failed: {deploy.stderr.strip()}")
        wait_for("/hallo", lambda: http_get(node.port, MODULE)[0] == 200)
        same = http_get(node.port, COMPILED)[1] == http_get(node.port, MODULE)[1]
        checks.append(f"/hello and /hallo answer the same body: {'yes' if same else 'NO'}")
        client = binaries["bench_cold_start"]
        for r in range(args.cold_rounds):
            order = (COMPILED, MODULE) if r % 2 == 0 else (MODULE, COMPILED)
            for path in order:
                fid = "hello" if path == COMPILED else "hello_module"
                before = node.functions()
                log_at = node.log_size()
                result = run_cold_start(client, args.client_cpu, node.port, path, args.samples,
                                        args.idle_ms)
                after = node.functions()
                loads = after[fid]["loads"] - before[fid]["loads"]
                busy_loads = after["user"]["loads"] - before["user"]["loads"]
                logged = node.loads_logged(log_at).get(fid, [])
                cold[path].append({"cold_us": result["cold_us"], "warm_us": result["warm_us"],
                                   "loads": loads, "busy_loads": busy_loads, "load_us": logged})
                print(f"cold start, round {r + 1}, {path}: cold {median(result['cold_us']):.0f} us, "
                      f"warm {median(result['warm_us']):.0f} us, loads {loads}, "
                      f"logged load {median(logged):.0f} us", flush=True)
        # The module leaves the process when its function unloads (dlclose).
        time.sleep(0.5)
        gone = not module_mapped(node.pid, module.name) and not any(
            p.name.endswith(".so") and module_mapped(node.pid, p.name) for p in cache.iterdir())
        checks.append("module unmapped from the node (/proc/PID/maps) once idle: "
                      f"{'yes' if gone else 'NO'}")
        node.stop()

        # Warm: a long idle timeout, nothing unloads during a run.
        node = Node(children, binaries["fezz_example"], args.server_cpu, etcd_port, cache, 300,
                    Path(work.name) / "warm.log")
        wait_for("/hallo", lambda: http_get(node.port, MODULE)[0] == 200)
        for path in (COMPILED, MODULE):  # warm-up: connections, loads, caches
            run_wrk(args.client_cpu, node.port, path, 1, args.connections)
        loads_before = {fid: f["loads"] for fid, f in node.functions().items()}
        for r in range(args.warm_rounds):
            order = (COMPILED, MODULE) if r % 2 == 0 else (MODULE, COMPILED)
            for path in order:
                cpu0, busy0, t0 = cpu_seconds(node.pid), cpu_busy_seconds(args.server_cpu), time.monotonic()
                w = run_wrk(args.client_cpu, node.port, path, args.duration, args.connections)
                cpu1, busy1, t1 = cpu_seconds(node.pid), cpu_busy_seconds(args.server_cpu), time.monotonic()
                w["cpu_us"] = (cpu1 - cpu0) / max(w["requests"], 1) * 1e6
                w["server_cpu_pct"] = 100 * (cpu1 - cpu0) / (t1 - t0)
                w["other_pct"] = max(0.0, 100 * ((busy1 - busy0) - (cpu1 - cpu0)) / (t1 - t0))
                w["round"] = r + 1
                warm[path].append(w)
                print(f"warm, round {r + 1}, {path}: {w['rate']:,.0f} req/s, {w['cpu_us']:.2f} "
                      f"CPU us/req, server CPU {w['server_cpu_pct']:.0f}%, other on its CPU "
                      f"{w['other_pct']:.0f}%, errors {w['errors']}", flush=True)
        loads_after = {fid: f["loads"] for fid, f in node.functions().items()}
        reloaded = {fid: n - loads_before.get(fid, 0) for fid, n in loads_after.items()
                    if fid in ("hello", "hello_module") and n != loads_before.get(fid, 0)}
        checks.append("no load during the warm runs (/_metrics loads unchanged): "
                      f"{'yes' if not reloaded else 'NO ' + str(reloaded)}")
        node.stop()

        # Instructions: the same node under callgrind, which counts what it executes.
        if args.instr_seconds > 0 and shutil.which("callgrind_control"):
            out_prefix = Path(work.name) / "callgrind.out"
            node = Node(children, binaries["fezz_example"], args.server_cpu, etcd_port, cache, 300,
                        Path(work.name) / "callgrind.log",
                        wrapper=("valgrind", "--tool=callgrind", f"--callgrind-out-file={out_prefix}"))
            wait_for("/hallo", lambda: http_get(node.port, MODULE)[0] == 200, 60)
            for path in (COMPILED, MODULE):  # warm-up: loads, first-time paths
                run_wrk(args.client_cpu, node.port, path, 1, 8)
            for r in range(2):
                for path in ((COMPILED, MODULE) if r % 2 == 0 else (MODULE, COMPILED)):
                    fid = "hello" if path == COMPILED else "hello_module"
                    per, n = instructions_per_request(node, args.client_cpu, path, fid,
                                                      args.instr_seconds, out_prefix)
                    instr[path].append(per)
                    print(f"instructions, round {r + 1}, {path}: {per:,.0f} per request "
                          f"({n:,} requests)", flush=True)
            node.stop()
        else:
            instr_skipped = ("--instr-seconds 0" if args.instr_seconds <= 0
                             else "valgrind's callgrind_control is missing")
    finally:
        children.stop_all()
        work.cleanup()
    load_after = os.getloadavg()

    # Figures.
    def pooled(path, key):
        return [x for run in cold[path] for x in run[key]]

    c = {}
    for path in (COMPILED, MODULE):
        cold_med, warm_med = median(pooled(path, "cold_us")), median(pooled(path, "warm_us"))
        c[path] = {"cold": cold_med, "warm": warm_med, "extra": cold_med - warm_med,
                   "rounds": [median(run["cold_us"]) - median(run["warm_us"]) for run in cold[path]],
                   "load_us": median(pooled(path, "load_us")),
                   "loads": sum(run["loads"] for run in cold[path]),
                   "busy_loads": sum(run["busy_loads"] for run in cold[path])}
    busy_max = max(run["busy_loads"] for path in (COMPILED, MODULE) for run in cold[path])
    busy_total = sum(run["busy_loads"] for path in (COMPILED, MODULE) for run in cold[path])
    module_extra = c[MODULE]["extra"]
    extra_over = module_extra - c[COMPILED]["extra"]
    ratio_extra = module_extra / c[COMPILED]["extra"] if c[COMPILED]["extra"] > 0 else float("nan")
    cold_pass = module_extra < 1000

    w = {}
    for path in (COMPILED, MODULE):
        runs = warm[path]
        w[path] = {"cpu_us": median([x["cpu_us"] for x in runs]),
                   "rate": median([x["rate"] for x in runs]),
                   "p99": median([x["p99_ms"] for x in runs if x["p99_ms"] is not None]),
                   "errors": sum(x["errors"] for x in runs),
                   "server_pct": median([x["server_cpu_pct"] for x in runs]),
                   "other_pct": median([x["other_pct"] for x in runs])}
    # Per round, each module run against the compiled-in run next to it.
    pair_cpu = [m["cpu_us"] / h["cpu_us"] for h, m in zip(warm[COMPILED], warm[MODULE])]
    pair_rate = [m["rate"] / h["rate"] for h, m in zip(warm[COMPILED], warm[MODULE])]
    # The noise: the spread of one path's runs against its own median.
    noise = max(max(x["cpu_us"] for x in warm[p]) / min(x["cpu_us"] for x in warm[p]) - 1
                for p in (COMPILED, MODULE))
    # The verdict on the paired ratios: each pair ran back to back, in the same state of the
    # machine, which is what alternating is for; the ratio of the medians is reported beside.
    cpu_ratio = median(pair_cpu)
    cpu_ratio_of_medians = w[MODULE]["cpu_us"] / w[COMPILED]["cpu_us"]
    within = 0.95 <= cpu_ratio <= 1.05
    if within:
        verdict = "**PASS**"
    else:
        verdict = ("**MISS** on this run, by less than the spread of one path's own runs"
                   if abs(cpu_ratio - 1) < noise else "**MISS**")

    model, cores = machine()
    n_cold = args.cold_rounds * args.samples
    lines = [
        BEGIN,
        "## Function modules against compiled-in code (issue #11)",
        "",
        f"Generated by `{command}` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC "
        f"at {describe_commit(source)} (the tree `--build` was configured from) in "
        f"{time.monotonic() - started:.0f} s; {model}, {cores} CPUs; load average "
        f"{load_before[0]:.2f} at the start and {load_after[0]:.2f} at the end. The machine is "
        "shared with other jobs (fuzzers, builds), so absolute figures are noisy: read the ratios, "
        "each against a peer run in the same invocation, alternating with it. One Release "
        f"`fezz_example --threads 1` pinned to CPU {args.server_cpu}, on Debian's etcd; "
        f"`bench_cold_start` and wrk pinned to CPU {args.client_cpu}. The module is "
        "`bench/module/hello_module.cpp`, the example's `hello` (the same lines) as `hello_module` "
        "on `/hallo` (as long as `/hello`, so parsing the request and finding its route cost the "
        "same), built Release with `fezz_add_module` and deployed with "
        "`fezzctl deploy hello_module.so --version v1`.",
        "",
        f"**Cold start**: `bench_cold_start --busy-path {BUSY} --samples {args.samples} "
        f"--idle-ms {args.idle_ms}` on each path, {args.cold_rounds} rounds, node "
        "`--idle-timeout 0.1`: each sample idles the function out behind "
        f"{args.idle_ms} ms of other traffic, then times a cold request and a warm one. The "
        "module's cold start is from the node's module cache (filled by the first load): the "
        "cache's check of the file, `dlopen`, construction, `on_load` and the first answer; its "
        "library is `dlclose`d at every unload. Medians over "
        f"{n_cold} samples per path; *node's load* is the median of the node's own \"loaded '…' "
        "in N us\" (the registry's load: for the module, opening it from the cache included); "
        f"*loads* counts them in `/_metrics` (expected: {n_cold}, one per cold sample, plus at "
        "most one at each run's first request).",
        "",
        "| function | cold µs | warm µs | cold − warm µs | per round µs | node's load µs | loads | target |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for path, label in ((COMPILED, "compiled-in `/hello`"), (MODULE, "module `/hallo`")):
        f = c[path]
        target = (f"< 1,000 µs: **{'PASS' if cold_pass else 'MISS'}**" if path == MODULE else "")
        lines.append(f"| {label} | {f['cold']:.0f} | {f['warm']:.0f} | {f['extra']:.0f} | "
                     + ", ".join(f"{x:.0f}" for x in f["rounds"])
                     + f" | {f['load_us']:.0f} | {f['loads']} | {target} |")
    lines += [
        "",
        f"The module's cold start costs **{extra_over:+.0f} µs** over the compiled-in one "
        f"(cold − warm {module_extra:.0f} against {c[COMPILED]['extra']:.0f} µs, "
        f"{ratio_extra:.1f}×).",
        "",
        f"**Warm**: `wrk -t1 -c{args.connections} -d{args.duration}s` on each path, "
        f"{args.warm_rounds} rounds, alternating (A B, B A, …), after 1 s of warm-up each, node "
        "`--idle-timeout 300` (nothing unloads). CPU per request is the node's utime+stime over "
        "the run (`/proc/PID/stat`) divided by the requests; medians across rounds. *Other on its "
        "CPU* is what else ran on the node's CPU meanwhile (other jobs, interrupts): where it is "
        "high the node gets only part of its CPU, and its CPU per request swings from run to run "
        "with the caches it shares.",
        "",
        "| function | req/s | CPU µs/req | p99 ms | server CPU | other on its CPU | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for path, label in ((COMPILED, "compiled-in `/hello`"), (MODULE, "module `/hallo`")):
        f = w[path]
        lines.append(f"| {label} | {f['rate']:,.0f} | {f['cpu_us']:.2f} | {f['p99']:.2f} | "
                     f"{f['server_pct']:.0f}% | {f['other_pct']:.0f}% | {f['errors']} |")
    lines += [
        "",
        f"Module / compiled-in CPU per request, the median of the round-by-round ratios: "
        f"**{cpu_ratio:.3f}** (target 0.95–1.05: {verdict}); round by round "
        + ", ".join(f"{x:.3f}" for x in pair_cpu)
        + f"; the ratio of the medians {cpu_ratio_of_medians:.3f}. Requests/s, the same way: "
        f"{median(pair_rate):.3f} (round by round "
        + ", ".join(f"{x:.3f}" for x in pair_rate)
        + f"). Spread of one path's own runs (max/min − 1): {100 * noise:.1f} %.",
        "",
    ]
    if instr[COMPILED] and instr[MODULE]:
        i_ratio = median(instr[MODULE]) / median(instr[COMPILED])
        lines += [
            "**Instructions per request**, which the machine's load does not change: the node "
            "under valgrind's callgrind (`--idle-timeout 300`), its counters zeroed "
            f"(`callgrind_control --zero`) before and dumped after `wrk -t1 -c8 -d{args.instr_seconds}s` "
            "on each path, twice each, alternating; the user-space instructions the whole node "
            "executed over the run divided by the requests it answered (kernel time is not "
            "counted: it is the same sockets for both).",
            "",
            "| function | instructions per request (each run) | median |",
            "| --- | --- | ---: |",
            f"| compiled-in `/hello` | {', '.join(f'{x:,.0f}' for x in instr[COMPILED])} | "
            f"{median(instr[COMPILED]):,.0f} |",
            f"| module `/hallo` | {', '.join(f'{x:,.0f}' for x in instr[MODULE])} | "
            f"{median(instr[MODULE]):,.0f} |",
            "",
            f"Module / compiled-in: **{i_ratio:.3f}** "
            f"({median(instr[MODULE]) - median(instr[COMPILED]):+,.0f} instructions per request).",
            "",
        ]
    else:
        lines += [f"Instructions per request: skipped ({instr_skipped}).", ""]
    lines += [
        "Checks: " + "; ".join(checks) + "; the busy function (`user`) loaded at most once "
        "per cold-start run, at its first request after the pause between runs: "
        f"{'yes' if busy_max <= 1 else 'NO'} ({busy_total} load{'' if busy_total == 1 else 's'} "
        f"over {2 * args.cold_rounds} runs).",
        END,
    ]
    section = "\n".join(lines)
    print()
    print(section)
    if args.results:
        write_section(args.results, BEGIN, END, section)
        print(f"modules.py: wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
