#!/usr/bin/env python3
"""Function modules in fezz_example: loaded on the first request, gone from the
process when idle, replaced without a restart, refused when wrong; several
live versions sharing the requests by weight, deployed with fezzctl.

    python3 tests/module_test.py path/to/fezz_example path/to/modules path/to/fezzctl

The modules are tests/module/greeting.cpp built with fezz_add_module() against
the installed package (the CTest fezz_package_module): greeting_v1.so,
greeting_v2.so and greeting_other_abi.so. Starts Debian's etcd on loopback and
writes each entry with etcdctl, in the documented format, or with fezzctl
deploy, split and undeploy. Whether a library is in the process is read from
/proc/PID/maps. Prints "N passed, N failed". Python standard library only.
"""

import hashlib
import http.client
import json
import pathlib

import blackbox
from blackbox import *  # noqa: F401,F403 (the helpers every test uses)

ETCD = None


def module(name):
    path = pathlib.Path(blackbox.PROGRAMS[0]) / f"{name}.so"
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "path": str(path)}


def put(function_id, path, source):
    ETCD.ctl("put", f"/fezz/functions/{function_id}",
             json.dumps({"id": function_id, "path": path, "module": source}))


def run_fezzctl(*args):
    return subprocess.run([blackbox.PROGRAMS[1], "--store", ETCD.url, *args],
                          capture_output=True, text=True, timeout=30)


def fezzctl(*args):
    """Runs fezzctl on the test's etcd; its standard output. Fails the test if it fails."""
    done = run_fezzctl(*args)
    check(done.returncode == 0, f"fezzctl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def fezzctl_fails(*args):
    """Runs fezzctl, which must fail with exit status 1; its standard error."""
    done = run_fezzctl(*args)
    check_equal(done.returncode, 1, f"fezzctl {' '.join(args)} fails")
    return done.stderr


def node(name, cache, *flags):
    return Server("--store", ETCD.url, "--node", name, "--idle-timeout", "0.5",
                  "--module-cache", cache, *flags)


def mapped(server, sha256):
    """Whether the module with these bytes is mapped into the server's process."""
    return f"{sha256}.so" in pathlib.Path(f"/proc/{server.proc.pid}/maps").read_text()


@test
def a_module_loads_on_its_first_request_and_leaves_the_process_when_idle():
    v1 = module("greeting_v1")
    with tempfile.TemporaryDirectory() as cache, node("m1", cache) as server:
        put("greeting", "/greeting", v1)
        put("nap", "/nap", v1)
        wait_until(lambda: metrics_has(server, "greeting"), 5.0, "the entry reaches the node")
        check(not mapped(server, v1["sha256"]), "nothing is loaded before the first request")
        reply = get(server.port, "/greeting")
        check_equal((reply.status, reply.body), (200, b"Hello from module v1, call 1, env none"),
                    "the first answer")
        check(mapped(server, v1["sha256"]), "the library is mapped once a function is loaded")
        check_equal(metrics_of(server.port, "greeting").get("module"), v1["sha256"],
                    "/_metrics names the module")
        check_equal(get(server.port, "/nap").body, b"rested, v1", "a coroutine fetch of the module")
        check_equal(get(server.port, "/greeting").body, b"Hello from module v1, call 2, env none",
                    "the same instance")
        # Both functions idle past 0.5 s: unloaded, and the library closed.
        wait_until(lambda: not mapped(server, v1["sha256"]), 10.0, "the library leaves the process")
        check_equal(metrics_of(server.port, "greeting")["loaded"], False, "greeting unloaded")
        check_equal(get(server.port, "/greeting").body, b"Hello from module v1, call 1, env none",
                    "loaded anew")
        check((pathlib.Path(cache) / f"{v1['sha256']}.so").exists(), "kept in the module cache")
        ETCD.ctl("del", "/fezz/functions/greeting")
        ETCD.ctl("del", "/fezz/functions/nap")
        wait_until(lambda: get(server.port, "/greeting").status == 404, 5.0, "removed: 404")
        wait_until(lambda: not mapped(server, v1["sha256"]), 10.0, "removed: the library is gone")


@test
def a_new_version_replaces_the_old_under_load_without_a_failed_request():
    v1, v2 = module("greeting_v1"), module("greeting_v2")
    with tempfile.TemporaryDirectory() as cache, node("m2", cache) as server:
        put("greeting", "/greeting", v1)
        wait_until(lambda: get(server.port, "/greeting").status == 200, 5.0, "v1 serves")
        with SteadyClient(server.port) as steady:
            time.sleep(0.3)
            put("greeting", "/greeting", v2)
            wait_until(lambda: (200, b"Hello from module v2") in steady.answers, 5.0, "v2 answers")
            time.sleep(0.3)
        answers = steady.answers
        print(f"     answers during the switch: {answers}")
        check_equal(set(answers), {(200, b"Hello from module v1"), (200, b"Hello from module v2")},
                    "every answer is v1 or v2, none failed")
        wait_until(lambda: not mapped(server, v1["sha256"]), 10.0, "v1 leaves the process")
        check_equal(get(server.port, "/greeting").status, 200, "v2 serves on")
        check(mapped(server, v2["sha256"]), "v2 is the module mapped")
        ETCD.ctl("del", "/fezz/functions/greeting")


@test
def a_module_whose_on_load_throws_answers_503_and_loads_once_fixed():
    v1 = module("greeting_v1")
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as scratch, \
            node("m9", cache) as server:
        needed = pathlib.Path(scratch) / "ready"
        ETCD.ctl("put", "/fezz/functions/greeting", json.dumps({
            "id": "greeting", "path": "/greeting", "module": v1,
            "env": {"GREETING_NEEDS": str(needed)}}))
        wait_until(lambda: get(server.port, "/greeting").status != 404, 5.0, "routed")
        message = refusal(get(server.port, "/greeting"), "on_load threw")
        check(f"{needed} is missing" in message, message)
        check(metrics_of(server.port, "greeting")["load_failures"] >= 1, "the failure is counted")
        check(not mapped(server, v1["sha256"]), "nothing is left loaded half-way")
        check_equal(get(server.port, "/hello").status, 200, "the host serves on")
        needed.write_text("here")
        reply = get(server.port, "/greeting")
        check_equal((reply.status, reply.body), (200, b"Hello from module v1, call 1, env none"),
                    "a later request loads it, once fixed")
        ETCD.ctl("del", "/fezz/functions/greeting")


@test
def bytes_that_do_not_match_their_sha256_are_never_opened():
    v1, v2 = module("greeting_v1"), module("greeting_v2")
    forged = {"sha256": v2["sha256"], "path": v1["path"]}  # v1's bytes under v2's name
    with tempfile.TemporaryDirectory() as cache, node("m3", cache) as server:
        put("greeting", "/greeting", forged)
        wait_until(lambda: get(server.port, "/greeting").status != 404, 5.0, "routed")
        message = refusal(get(server.port, "/greeting"), "forged bytes")
        check(f"has SHA-256 {v1['sha256']}, not the {v2['sha256']}" in message, message)
        check(not mapped(server, v1["sha256"]) and not mapped(server, v2["sha256"]),
              "nothing was opened")
        check_equal(list(pathlib.Path(cache).glob("*")), [], "nothing was cached")
        check_equal(get(server.port, "/hello").status, 200, "the host serves on")
        ETCD.ctl("del", "/fezz/functions/greeting")


@test
def a_module_over_max_module_bytes_is_refused_before_it_is_read():
    v1 = module("greeting_v1")
    size = pathlib.Path(v1["path"]).stat().st_size
    with tempfile.TemporaryDirectory() as cache, \
            node("m6", cache, "--max-module-bytes", str(size - 1)) as server:
        put("greeting", "/greeting", v1)
        wait_until(lambda: get(server.port, "/greeting").status != 404, 5.0, "routed")
        message = refusal(get(server.port, "/greeting"), "a module over the limit")
        check(f"is {size} bytes, over the limit of {size - 1} bytes (config::max_module_bytes)"
              in message, message)
        check(not mapped(server, v1["sha256"]), "nothing was opened")
        check_equal(list(pathlib.Path(cache).glob("*")), [], "nothing was cached")
        ETCD.ctl("del", "/fezz/functions/greeting")
    with tempfile.TemporaryDirectory() as cache, \
            node("m7", cache, "--max-module-bytes", str(size)) as server:
        put("greeting", "/greeting", v1)
        wait_until(lambda: get(server.port, "/greeting").status != 404, 5.0, "routed")
        check_equal(get(server.port, "/greeting").status, 200, "exactly the limit: it loads")
        ETCD.ctl("del", "/fezz/functions/greeting")


@test
def a_module_built_differently_is_refused_with_the_reason():
    other = module("greeting_other_abi")
    with tempfile.TemporaryDirectory() as cache, node("m4", cache) as server:
        put("greeting", "/greeting", other)
        wait_until(lambda: get(server.port, "/greeting").status != 404, 5.0, "routed")
        message = refusal(get(server.port, "/greeting"), "another ABI")
        check('was built with "fezz module ABI 999;' in message, message)
        check("rebuild it against this host's Fezz" in message, message)
        check(get(server.port, "/greeting").status == 503, "refused again, never half-loaded")
        failures = metrics_of(server.port, "greeting")["load_failures"]
        check(failures >= 2, f"each refusal counted ({failures})")
        check(not mapped(server, other["sha256"]), "closed again")
        check_equal(get(server.port, "/hello").status, 200, "the host serves on")
        ETCD.ctl("del", "/fezz/functions/greeting")


@test
def an_entry_naming_a_function_the_module_lacks_is_refused():
    v1 = module("greeting_v1")
    with tempfile.TemporaryDirectory() as cache, node("m5", cache) as server:
        put("farewell", "/farewell", v1)
        wait_until(lambda: get(server.port, "/farewell").status != 404, 5.0, "routed")
        message = refusal(get(server.port, "/farewell"), "no such function")
        check("has no function 'farewell' (it has: greeting, nap)" in message, message)
        ETCD.ctl("del", "/fezz/functions/farewell")


class SteadyClient:
    """GETs /greeting on one keep-alive connection until the block ends, counting
    each answer as (status, "Hello from module vN")."""

    def __init__(self, port):
        self.port, self.answers, self.stop = port, {}, threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self):
        conn = http.client.HTTPConnection(HOST, self.port, timeout=IO_TIMEOUT)
        while not self.stop.is_set():
            key = greeting(conn)
            self.answers[key] = self.answers.get(key, 0) + 1
        conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)


def greeting(conn, headers=None):
    """One GET of /greeting on `conn`: (status, "Hello from module vN")."""
    conn.request("GET", "/greeting", headers=headers or {})
    response = conn.getresponse()
    return response.status, response.read().split(b",")[0]


def greetings(port, count, headers=None):
    """`count` GETs of /greeting on one connection: how many answers of each kind."""
    conn = http.client.HTTPConnection(HOST, port, timeout=IO_TIMEOUT)
    answers = {}
    for _ in range(count):
        key = greeting(conn, headers)
        answers[key] = answers.get(key, 0) + 1
    conn.close()
    return answers


V1, V2 = (200, b"Hello from module v1"), (200, b"Hello from module v2")


def check_split(answers, v2_percent, what):
    """Every answer from v1 or v2, and v2's share within 2 points of `v2_percent`."""
    total = sum(answers.values())
    share = 100.0 * answers.get(V2, 0) / total
    print(f"     {what}: {answers}, v2 {share:.2f} %")
    check_equal(set(answers) - {V1, V2}, set(), f"{what}: every answer from v1 or v2")
    check(abs(share - v2_percent) <= 2.0, f"{what}: v2 has {share:.2f} % (want {v2_percent} ± 2)")


@test
def versions_share_the_traffic_by_weight_and_a_header_pins_one():
    v1, v2 = module("greeting_v1"), module("greeting_v2")
    with tempfile.TemporaryDirectory() as cache, node("m6", cache) as server:
        # Deployed from a copy that is gone before the first request: the node fetches the
        # bytes from etcd, and no file path is in the entry.
        with tempfile.TemporaryDirectory() as scratch:
            copy = pathlib.Path(scratch) / "greeting.so"
            copy.write_bytes(pathlib.Path(v1["path"]).read_bytes())
            deployed = fezzctl("deploy", str(copy), "--version", "v1", "--id", "greeting")
        check_equal(deployed, "greeting: v1=100 at revision " + revision("greeting") + "\n",
                    "deploy v1")
        check_equal(json.loads(fezzctl("get", "greeting"))["versions"][0]["module"],
                    {"sha256": v1["sha256"]}, "the entry names the bytes, not a path")
        wait_until(lambda: get(server.port, "/greeting").status == 200, 5.0, "v1 serves")
        check_equal(greetings(server.port, 1), {V1: 1}, "served from the bytes in etcd")
        check("greeting: v1=90 v2=10 at revision" in
              fezzctl("deploy", v2["path"], "--version", "v2", "--weight", "10", "--id", "greeting"),
              "deploy v2 at 10 %")
        wait_until(lambda: metrics_has(server, "greeting@v2"), 5.0, "v2 reaches the node")
        check_split(greetings(server.port, 10000), 10, "10,000 requests at v1=90 v2=10")

        check_equal(greetings(server.port, 50, {"x-fezz-version": "v2"}), {V2: 50}, "pinned to v2")
        check_equal(greetings(server.port, 50, {"x-fezz-version": "v1"}), {V1: 50}, "pinned to v1")
        unknown = get(server.port, "/greeting", {"x-fezz-version": "v9"})
        check_json_error(unknown, 404, "a version that is not live")
        check("no live version \"v9\"" in unknown.json()["message"] and
              "live: v1, v2" in unknown.json()["message"], unknown.json()["message"])
        check_json_error(get(server.port, "/greeting", {"x-fezz-version": "v/1"}), 400,
                         "a version name out of its grammar")

        one = metrics_of(server.port, "greeting@v1")
        two = metrics_of(server.port, "greeting@v2")
        check_equal((one["function"], one["version"], one["weight"], one["module"]),
                    ("greeting", "v1", 90, v1["sha256"]), "/_metrics: v1's figures")
        check_equal((two["function"], two["version"], two["weight"], two["module"]),
                    ("greeting", "v2", 10, v2["sha256"]), "/_metrics: v2's figures")
        check(one["requests"] + two["requests"] >= 10100, "every request counted by its version")
        prometheus = get(server.port, "/_metrics?format=prometheus").body.decode()
        for name, figures in (("v1", one), ("v2", two)):
            line = f'fezz_requests_total{{function="greeting",version="{name}"}} {figures["requests"]}'
            check(line in prometheus.splitlines(), f"Prometheus: {line}")
        check('function="greeting@' not in prometheus, "Prometheus: no slot id as a function")

        fezzctl("split", "greeting", "v1=0", "v2=0")
        wait_until(lambda: get(server.port, "/greeting").status == 503, 5.0, "all weights 0")
        check_json_error(get(server.port, "/greeting"), 503, "no version has weight")
        check_equal(greetings(server.port, 5, {"x-fezz-version": "v2"}), {V2: 5},
                    "weight 0: only named requests are served")
        fezzctl("rm", "greeting")
        wait_until(lambda: not mapped(server, v1["sha256"]) and not mapped(server, v2["sha256"]),
                   10.0, "removed: both libraries leave the process")


@test
def two_nodes_split_alike_move_to_v2_under_load_and_roll_back():
    v1, v2 = module("greeting_v1"), module("greeting_v2")
    with tempfile.TemporaryDirectory() as cache_a, tempfile.TemporaryDirectory() as cache_b, \
            node("m7", cache_a) as a, node("m8", cache_b) as b:
        fezzctl("deploy", v1["path"], "--version", "v1", "--id", "greeting")
        for server in (a, b):
            wait_until(lambda: get(server.port, "/greeting").status == 200, 5.0, "v1 serves")
        fezzctl("deploy", v2["path"], "--version", "v2", "--weight", "10", "--id", "greeting")
        for server in (a, b):
            wait_until(lambda: metrics_has(server, "greeting@v2"), 5.0, "v2 reaches both nodes")
        answers = greetings(a.port, 5000)
        for key, n in greetings(b.port, 5000).items():
            answers[key] = answers.get(key, 0) + n
        check_split(answers, 10, "10,000 requests over two nodes")

        # All of it to v2 under a steady client on each node: no request fails.
        with SteadyClient(a.port) as on_a, SteadyClient(b.port) as on_b:
            time.sleep(0.3)
            check("greeting: v1=0 v2=100" in fezzctl("split", "greeting", "v2=100"), "split")
            time.sleep(0.5)
            check_equal(greetings(a.port, 200), {V2: 200}, "node a: all of it to v2")
            check_equal(greetings(b.port, 200), {V2: 200}, "node b: all of it to v2")
        for steady in (on_a, on_b):
            print(f"     answers during the move: {steady.answers}")
            check_equal(set(steady.answers) - {V1, V2}, set(), "no request failed in the move")
        for server in (a, b):
            wait_until(lambda: not mapped(server, v1["sha256"]), 10.0, "v1 at weight 0 unloads")
            check_equal(metrics_of(server.port, "greeting@v1")["loaded"], False, "v1 unloaded")
            check(mapped(server, v2["sha256"]), "v2 stays")

        # Roll back: v1 takes it all again, loaded anew; then v2 leaves the entry.
        fezzctl("split", "greeting", "v1=100")
        for server in (a, b):
            wait_until(lambda: greetings(server.port, 1) == {V1: 1}, 5.0, "rolled back to v1")
        check_equal(fezzctl("undeploy", "greeting", "--version", "v2"),
                    "greeting: v1=100 at revision " + revision("greeting") + "\n", "undeploy v2")
        for server in (a, b):
            wait_until(lambda: not mapped(server, v2["sha256"]), 10.0, "v2 undeployed, unmapped")
            wait_until(lambda: not metrics_has(server, "greeting@v2"), 5.0,
                       "an undeployed version leaves /_metrics once unloaded")
            check_json_error(get(server.port, "/greeting", {"x-fezz-version": "v2"}), 404,
                             "an undeployed version cannot be named")
        fezzctl("rm", "greeting")


@test
def fezzctl_refuses_a_module_built_differently_and_a_version_it_lacks():
    other = module("greeting_other_abi")
    message = fezzctl_fails("deploy", other["path"], "--version", "v3")
    check("rebuild it against this host's Fezz" in message, message)
    check_equal(ETCD.ctl("get", "/fezz/functions/greeting").stdout.strip(), b"", "nothing written")
    fezzctl("deploy", module("greeting_v1")["path"], "--version", "v1", "--id", "greeting")
    for args in (("split", "greeting", "v2=10"), ("undeploy", "greeting", "--version", "v1"),
                 ("undeploy", "greeting", "--version", "v2")):
        message = fezzctl_fails(*args)
        check("'greeting'" in message, message)
    fezzctl("rm", "greeting")


@test
def fezzctl_deploy_nodes_names_the_nodes_and_a_later_deploy_keeps_them():
    v1, v2 = module("greeting_v1"), module("greeting_v2")

    def nodes():
        return json.loads(fezzctl("get", "greeting")).get("nodes", [])

    fezzctl("deploy", v1["path"], "--version", "v1", "--id", "greeting", "--nodes", "m1,m2")
    check_equal(nodes(), ["m1", "m2"], "a new entry served by the nodes named")
    fezzctl("deploy", v2["path"], "--version", "v2", "--weight", "10", "--id", "greeting")
    check_equal(nodes(), ["m1", "m2"], "a deploy without --nodes keeps them")
    fezzctl("deploy", v2["path"], "--version", "v2", "--id", "greeting", "--nodes", "m3")
    check_equal(nodes(), ["m3"], "a deploy with --nodes replaces them")
    fezzctl("rm", "greeting")


def revision(function_id):
    return str(json.loads(fezzctl("get", function_id))["revision"])


def refusal(reply, what):
    """The message of a 503 with Fezz's JSON error body."""
    check_json_error(reply, 503, what)
    return reply.json()["message"]


def metrics_has(server, function_id):
    return any(f["id"] == function_id for f in get(server.port, "/_metrics").json()["functions"])


def start_etcd():
    global ETCD
    ETCD = Etcd().start()


if __name__ == "__main__":
    sys.exit(run(sys.argv, setup=start_etcd, programs=("fezz_example", "modules", "fezzctl")))
