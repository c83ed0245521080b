#!/usr/bin/env python3
"""Three fezz_example nodes on etcd behind HAProxy, under steady load, through
deploys and failures.

    python3 tests/cluster_test.py path/to/fezz_example path/to/fezzctl

Starts Debian's etcd, three nodes (--drain-grace 3) and HAProxy with
examples/cluster/haproxy.cfg, all on loopback. 24 keep-alive clients send GETs
through the proxy the whole time; each scenario prints its request count and
failures and must have none: a rolling restart (SIGTERM, start again, node by
node), a stopped node (SIGSTOP, then SIGCONT), etcd killed for 10 s (then a
change reaches every node), a route change with fezzctl (answered by every
node, each asked directly), and last a node killed with SIGKILL. Then
examples/cluster/run itself: started, asked through its proxy, stopped.
Prints "N passed, N failed". Python standard library only.
"""

import collections
import http.client
import json
import pathlib

import blackbox
from blackbox import *  # noqa: F401,F403 (the helpers every test uses)

REPO = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "examples" / "cluster" / "haproxy.cfg"
CLIENTS = 24
ETCD = None
NODES = {}  # name -> Server
PROXY = None


# ---------------------------------------------------------------------------
# The cluster


class Proxy:
    """HAProxy with the example configuration, filled in for these ports."""

    def __init__(self, nodes):
        self.port = free_port()
        self.stats_port = free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="fezz-haproxy-")
        servers = "\n".join(f"    server {name} {HOST}:{server.port}"
                            for name, server in sorted(nodes.items()))
        config = (TEMPLATE.read_text().replace("@RUN_DIR@", self.dir.name)
                  .replace("@FRONT_ADDRESS@", HOST).replace("@FRONT_PORT@", str(self.port))
                  .replace("@STATS_PORT@", str(self.stats_port)).replace("@SERVERS@", servers))
        self.config = pathlib.Path(self.dir.name) / "haproxy.cfg"
        self.config.write_text(config)
        self.log = open(pathlib.Path(self.dir.name) / "haproxy.log", "wb")
        self.proc = subprocess.Popen(["haproxy", "-f", str(self.config), "-db"],
                                     stdout=self.log, stderr=self.log)
        wait_until(lambda: self.states() and all(s == "UP" for s in self.states().values()),
                   15.0, "HAProxy sees every node UP")

    def states(self):
        """Each node's state as HAProxy sees it (UP, DOWN, ...), from its stats socket."""
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(IO_TIMEOUT)
                sock.connect(str(pathlib.Path(self.dir.name) / "haproxy.sock"))
                sock.sendall(b"show stat\n")
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
        except OSError:
            return {}
        states = {}
        for line in data.decode().splitlines():
            fields = line.split(",")
            if len(fields) > 17 and fields[0] == "fezz_nodes" and fields[1] not in ("BACKEND",):
                states[fields[1]] = fields[17].split(" ")[0]
        return states

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.log.close()


def start_node(name, port=None):
    """A node on the shared etcd; on `port` when it restarts behind the proxy."""
    args = ["--store", ETCD.url, "--node", name, "--drain-grace", "3"]
    if port is not None:
        args += ["--port", str(port)]
    NODES[name] = Server(*args, port_flag=port is None).start()
    return NODES[name]


def wait_up(name):
    wait_until(lambda: PROXY.states().get(name) == "UP", 15.0, f"HAProxy sees {name} UP")


# ---------------------------------------------------------------------------
# Load


class Load:
    """CLIENTS keep-alive clients sending GETs through the proxy until stopped;
    every answer that is not 200, and every connection error, is a failure."""

    PATHS = ["/hello", "/users/7", "/counter", "/sleep?ms=20"]

    def __init__(self):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.requests = 0
        self.failures = collections.Counter()
        self.slowest = 0.0
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True)
                        for i in range(CLIENTS)]

    def client(self, index):
        conn = None
        count = 0
        while not self.stop.is_set():
            path = self.PATHS[(index + count) % len(self.PATHS)]
            count += 1
            started = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(HOST, PROXY.port, timeout=20)
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                outcome = None if response.status == 200 else f"{path} {response.status}"
                if response.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                outcome = f"{path} {type(e).__name__}"
                if conn is not None:
                    conn.close()
                conn = None
            took = time.monotonic() - started
            with self.lock:
                self.requests += 1
                self.slowest = max(self.slowest, took)
                if outcome:
                    self.failures[outcome] += 1
        if conn is not None:
            conn.close()

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        time.sleep(1.0)  # steady before the event
        return self

    def __exit__(self, *exc):
        time.sleep(1.0)  # and after it
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def report(self, what):
        failed = sum(self.failures.values())
        print(f"     {what}: {self.requests} requests through the proxy, {failed} failed, "
              f"slowest {self.slowest:.2f} s", flush=True)
        check(self.requests > 100, f"{what}: only {self.requests} requests under load")
        check_equal(dict(self.failures), {}, f"{what}: failed requests")


# ---------------------------------------------------------------------------
# Scenarios, in this order (each leaves three nodes UP, but the last)


@test
def rolling_restart_loses_no_request():
    with Load() as load:
        for name in sorted(NODES):
            node = NODES[name]
            node.proc.send_signal(signal.SIGTERM)
            check_equal(node.proc.wait(timeout=30), 0, f"{name}'s exit status")
            start_node(name, node.port)
            wait_up(name)
    load.report("rolling restart")


@test
def a_stopped_node_is_served_around_and_rejoins():
    name = "n2"
    node = NODES[name]
    with Load() as load:
        node.proc.send_signal(signal.SIGSTOP)
        try:
            wait_until(lambda: PROXY.states().get(name, "").startswith("DOWN"), 10.0,
                       f"HAProxy sees {name} DOWN")
            time.sleep(2.0)
        finally:
            node.proc.send_signal(signal.SIGCONT)
        wait_up(name)
        before = metrics_of(node.port, "hello")["requests"]
        wait_until(lambda: metrics_of(node.port, "hello")["requests"] > before + 5, 10.0,
                   f"{name} serving again through the proxy")
    load.report("SIGSTOP, then SIGCONT")
    # A call sent to the stopped node waits HAProxy's 'timeout server' (6 s), then is retried.
    check(load.slowest < 9.0, f"slowest answer {load.slowest:.2f} s, beyond the configured timeouts")


@test
def etcd_down_for_10_s_loses_no_request_and_a_later_change_reaches_every_node():
    with Load() as load:
        ETCD.proc.kill()
        ETCD.proc.wait(timeout=10)
        time.sleep(10.0)
        ETCD.start()
    load.report("etcd killed for 10 s")
    ETCD.ctl("put", "/fezz/functions/user", json.dumps({"id": "user", "path": "/people/:id"}))
    for name, node in sorted(NODES.items()):
        wait_until(lambda: get(node.port, "/people/3").status == 200, 20.0,
                   f"the change after etcd came back, on {name}")
    ETCD.ctl("put", "/fezz/functions/user", json.dumps({"id": "user", "path": "/users/:id"}))
    for name, node in sorted(NODES.items()):
        wait_until(lambda: get(node.port, "/users/3").status == 200, 20.0, f"restored on {name}")


@test
def a_route_change_with_fezzctl_is_answered_by_every_node():
    entry = {"id": "hello", "path": "/welcome", "description": "moved with fezzctl"}
    result = subprocess.run([blackbox.PROGRAMS[0], "--store", ETCD.url, "put", "-"],
                            input=json.dumps(entry), text=True, capture_output=True, timeout=30)
    check_equal((result.returncode, result.stderr), (0, ""), "fezzctl put")
    for name, node in sorted(NODES.items()):
        wait_until(lambda: get(node.port, "/welcome").status == 200, 5.0, f"/welcome on {name}")
        check_equal(get(node.port, "/welcome").body, b"Hello, World!", f"the answer on {name}")
    check_equal(get(PROXY.port, "/welcome").status, 200, "through the proxy")
    entry["path"] = "/hello"
    subprocess.run([blackbox.PROGRAMS[0], "--store", ETCD.url, "put", "-"],
                   input=json.dumps(entry), text=True, capture_output=True, timeout=30)
    for name, node in sorted(NODES.items()):
        wait_until(lambda: get(node.port, "/hello").status == 200, 5.0, f"/hello back on {name}")


@test
def a_killed_node_loses_no_get():
    name = "n3"
    with Load() as load:
        NODES[name].proc.kill()
        NODES[name].proc.wait(timeout=10)
        wait_until(lambda: PROXY.states().get(name, "").startswith("DOWN"), 10.0,
                   f"HAProxy sees {name} DOWN")
    load.report("SIGKILL")


@test
def the_cluster_script_starts_answers_and_stops():
    script = REPO / "examples" / "cluster" / "run"
    build = pathlib.Path(blackbox.BINARY).parent.parent.parent
    port = free_ports_in_a_row(4)  # the script's nodes listen on the proxy's port + 1, 2, 3
    with tempfile.TemporaryDirectory(prefix="fezz-cluster-") as state:
        environment = dict(os.environ, FEZZ_BUILD=str(build), FEZZ_CLUSTER_PORT=str(port),
                           FEZZ_CLUSTER_ETCD_PORT=str(free_ports_in_a_row(2)),
                           FEZZ_CLUSTER_DIR=state)
        with tempfile.TemporaryFile() as output:
            run_script = subprocess.Popen(["bash", str(script)], env=environment, stdout=output,
                                          stderr=subprocess.STDOUT)
            try:
                wait_until(lambda: b"Ctrl-C here" in (output.seek(0) or output.read()), 60.0,
                           "the script says the cluster is up")
                check_equal(get(port, "/hello").body, b"Hello, World!", "GET /hello through it")
                stop = subprocess.run(["bash", str(script), "stop"], env=environment,
                                      capture_output=True, timeout=60)
                check_equal(stop.returncode, 0, "run stop")
                check_equal(run_script.wait(timeout=60), 0, "the script's exit status")
            finally:
                if run_script.poll() is None:
                    run_script.send_signal(signal.SIGINT)
                    run_script.wait(timeout=60)
        leftover = subprocess.run(["pgrep", "-f", state], capture_output=True, text=True).stdout
        check_equal(leftover.strip(), "", "processes left behind by the script")


def start_cluster():
    global ETCD, PROXY
    ETCD = Etcd().start()
    for name in ("n1", "n2", "n3"):
        start_node(name)
    PROXY = Proxy(NODES)


def stop_proxy():
    if PROXY is not None:
        PROXY.stop()
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv, setup=start_cluster, teardown=stop_proxy,
                 programs=("fezz_example", "fezzctl")))
