#!/usr/bin/env python3
"""bench/driver.py: runs the measurements of the benchmark suite (bench/run calls it).

For each round, for each scenario, for each peer that has it (A B C A B C ...):
start the peer as a fresh process pinned to the server CPU, time launch to the
first 200, read its idle RSS, warm it up with wrk, then run wrk (pinned to the
client CPU) for a fixed time while reading the server's CPU time from
/proc/PID/stat before and after, read its RSS after the load, and stop it.
Then the cold-start figure (bench_cold_start against fezz_example with a short
idle timeout) and the microbenchmarks (fezz_micro). Everything goes to one JSON
file that bench/report.py turns into the table, RESULTS.md and the chart.

Python 3 standard library only. Every process it starts is stopped when it ends,
however it ends; their ids are also written to <out>/pids for bench/run's trap.
"""

import argparse
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from harness import free_port

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def env_number(name, default, kind=float):
    value = os.environ.get(name, "")
    return kind(value) if value.strip() else default


class Settings:
    def __init__(self):
        self.quick = os.environ.get("FEZZ_BENCH_QUICK", "0") not in ("", "0")
        q = self.quick
        self.rounds = env_number("FEZZ_BENCH_ROUNDS", 1 if q else 3, int)
        self.duration = env_number("FEZZ_BENCH_DURATION", 3 if q else 10, int)
        self.warmup = env_number("FEZZ_BENCH_WARMUP", 1 if q else 2, int)
        self.connections = env_number("FEZZ_BENCH_CONNECTIONS", 64, int)
        self.many_connections = env_number("FEZZ_BENCH_MANY_CONNECTIONS", 1000, int)
        self.pipeline_depth = env_number("FEZZ_BENCH_PIPELINE_DEPTH", 16, int)
        self.cold_samples = env_number("FEZZ_BENCH_COLD_SAMPLES", 15 if q else 60, int)
        self.settle = env_number("FEZZ_BENCH_SETTLE", 0.5)
        self.server_cpu = env_number("FEZZ_BENCH_SERVER_CPU", 0, int)
        self.client_cpu = env_number("FEZZ_BENCH_CLIENT_CPU", 1, int)
        self.peers = [p.strip() for p in os.environ.get(
            "FEZZ_BENCH_PEERS", "floor,fezz,node,bun,workerd").split(",") if p.strip()]
        self.micro = os.environ.get("FEZZ_BENCH_MICRO", "1") not in ("", "0")
        self.micro_min_time = os.environ.get("FEZZ_BENCH_MICRO_MIN_TIME", "0.05" if q else "")

    def as_dict(self):
        return dict(self.__dict__)


# ---------------------------------------------------------------- processes

class Children:
    """Every process the driver starts, so that all of them can be stopped."""

    def __init__(self, pid_file):
        self.procs = []
        self.pid_file = pid_file

    def _write(self):
        alive = [p.pid for p in self.procs if p.poll() is None]
        self.pid_file.write_text("".join(f"{pid}\n" for pid in alive))

    def spawn(self, cmd, cpu=None, **kwargs):
        """Popen with the child pinned to `cpu`: the driver takes that affinity
        for the fork and the child inherits it, as `taskset -c CPU` would, without
        taskset's own exec in the launch time."""
        previous = os.sched_getaffinity(0)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        try:
            proc = subprocess.Popen(cmd, **kwargs)
        finally:
            os.sched_setaffinity(0, previous)
        self.procs.append(proc)
        self._write()
        return proc

    def stop(self, proc, grace=5.0):
        """SIGTERM, then SIGKILL after `grace` seconds; returns the exit code."""
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)
        self._write()
        return proc.returncode

    def stop_all(self):
        for proc in list(self.procs):
            self.stop(proc, grace=2.0)


def stop_on_signals():
    def handler(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)


def cpu_ticks(pid):
    """utime + stime of the whole process (every thread), in clock ticks."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)


def cpu_busy_ticks(cpu):
    """Busy ticks (all but idle and iowait) of one CPU since boot, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            v = [int(x) for x in line.split()[1:]]
            return sum(v[:8]) - v[3] - v[4]  # user nice system idle iowait irq softirq steal
    return 0


def status_field(pid, name):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return None


def rss_kib(pid):
    value = status_field(pid, "VmRSS")
    return int(value.split()[0]) if value else None


def http_exchange(port, method="GET", path="/", body=b"", timeout=2.0):
    """One request on a new connection; returns (status, headers text, body)."""
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n" if body or method == "POST" else
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.encode() + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    header, _, rest = data.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1]) if header.startswith(b"HTTP/") else 0
    return status, header.decode("latin-1"), rest


def first_200(proc, port, path, deadline):
    """Polls in a tight loop until `path` answers 200; returns the monotonic time
    of that answer. Raises RuntimeError if the process exits or the deadline passes."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} before answering")
        s = socket.socket()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            s.settimeout(2.0)
            s.connect(("127.0.0.1", port))
            s.sendall(request)
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200"):
                return time.monotonic()
            last = data.split(b"\r\n", 1)[0].decode("latin-1") or "empty answer"
        except OSError:  # refused while starting, reset, timed out
            pass
        finally:
            s.close()
    raise RuntimeError(f"no 200 from {path} in time (last: {last})")


def tail(path, lines=3):
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


# ---------------------------------------------------------------- peers

class Peer:
    def __init__(self, name, cmd, hello, env=None, problem=None, version=None):
        self.name = name
        self.cmd = cmd            # with "{port}" placeholders
        self.hello = hello
        self.env = env or {}
        self.problem = problem    # why it cannot run, or None
        self.version = version

    def command(self, port):
        return [str(part).replace("{port}", str(port)) for part in self.cmd]


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def version_of(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0] if text else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def make_peers(build, bench):
    modules = bench / "node_modules"
    peers = {}

    floor = build / "bench" / "bench_floor"
    peers["floor"] = Peer("floor", [floor, "--host", "127.0.0.1", "--port", "{port}"], "/",
                          problem=None if floor.exists() else f"{floor} was not built")

    fezz = build / "examples" / "fezz_example" / "fezz_example"
    peers["fezz"] = Peer("fezz", [fezz, "--host", "127.0.0.1", "--port", "{port}", "--threads", "1"],
                         "/hello", problem=None if fezz.exists() else f"{fezz} was not built")

    node = subprocess.run(["bash", "-c", "command -v node"], capture_output=True, text=True).stdout.strip()
    peers["node"] = Peer("node", [node, bench / "peers" / "node" / "server.js"], "/",
                         env={"PORT": "{port}"}, problem=None if node else "no node on PATH",
                         version=version_of([node, "--version"]) if node else None)

    bun = None
    for candidate in (modules / "bun" / "bin" / "bun.exe", modules / "@oven" / "bun-linux-x64" / "bin" / "bun"):
        if is_elf(candidate):
            bun = candidate
            break
    problem = None
    version = None
    if bun is None:
        problem = "npm package bun is not installed in bench/node_modules (npm ci failed?)"
    else:
        version = version_of([bun, "--version"])
        if version is None:
            problem = f"{bun} --version failed (a CPU without AVX2 needs bun's baseline build)"
    peers["bun"] = Peer("bun", [bun or "bun", bench / "peers" / "bun" / "server.js"], "/",
                        env={"PORT": "{port}"}, problem=problem, version=version and f"bun {version}")

    workerd = modules / "@cloudflare" / "workerd-linux-64" / "bin" / "workerd"
    problem = None
    version = None
    if not is_elf(workerd):
        problem = "npm package @cloudflare/workerd-linux-64 is not installed in bench/node_modules"
    else:
        version = version_of([workerd, "--version"])
        if version is None:
            problem = f"{workerd} --version failed"
    peers["workerd"] = Peer("workerd", [workerd, "serve", bench / "peers" / "workerd" / "config.capnp",
                                        "--socket-addr", "http=127.0.0.1:{port}"], "/",
                            problem=problem, version=version)
    return peers


# ---------------------------------------------------------------- scenarios

class Scenario:
    def __init__(self, name, label, peers, path=None, method="GET", script="report.lua",
                 connections=None, args=(), check_body=b""):
        self.name = name
        self.label = label
        self.peers = peers        # None: every peer, on its hello path
        self.path = path
        self.method = method
        self.script = script
        self.connections = connections
        self.args = list(args)
        self.check_body = check_body


def make_scenarios(s):
    kib = b"x" * 1024
    return [
        Scenario("hello", f"hello, {s.connections} connections", None, connections=s.connections),
        Scenario("users", f"/users/:id, {s.connections} connections", ["fezz"], path="/users/42",
                 connections=s.connections),
        Scenario("echo", f"POST /echo 1 KiB, {s.connections} connections", ["fezz"], path="/echo",
                 method="POST", script="post_1k.lua", connections=s.connections, check_body=kib),
        Scenario("counter", f"/counter, {s.connections} connections", ["fezz"], path="/counter",
                 connections=s.connections),
        Scenario("pipeline", f"hello, pipelined {s.pipeline_depth} deep, {s.connections} connections",
                 None, script="pipeline.lua", connections=s.connections, args=[s.pipeline_depth]),
        Scenario("many", f"hello, {s.many_connections} connections", None,
                 connections=s.many_connections),
    ]


def compose_scripts(bench, out):
    """wrk takes one script: each scenario's script with report.lua appended."""
    lua_out = out / "lua"
    lua_out.mkdir(parents=True, exist_ok=True)
    report = (bench / "lua" / "report.lua").read_text()
    (lua_out / "report.lua").write_text(report)
    for name in ("post_1k.lua", "pipeline.lua"):
        (lua_out / name).write_text((bench / "lua" / name).read_text() + "\n" + report)
    return lua_out


# ---------------------------------------------------------------- one run

class Driver:
    def __init__(self, settings, build, bench, out):
        self.s = settings
        self.build = build
        self.bench = bench
        self.out = out
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.children = Children(out / "pids")
        self.lua = compose_scripts(bench, out)
        self.peers = make_peers(build, bench)
        self.results = {"settings": settings.as_dict(), "runs": [], "unavailable": {},
                        "cold_start": [], "micro": None}

    def save(self):
        path = self.out / "raw.json"
        path.write_text(json.dumps(self.results, indent=1))

    def child_env(self, peer, port):
        env = {k: v for k, v in os.environ.items()
               if k not in ("FEZZ_HOST", "FEZZ_PORT", "FEZZ_THREADS", "FEZZ_IDLE_TIMEOUT",
                            "FEZZ_MAX_BODY_BYTES")}
        env.update({k: v.replace("{port}", str(port)) for k, v in peer.env.items()})
        return env

    def start(self, peer, log_path, extra_args=()):
        """Starts the peer; returns (proc, port, launch_ms)."""
        port = free_port()
        log = open(log_path, "wb")
        started = time.monotonic()
        proc = self.children.spawn(peer.command(port) + list(extra_args), cpu=self.s.server_cpu,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=self.child_env(peer, port))
        log.close()
        try:
            answered = first_200(proc, port, peer.hello, started + 30.0)
        except RuntimeError as e:
            self.children.stop(proc)
            raise RuntimeError(f"{e}; log: {tail(log_path)}") from None
        return proc, port, (answered - started) * 1000.0

    def wrk(self, port, scenario, path, duration, output_path):
        """Runs wrk pinned to the client CPU; returns (parsed WRKJSON, wrk's CPU seconds)."""
        cmd = ["taskset", "-c", str(self.s.client_cpu), "wrk", "-t1", f"-c{scenario.connections}",
               f"-d{duration}s", "--timeout", "2s", "--latency",
               "-s", str(self.lua / scenario.script), f"http://127.0.0.1:{port}{path}"]
        if scenario.args:
            cmd += ["--"] + [str(a) for a in scenario.args]
        with open(output_path, "wb") as f:
            proc = self.children.spawn(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + duration + 60
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid != 0:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() > deadline:
                    self.children.stop(proc)
                    raise RuntimeError("wrk did not finish in time")
                time.sleep(0.05)
        self.children.stop(proc)
        text = Path(output_path).read_text(errors="replace")
        match = re.search(r"^WRKJSON (\{.*\})$", text, re.M)
        if proc.returncode != 0 or not match:
            raise RuntimeError(f"wrk failed (status {proc.returncode}): {text.strip()[-300:]}")
        return json.loads(match.group(1)), usage.ru_utime + usage.ru_stime, cmd

    def run_one(self, round_index, scenario, peer):
        path = scenario.path or peer.hello
        tag = f"r{round_index + 1}-{scenario.name}-{peer.name}"
        record = {"round": round_index + 1, "scenario": scenario.name, "peer": peer.name, "path": path}
        proc = None
        try:
            proc, port, launch_ms = self.start(peer, self.logs / f"{tag}.log")
            record["launch_ms"] = round(launch_ms, 2)
            record["cpus_allowed"] = status_field(proc.pid, "Cpus_allowed_list")
            if scenario.path or scenario.method != "GET":
                status, _, _ = http_exchange(port, scenario.method, path, scenario.check_body)
                if status != 200:
                    raise RuntimeError(f"{scenario.method} {path} answered {status}, not 200")
            time.sleep(self.s.settle)
            record["idle_rss_kib"] = rss_kib(proc.pid)
            if self.s.warmup > 0:
                self.wrk(port, scenario, path, self.s.warmup, self.logs / f"{tag}.warmup.txt")
            before = cpu_ticks(proc.pid)
            busy_before = cpu_busy_ticks(self.s.server_cpu)
            client_busy_before = cpu_busy_ticks(self.s.client_cpu)
            wall = time.monotonic()
            stats, wrk_cpu, cmd = self.wrk(port, scenario, path, self.s.duration, self.logs / f"{tag}.wrk.txt")
            wall = time.monotonic() - wall
            after = cpu_ticks(proc.pid)
            busy_after = cpu_busy_ticks(self.s.server_cpu)
            client_busy_after = cpu_busy_ticks(self.s.client_cpu)
            record["rss_after_kib"] = rss_kib(proc.pid)
            record["threads"] = int(status_field(proc.pid, "Threads") or 0)
            record["wrk_command"] = " ".join(cmd)
            record.update(stats)
            seconds = stats["duration_us"] / 1e6
            record["rps"] = stats["requests"] / seconds
            record["errors"] = sum(stats[k] for k in ("connect_errors", "read_errors", "write_errors",
                                                      "status_errors", "timeout_errors"))
            record["server_cpu_s"] = (after - before) / CLK_TCK
            record["cpu_us_per_request"] = record["server_cpu_s"] * 1e6 / max(stats["requests"], 1)
            record["server_cpu_percent"] = 100.0 * record["server_cpu_s"] / wall
            record["wrk_cpu_percent"] = 100.0 * wrk_cpu / wall
            # What else ran on the server's CPU meanwhile (other processes, interrupts): the noise.
            other = (busy_after - busy_before) - (after - before)
            record["other_cpu_percent"] = max(0.0, 100.0 * other / CLK_TCK / wall)
            other = (client_busy_after - client_busy_before) / CLK_TCK - wrk_cpu
            record["other_client_cpu_percent"] = max(0.0, 100.0 * other / wall)
            if peer.name == "fezz":
                status, _, body = http_exchange(port, "GET", "/_metrics")
                if status == 200:
                    counts = json.loads(body)["requests"]
                    record["server_non2xx"] = sum(counts[k] for k in ("1xx", "3xx", "4xx", "5xx"))
            record["exit_status"] = self.children.stop(proc)
            proc = None
        except RuntimeError as e:
            record["failure"] = str(e)
        finally:
            if proc is not None:
                record["exit_status"] = self.children.stop(proc)
        return record

    # ------------------------------------------------------------ the suite

    def run_rounds(self):
        scenarios = make_scenarios(self.s)
        for name in self.s.peers:
            if name not in self.peers:
                self.results["unavailable"][name] = "unknown peer"
            elif self.peers[name].problem:
                self.results["unavailable"][name] = self.peers[name].problem
        active = [self.peers[n] for n in self.s.peers if n in self.peers and not self.peers[n].problem]
        for r in range(self.s.rounds):
            for scenario in scenarios:
                for peer in active:
                    if peer.name in self.results["unavailable"]:
                        continue
                    if scenario.peers is not None and peer.name not in scenario.peers:
                        continue
                    t = time.monotonic()
                    record = self.run_one(r, scenario, peer)
                    record["seconds"] = round(time.monotonic() - t, 1)
                    self.results["runs"].append(record)
                    self.save()
                    print_progress(record)
                    # A peer that never started is unavailable: say why and go on without it.
                    if "failure" in record and "launch_ms" not in record:
                        self.results["unavailable"][peer.name] = record["failure"]
            if "fezz" in [p.name for p in active] and "fezz" not in self.results["unavailable"]:
                self.cold_start(r)
                self.save()

    def cold_start(self, round_index):
        peer = self.peers["fezz"]
        client = self.build / "bench" / "bench_cold_start"
        idle = 0.1  # the reaper looks every idle/4: unloaded 100-125 ms after the last call
        tag = f"r{round_index + 1}-cold-start"
        record = {"round": round_index + 1, "idle_timeout_s": idle, "samples": self.s.cold_samples,
                  "idle_ms": 250}
        proc = None
        try:
            proc, port, _ = self.start(peer, self.logs / f"{tag}.log", ["--idle-timeout", str(idle)])
            cmd = [client, "--port", str(port), "--path", "/hello", "--busy-path", "/users/1",
                   "--samples", str(self.s.cold_samples), "--idle-ms", "250"]
            p = self.children.spawn([str(c) for c in cmd], cpu=self.s.client_cpu,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
            out, err = p.communicate(timeout=60 + self.s.cold_samples * 1.0)
            self.children.stop(p)
            if p.returncode != 0:
                raise RuntimeError(f"bench_cold_start failed: {err.decode(errors='replace').strip()}")
            record.update(json.loads(out))
            status, _, body = http_exchange(port, "GET", "/_metrics")
            functions = {f["id"]: f for f in json.loads(body)["functions"]}
            record["loads"] = functions["hello"]["loads"]
            record["unloads"] = functions["hello"]["unloads"]
            # One load at launch (or at the client's first request), one per cold sample, none
            # warm; the busy function stays loaded throughout.
            n = self.s.cold_samples
            record["loads_as_expected"] = (n + 1 <= functions["hello"]["loads"] <= n + 2
                                           and functions["user"]["loads"] == 1)
            record["exit_status"] = self.children.stop(proc)
            proc = None
        except (RuntimeError, subprocess.TimeoutExpired, StopIteration, ValueError, KeyError) as e:
            record["failure"] = str(e) or type(e).__name__
        finally:
            if proc is not None:
                self.children.stop(proc)
        self.results["cold_start"].append(record)
        if "failure" in record:
            print(f"  cold start, round {round_index + 1}: FAILED: {record['failure']}", flush=True)
        else:
            med = lambda xs: sorted(xs)[len(xs) // 2]
            print(f"  cold start, round {round_index + 1}: cold {med(record['cold_us']):.0f} us, "
                  f"warm {med(record['warm_us']):.0f} us, loads {record['loads']}", flush=True)

    def micro(self):
        binary = self.build / "bench" / "fezz_micro"
        if not binary.exists():
            self.results["micro"] = {"failure": f"{binary} was not built"}
            return
        out_json = self.out / "micro.json"
        cmd = [str(binary), "--benchmark_format=console", f"--benchmark_out={out_json}",
               "--benchmark_out_format=json"]
        if self.s.rounds > 1:
            cmd += [f"--benchmark_repetitions={self.s.rounds}", "--benchmark_report_aggregates_only=true"]
        if self.s.micro_min_time:
            cmd.append(f"--benchmark_min_time={self.s.micro_min_time}")
        print("  microbenchmarks: " + " ".join(cmd[1:]), flush=True)
        with open(self.logs / "micro.txt", "wb") as log:
            p = self.children.spawn(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                p.wait(timeout=900)
            except subprocess.TimeoutExpired:
                pass
            code = self.children.stop(p)
        if code != 0 or not out_json.exists():
            self.results["micro"] = {"failure": f"fezz_micro exited with {code}: {tail(self.logs / 'micro.txt')}"}
            return
        self.results["micro"] = {"command": " ".join(cmd), "report": json.loads(out_json.read_text())}


def print_progress(r):
    where = f"  round {r['round']} {r['scenario']:<8} {r['peer']:<8}"
    if "failure" in r:
        print(f"{where} FAILED: {r['failure']}", flush=True)
    else:
        print(f"{where} {r['rps']:>9.0f} req/s  p99 {r['p99_us'] / 1000:6.2f} ms  "
              f"cpu {r['cpu_us_per_request']:6.2f} us/req  errors {r['errors']}  "
              f"launch {r['launch_ms']:.1f} ms  rss {r['idle_rss_kib'] / 1024:.1f}/{r['rss_after_kib'] / 1024:.1f} MiB",
              flush=True)


# ---------------------------------------------------------------- machine

def first_line(cmd):
    return version_of(cmd) or "unknown"


def machine_info(build, peers):
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    cache = {}
    cache_file = build / "CMakeCache.txt"
    if cache_file.exists():
        for line in cache_file.read_text().splitlines():
            m = re.match(r"^(CMAKE_CXX_COMPILER|CMAKE_BUILD_TYPE|CMAKE_CXX_FLAGS_RELEASE):\w+=(.*)$", line)
            if m:
                cache[m.group(1)] = m.group(2)
    boost = "unknown"
    version_hpp = Path("/usr/include/boost/version.hpp")
    if version_hpp.exists():
        m = re.search(r'BOOST_LIB_VERSION "([^"]+)"', version_hpp.read_text())
        boost = m.group(1).replace("_", ".") if m else boost
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    compiler = cache.get("CMAKE_CXX_COMPILER", "c++")
    meminfo = Path("/proc/meminfo").read_text().splitlines()[0].split(":")[1].strip()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory": meminfo,
        "kernel": platform.release(),
        "os": first_line(["bash", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "compiler_used": f"{compiler}: {first_line([compiler, '--version'])}",
        "build_type": cache.get("CMAKE_BUILD_TYPE", "?") + " (" + cache.get("CMAKE_CXX_FLAGS_RELEASE", "") + ")",
        "gxx": first_line(["g++", "--version"]),
        "clangxx": first_line(["clang++", "--version"]),
        "boost": boost,
        "wrk": (wrk.stdout + wrk.stderr).strip().splitlines()[0] if (wrk.stdout + wrk.stderr).strip() else "unknown",
        "node": peers["node"].version,
        "bun": peers["bun"].version,
        "workerd": peers["workerd"].version,
        "python": platform.python_version(),
        "git": first_line(["git", "-C", str(build.parent.parent.parent), "describe", "--always", "--dirty"]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    bench = Path(__file__).resolve().parent
    settings = Settings()
    args.out.mkdir(parents=True, exist_ok=True)
    stop_on_signals()
    # The driver itself (polling, waiting) stays off the server's CPU.
    os.sched_setaffinity(0, {settings.client_cpu})
    driver = Driver(settings, args.build.resolve(), bench, args.out.resolve())
    results = driver.results
    results["machine"] = machine_info(args.build.resolve(), driver.peers)
    results["started"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    results["loadavg_start"] = Path("/proc/loadavg").read_text().split()[:3]
    results["command"] = os.environ.get("FEZZ_BENCH_COMMAND", "bench/run")
    t0 = time.monotonic()
    try:
        driver.run_rounds()
        if settings.micro:
            driver.micro()
    except KeyboardInterrupt as e:
        results["interrupted"] = str(e) or "interrupted"
        print(f"driver: interrupted ({results['interrupted']}); stopping everything", file=sys.stderr)
    finally:
        driver.children.stop_all()
        results["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
        results["measure_seconds"] = round(time.monotonic() - t0, 1)
        driver.save()
    return 1 if "interrupted" in results else 0


if __name__ == "__main__":
    sys.exit(main())
