#!/usr/bin/env python3
"""bench/cluster.py: what the cluster costs. Starts examples/cluster/run (etcd,
three fezz_example nodes, HAProxy) on spare loopback ports and measures:

  propagation  a store change (a put on etcd's gateway) until every node serves
               it, each node polled directly: p50, p99 and max over --changes
  proxy hop    wrk on /hello against one node directly, through HAProxy with
               one node in rotation, and with three; requests/s, p99, and the
               CPU each part spent per request (from /proc/PID/stat)

  initial sync one more node launched until it has listed etcd, with the cluster's
               five entries and with --entries more

  python3 bench/cluster.py [--build DIR] [--changes 200] [--duration 10]
                           [--connections 32] [--entries 100000] [--results bench/RESULTS.md]

--build is a Release build tree with fezz_example and fezzctl (default
bench/out/build, which bench/run makes; `cmake --build DIR --target fezz_example
fezzctl` adds fezzctl). With --results, the figures replace the section between
this script's markers in that file (below the part bench/run regenerates).
Python 3 standard library only, and wrk.
"""

import argparse
import base64
import datetime
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import HOST, cpu_seconds, free_ports_in_a_row, write_section

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- bench/cluster.py: begin -->"
END = "<!-- bench/cluster.py: end -->"


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * (len(ordered) - 1) + 0.5))]


class Cluster:
    """examples/cluster/run in the background, on spare ports, in a folder of its own."""

    def __init__(self, build):
        self.port = free_ports_in_a_row(4)
        self.etcd_port = free_ports_in_a_row(2)
        self.dir = tempfile.TemporaryDirectory(prefix="fezz-bench-cluster-")
        self.env = dict(os.environ, FEZZ_BUILD=str(build), FEZZ_CLUSTER_PORT=str(self.port),
                        FEZZ_CLUSTER_ETCD_PORT=str(self.etcd_port), FEZZ_CLUSTER_DIR=self.dir.name)
        self.output = open(Path(self.dir.name) / "run.out", "w+b")
        self.script = subprocess.Popen(["bash", str(ROOT / "examples/cluster/run")], env=self.env,
                                       stdout=self.output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while b"Ctrl-C here" not in Path(self.output.name).read_bytes():
            if self.script.poll() is not None or time.monotonic() > deadline:
                sys.exit("cluster.py: the cluster did not start:\n" +
                         Path(self.output.name).read_text(errors="replace"))
            time.sleep(0.1)
        self.pids = dict(line.split() for line in
                         (Path(self.dir.name) / "pids").read_text().splitlines())
        self.nodes = {name: self.port + int(name[1:]) for name in self.pids if name[0] == "n"}

    def haproxy(self, command):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(Path(self.dir.name) / "haproxy.sock"))
            sock.sendall(command.encode() + b"\n")
            return sock.makefile().read()

    def in_rotation(self, names):
        for name in self.nodes:
            state = "ready" if name in names else "maint"
            self.haproxy(f"set server fezz_nodes/{name} state {state}")

    def stop(self):
        subprocess.run(["bash", str(ROOT / "examples/cluster/run"), "stop"], env=self.env,
                       capture_output=True, timeout=60)
        try:
            self.script.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.script.send_signal(signal.SIGINT)
            self.script.wait(timeout=30)


def etcd_put(port, key, value):
    body = json.dumps({"key": base64.b64encode(key.encode()).decode(),
                       "value": base64.b64encode(value.encode()).decode()})
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    conn.request("POST", "/v3/kv/put", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != 200:
        sys.exit(f"cluster.py: etcd put answered {response.status}")


def propagation(cluster, changes):
    """Seconds from the start of each put until every node answers the new path."""
    conns = {name: http.client.HTTPConnection(HOST, port, timeout=10)
             for name, port in cluster.nodes.items()}
    every, first = [], []
    for i in range(changes):
        path = f"/moved-{i}"
        started = time.monotonic()
        etcd_put(cluster.etcd_port, "/fezz/functions/hello", json.dumps({"id": "hello", "path": path}))
        waiting = set(conns)
        seen_first = None
        while waiting:
            if time.monotonic() - started > 10:
                sys.exit(f"cluster.py: change {i} not served by {sorted(waiting)} after 10 s")
            for name in sorted(waiting):
                conns[name].request("GET", path)
                response = conns[name].getresponse()
                response.read()
                if response.status == 200:
                    waiting.discard(name)
                    seen_first = seen_first or time.monotonic() - started
        every.append(time.monotonic() - started)
        first.append(seen_first)
    etcd_put(cluster.etcd_port, "/fezz/functions/hello", json.dumps({"id": "hello", "path": "/hello"}))
    return every, first


def etcd_revision(port):
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    conn.request("POST", "/v3/kv/range",
                 json.dumps({"key": base64.b64encode(b"/fezz/").decode(), "limit": 1}),
                 {"Content-Type": "application/json"})
    body = json.loads(conn.getresponse().read())
    conn.close()
    return int(body["header"]["revision"])


def etcd_fill(port, count, batch=128):
    """Writes `count` valid entries (ids fn-0...) in transactions of `batch` puts (etcd's
    default --max-txn-ops); returns etcd's revision after the last."""
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    revision = 0
    for first in range(0, count, batch):
        puts = []
        for i in range(first, min(count, first + batch)):
            entry = {"id": f"fn-{i}", "path": f"/t{i % 100}/fn/{i}/:id"}
            puts.append({"request_put": {
                "key": base64.b64encode(f"/fezz/functions/fn-{i}".encode()).decode(),
                "value": base64.b64encode(json.dumps(entry).encode()).decode()}})
        conn.request("POST", "/v3/kv/txn", json.dumps({"success": puts}),
                     {"Content-Type": "application/json"})
        response = conn.getresponse()
        body = json.loads(response.read())
        if response.status != 200:
            sys.exit(f"cluster.py: etcd txn answered {response.status}: {body}")
        revision = int(body["header"]["revision"])
    conn.close()
    return revision


def launch_until_synced(build, etcd_port, revision):
    """Seconds from launching one more node until its /_metrics shows the store at
    `revision` or later (the node serves /_health only once it has listed etcd)."""
    port = free_ports_in_a_row(1)
    started = time.monotonic()
    node = subprocess.Popen([str(build / "examples/fezz_example/fezz_example"), "--host", HOST,
                             "--port", str(port), "--store", f"etcd://{HOST}:{etcd_port}",
                             "--node", "sync-probe"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if time.monotonic() - started > 120 or node.poll() is not None:
                sys.exit("cluster.py: the probe node did not sync within 120 s")
            try:
                conn = http.client.HTTPConnection(HOST, port, timeout=10)
                conn.request("GET", "/_metrics")
                response = conn.getresponse()
                body = response.read()
                conn.close()
                if response.status == 200 and int(json.loads(body)["store"]["revision"]) >= revision:
                    return time.monotonic() - started
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.005)
    finally:
        node.send_signal(signal.SIGTERM)
        node.wait(timeout=30)


def wrk(port, duration, connections):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
                          f"http://{HOST}:{port}/hello"],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99_text = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_text.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"requests": requests, "rate": rate, "p99_ms": float(p99_text.group(1)) * scale,
            "errors": (int(errors.group(1)) if errors else 0), "socket_errors": socket_errors is not None}


def hop(cluster, label, port, nodes_in_rotation, duration, connections):
    wrk(port, 1, connections)  # warm-up: connections, loaded functions
    node_pids = [cluster.pids[name] for name in cluster.nodes]
    before = {pid: cpu_seconds(pid) for pid in node_pids + [cluster.pids["haproxy"]]}
    result = wrk(port, duration, connections)
    spent = {pid: cpu_seconds(pid) - seconds for pid, seconds in before.items()}
    result["label"] = label
    result["in_rotation"] = nodes_in_rotation
    result["proxy_us"] = spent[cluster.pids["haproxy"]] / result["requests"] * 1e6
    result["nodes_us"] = sum(spent[pid] for pid in node_pids) / result["requests"] * 1e6
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", type=Path, default=ROOT / "bench/out/build")
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()

    started = time.monotonic()
    load_before = os.getloadavg()
    cluster = Cluster(args.build.resolve())
    try:
        every, first = propagation(cluster, args.changes)
        hops = []
        cluster.in_rotation({"n1"})
        hops.append(hop(cluster, "node n1 directly", cluster.nodes["n1"], 1, args.duration, args.connections))
        hops.append(hop(cluster, "HAProxy, 1 node in rotation", cluster.port, 1, args.duration, args.connections))
        cluster.in_rotation(set(cluster.nodes))
        hops.append(hop(cluster, "HAProxy, 3 nodes in rotation", cluster.port, 3, args.duration, args.connections))
        # Last: the three nodes follow the fill too.
        build = args.build.resolve()
        small = etcd_revision(cluster.etcd_port)
        sync_small = launch_until_synced(build, cluster.etcd_port, small)
        fill_started = time.monotonic()
        revision = etcd_fill(cluster.etcd_port, args.entries)
        fill_seconds = time.monotonic() - fill_started
        sync_large = launch_until_synced(build, cluster.etcd_port, revision)
    finally:
        cluster.stop()

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    ms = [s * 1000 for s in every]
    first_ms = [s * 1000 for s in first]
    lines = [
        BEGIN,
        "## Cluster: propagation and the proxy's hop (issue #10)",
        "",
        f"Generated by `python3 bench/cluster.py` on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC at `{commit}` "
        f"in {time.monotonic() - started:.0f} s; load average {load_before[0]:.2f} at the start "
        f"(2 CPUs shared by etcd, three nodes, HAProxy and the load). `examples/cluster/run`: "
        "Debian's etcd 3.4, three Release `fezz_example` nodes, HAProxy 2.6 with "
        "`examples/cluster/haproxy.cfg`, all on loopback.",
        "",
        f"**Propagation**: {args.changes} changes of `hello`'s path, each a put on etcd's JSON gateway; "
        "the time from the start of the put until every node answers the new path (each node "
        "polled directly, back to back, on a kept-alive connection). Includes etcd's commit.",
        "",
        "| | p50 ms | p99 ms | max ms | target |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| until the first node serves it | {percentile(first_ms, .5):.1f} | {percentile(first_ms, .99):.1f} "
        f"| {max(first_ms):.1f} | |",
        f"| until all three serve it | {percentile(ms, .5):.1f} | {percentile(ms, .99):.1f} | {max(ms):.1f} "
        f"| p99 < 100 ms: **{'PASS' if percentile(ms, .99) < 100 else 'MISS'}** |",
        "",
        f"**The proxy's hop**: `wrk -t1 -c{args.connections} -d{args.duration}s` on `/hello` after 1 s of "
        "warm-up; nodes out of rotation set to `maint` through HAProxy's runtime API. CPU per "
        "request is each process's user+system time over the run divided by the requests.",
        "",
        "| path | req/s | p99 ms | errors | HAProxy CPU µs/req | nodes' CPU µs/req |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for h in hops:
        lines.append(f"| {h['label']} | {h['rate']:,.0f} | {h['p99_ms']:.2f} | "
                     f"{h['errors']}{' + socket errors' if h['socket_errors'] else ''} | "
                     f"{h['proxy_us']:.1f} | {h['nodes_us']:.1f} |")
    lines += [
        "",
        f"**Initial sync from etcd**: a fourth node launched (`fezz_example --store etcd://…`) until "
        "its `/_metrics` shows the store at etcd's revision, with the cluster's five entries, then "
        f"after {args.entries:,} more entries were written ({fill_seconds:.1f} s, transactions of 128 "
        "puts). The node lists every entry, parses and caches it, and routes those it has code "
        "for; routing all of them is `bench_control_plane`'s initial sync (its own section).",
        "",
        "| entries in etcd | launch → synced ms | target |",
        "| ---: | ---: | --- |",
        f"| 5 | {sync_small * 1000:.0f} | |",
        f"| {args.entries:,} | {sync_large * 1000:.0f} | ≤ 5,000 ms: "
        f"**{'PASS' if sync_large <= 5 else 'MISS'}** |",
        "",
        "On 2 CPUs the proxy, the nodes and wrk share the machine, so requests/s through the "
        "proxy are bound by the CPU they all need, and three nodes cannot serve more than one: "
        "read the CPU per request as the proxy's cost (which includes HAProxy writing a log line per "
        "request, `option httplog`), and the requests/s as what this machine "
        "does, not what three machines would.",
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if args.results:
        write_section(args.results, BEGIN, END, section)
        print(f"cluster.py: wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
